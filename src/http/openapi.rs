//! `GET /api/v1/openapi.json` (OpenAPI 3.1) and `GET /docs` (the same
//! table as an HTML page that loads nothing from the network).
//!
//! One table lists every endpoint; both documents are built from it, and a
//! black-box test requests every entry to prove each one is really served.

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde_json::{json, Map, Value};

/// One endpoint: method, path (under /api/v1), summary, needs a token,
/// request schema, success status, success schema, error codes.
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    pub auth: bool,
    pub request: Option<&'static str>,
    pub status: u16,
    pub response: &'static str,
    pub errors: &'static [&'static str],
}

#[allow(clippy::too_many_arguments)] // one table row; positional keeps the table readable
const fn ep(
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    auth: bool,
    request: Option<&'static str>,
    status: u16,
    response: &'static str,
    errors: &'static [&'static str],
) -> Endpoint {
    Endpoint {
        method,
        path,
        summary,
        auth,
        request,
        status,
        response,
        errors,
    }
}

pub const ENDPOINTS: &[Endpoint] = &[
    ep(
        "get",
        "/health",
        "Liveness and backends",
        false,
        None,
        200,
        "Health",
        &[],
    ),
    ep(
        "get",
        "/ready",
        "Readiness (503 names the failing part)",
        false,
        None,
        200,
        "Ready",
        &[],
    ),
    ep(
        "post",
        "/auth/register",
        "Create an account",
        false,
        Some("Register"),
        201,
        "AuthSuccess",
        &["validation_failed", "weak_password", "email_taken", "rate_limited"],
    ),
    ep(
        "post",
        "/auth/login",
        "Log in (tokens, or a 2FA challenge)",
        false,
        Some("Login"),
        200,
        "LoginResult",
        &[
            "invalid_credentials",
            "account_locked",
            "account_disabled",
            "rate_limited",
        ],
    ),
    ep(
        "post",
        "/auth/login/2fa",
        "Finish a login with a TOTP code",
        false,
        Some("TotpLogin"),
        200,
        "AuthSuccess",
        &["invalid_2fa_code", "challenge_expired", "account_locked"],
    ),
    ep(
        "post",
        "/auth/2fa/backup-code",
        "Finish a login with a backup code",
        false,
        Some("BackupLogin"),
        200,
        "AuthSuccess",
        &["invalid_backup_code", "challenge_expired", "account_locked"],
    ),
    ep(
        "post",
        "/auth/refresh",
        "Exchange a refresh token (body or cookie) for a new pair",
        false,
        Some("Refresh"),
        200,
        "TokenPair",
        &["unauthorized", "refresh_token_reused", "csrf_failed"],
    ),
    ep(
        "post",
        "/auth/logout",
        "Revoke this token and end its session",
        true,
        None,
        200,
        "Object",
        &["unauthorized", "csrf_failed"],
    ),
    ep(
        "post",
        "/auth/logout-all",
        "End every session",
        true,
        None,
        200,
        "Object",
        &["unauthorized", "csrf_failed"],
    ),
    ep(
        "post",
        "/auth/2fa/enable",
        "Start TOTP enrolment (secret + QR); needs the current password",
        true,
        Some("PasswordOnly"),
        200,
        "Enrollment",
        &["two_factor_already_enabled", "invalid_credentials", "account_locked"],
    ),
    ep(
        "post",
        "/auth/2fa/verify",
        "Activate TOTP with a first code",
        true,
        Some("Code"),
        200,
        "BackupCodes",
        &[
            "invalid_2fa_code",
            "two_factor_already_enabled",
            "two_factor_not_enabled",
            "account_locked",
        ],
    ),
    ep(
        "post",
        "/auth/2fa/disable",
        "Turn TOTP off (password + TOTP or backup code)",
        true,
        Some("PasswordAndCode"),
        200,
        "Object",
        &[
            "invalid_credentials",
            "invalid_2fa_code",
            "two_factor_not_enabled",
            "account_locked",
        ],
    ),
    ep(
        "get",
        "/auth/csrf",
        "A fresh CSRF token and cookie",
        false,
        None,
        200,
        "Csrf",
        &[],
    ),
    ep(
        "get",
        "/me",
        "The caller's account",
        true,
        None,
        200,
        "User",
        &["unauthorized"],
    ),
    ep(
        "patch",
        "/me",
        "Change full_name",
        true,
        Some("PatchMe"),
        200,
        "User",
        &["validation_failed", "csrf_failed"],
    ),
    ep(
        "post",
        "/me/password",
        "Change the password (ends other sessions)",
        true,
        Some("PasswordChange"),
        200,
        "Object",
        &["invalid_credentials", "weak_password"],
    ),
    ep(
        "get",
        "/me/sessions",
        "Active sessions",
        true,
        None,
        200,
        "SessionList",
        &[],
    ),
    ep(
        "delete",
        "/me/sessions/{id}",
        "End one session",
        true,
        None,
        204,
        "Empty",
        &["not_found"],
    ),
    ep(
        "get",
        "/me/devices",
        "Devices the account signed in from",
        true,
        None,
        200,
        "DeviceList",
        &[],
    ),
    ep(
        "delete",
        "/me/devices/{id}",
        "Forget a device and revoke its device token",
        true,
        None,
        204,
        "Empty",
        &["not_found"],
    ),
    ep(
        "get",
        "/me/security-events",
        "The caller's security events, newest first",
        true,
        None,
        200,
        "EventList",
        &[],
    ),
    ep(
        "post",
        "/portfolio/buy",
        "Buy (Idempotency-Key supported)",
        true,
        Some("Order"),
        201,
        "OrderResult",
        &[
            "validation_failed",
            "price_unavailable",
            "amount_out_of_range",
            "idempotency_conflict",
        ],
    ),
    ep(
        "post",
        "/portfolio/sell",
        "Sell (Idempotency-Key supported)",
        true,
        Some("Order"),
        201,
        "OrderResult",
        &[
            "validation_failed",
            "insufficient_quantity",
            "price_unavailable",
            "amount_out_of_range",
            "idempotency_conflict",
        ],
    ),
    ep(
        "get",
        "/portfolio",
        "Positions and totals",
        true,
        None,
        200,
        "Portfolio",
        &[],
    ),
    ep(
        "get",
        "/portfolio/transactions",
        "The ledger, newest first (?symbol=&limit=&cursor=)",
        true,
        None,
        200,
        "TransactionList",
        &["validation_failed"],
    ),
    ep(
        "get",
        "/prices",
        "Known symbols (?limit=&cursor=)",
        true,
        None,
        200,
        "PriceList",
        &["validation_failed"],
    ),
    ep(
        "get",
        "/prices/{symbol}",
        "Latest price (?history=30d|1y|5y|max)",
        true,
        None,
        200,
        "Price",
        &["unknown_symbol", "validation_failed"],
    ),
    ep(
        "get",
        "/news",
        "News with symbols and sentiment (?symbol=&since=&limit=&cursor=)",
        true,
        None,
        200,
        "NewsList",
        &["validation_failed"],
    ),
    ep(
        "post",
        "/predictions",
        "Forecast with walk-forward evaluation",
        true,
        Some("PredictionRequest"),
        200,
        "Prediction",
        &["unknown_symbol", "insufficient_history", "validation_failed"],
    ),
    ep("get", "/openapi.json", "This document", false, None, 200, "Object", &[]),
];

fn obj(props: &[(&str, Value)], required: &[&str]) -> Value {
    let mut p = Map::new();
    for (k, v) in props {
        p.insert((*k).to_string(), v.clone());
    }
    json!({"type": "object", "properties": p, "required": required})
}

fn s() -> Value {
    json!({"type": "string"})
}

fn dec() -> Value {
    json!({"type": "string", "description": "exact decimal"})
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn list(item: Value) -> Value {
    obj(
        &[
            ("items", json!({"type": "array", "items": item})),
            ("next_cursor", json!({"type": ["string", "null"]})),
        ],
        &["items", "next_cursor"],
    )
}

fn schemas() -> Value {
    let amount = json!({"oneOf": [{"type": "string"}, {"type": "number"}], "description": "exact decimal as a string or number"});
    json!({
        "Problem": obj(&[("type", s()), ("title", s()), ("status", json!({"type": "integer"})), ("detail", s()), ("code", s())], &["type", "title", "status", "detail", "code"]),
        "Object": {"type": "object"},
        "Empty": {"type": "null"},
        "Health": obj(&[("status", s()), ("version", s()), ("uptime_seconds", json!({"type": "integer"})), ("storage", s()), ("state", s())], &["status"]),
        "Ready": obj(&[("status", s()), ("storage", s()), ("state", s())], &["status"]),
        "Register": obj(&[("email", s()), ("password", s()), ("full_name", s())], &["email", "password"]),
        "Login": obj(&[("email", s()), ("password", s())], &["email", "password"]),
        "TotpLogin": obj(&[("challenge_token", s()), ("code", s())], &["challenge_token", "code"]),
        "BackupLogin": obj(&[("challenge_token", s()), ("backup_code", s())], &["challenge_token", "backup_code"]),
        "Refresh": obj(&[("refresh_token", s())], &[]),
        "Code": obj(&[("code", s())], &["code"]),
        "PasswordOnly": obj(&[("password", s())], &["password"]),
        "PasswordAndCode": obj(&[("password", s()), ("code", s())], &["password", "code"]),
        "PatchMe": obj(&[("full_name", json!({"type": ["string", "null"]}))], &[]),
        "PasswordChange": obj(&[("current_password", s()), ("new_password", s())], &["current_password", "new_password"]),
        "User": obj(&[("id", s()), ("email", s()), ("full_name", json!({"type": ["string", "null"]})), ("role", s()), ("two_factor_enabled", json!({"type": "boolean"})), ("created_at", s()), ("last_login_at", json!({"type": ["string", "null"]}))], &["id", "email", "role"]),
        "TokenPair": obj(&[("access_token", s()), ("refresh_token", s()), ("token_type", s()), ("expires_in", json!({"type": "integer"}))], &["access_token", "refresh_token"]),
        "AuthSuccess": obj(&[("user", r("User")), ("access_token", s()), ("refresh_token", s()), ("token_type", s()), ("expires_in", json!({"type": "integer"})), ("device_token", s())], &["user", "access_token", "refresh_token"]),
        "LoginResult": {"oneOf": [r("AuthSuccess"), obj(&[("two_factor_required", json!({"type": "boolean"})), ("challenge_token", s()), ("expires_in", json!({"type": "integer"}))], &["two_factor_required", "challenge_token"])]},
        "Enrollment": obj(&[("secret", s()), ("otpauth_uri", s()), ("qr_png", s()), ("qr_svg", s())], &["secret", "otpauth_uri", "qr_png", "qr_svg"]),
        "BackupCodes": obj(&[("two_factor_enabled", json!({"type": "boolean"})), ("backup_codes", json!({"type": "array", "items": s()}))], &["backup_codes"]),
        "Csrf": obj(&[("csrf_token", s())], &["csrf_token"]),
        "SessionList": list(obj(&[("id", s()), ("created_at", s()), ("last_used_at", s()), ("ip", s()), ("user_agent", s()), ("current", json!({"type": "boolean"}))], &[])),
        "DeviceList": list(obj(&[("id", s()), ("user_agent", s()), ("ip_network", s()), ("first_seen", s()), ("last_seen", s()), ("current", json!({"type": "boolean"})), ("trusted", json!({"type": "boolean"}))], &[])),
        "EventList": list(obj(&[("timestamp", s()), ("event", s()), ("outcome", s()), ("user_id", s()), ("email", s()), ("ip", s()), ("user_agent", s()), ("request_id", s()), ("details", json!({"type": "object"}))], &[])),
        "Order": obj(&[("symbol", s()), ("quantity", amount.clone()), ("price", amount.clone()), ("fee", amount)], &["symbol", "quantity"]),
        "Transaction": obj(&[("id", s()), ("side", s()), ("symbol", s()), ("quantity", dec()), ("price", dec()), ("fee", dec()), ("total", dec()), ("executed_at", s())], &[]),
        "Position": obj(&[("symbol", s()), ("quantity", dec()), ("average_cost", dec()), ("cost_basis", dec()), ("last_price", dec()), ("market_value", dec()), ("unrealized_pnl", dec()), ("unrealized_pnl_pct", dec())], &[]),
        "OrderResult": obj(&[("transaction", r("Transaction")), ("position", r("Position"))], &["transaction", "position"]),
        "Portfolio": obj(&[("positions", json!({"type": "array", "items": r("Position")})), ("totals", obj(&[("cost_basis", dec()), ("market_value", dec()), ("unrealized_pnl", dec()), ("realized_pnl", dec())], &[])), ("as_of", s())], &[]),
        "TransactionList": list(r("Transaction")),
        "PriceList": list(obj(&[("symbol", s()), ("name", s()), ("currency", s()), ("last_close", dec()), ("as_of", s())], &[])),
        "Price": obj(&[("symbol", s()), ("name", s()), ("currency", s()), ("price", dec()), ("change", dec()), ("change_pct", dec()), ("as_of", s()), ("source", s()), ("history", json!({"type": "array"}))], &[]),
        "NewsList": list(obj(&[("id", s()), ("title", s()), ("summary", s()), ("url", s()), ("source", s()), ("published_at", s()), ("symbols", json!({"type": "array", "items": s()})), ("sentiment", obj(&[("score", json!({"type": "number"})), ("label", s())], &[]))], &[])),
        "PredictionRequest": obj(&[("symbol", s()), ("horizon_days", json!({"type": "integer", "minimum": 1, "maximum": 30, "default": 5}))], &["symbol"]),
        "Prediction": obj(&[("symbol", s()), ("horizon_days", json!({"type": "integer"})), ("as_of", s()), ("last_close", dec()), ("predicted_close", dec()), ("predicted_return", json!({"type": "number"})), ("direction", s()), ("probability_up", json!({"type": "number"})), ("interval", json!({"type": "object"})), ("model", json!({"type": "object"})), ("evaluation", json!({"type": "object"}))], &[]),
    })
}

/// The OpenAPI 3.1 document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for e in ENDPOINTS {
        let mut op = json!({
            "summary": e.summary,
            "operationId": format!("{}{}", e.method, e.path.replace(['/', '{', '}', '-', '.'], "_")),
            "responses": {
                e.status.to_string(): if e.response == "Empty" {
                    json!({"description": "done"})
                } else {
                    json!({"description": "success", "content": {"application/json": {"schema": r(e.response)}}})
                },
                "default": {"description": format!("problem: {}", e.errors.join(", ")), "content": {"application/problem+json": {"schema": r("Problem")}}},
            },
        });
        if e.auth {
            op["security"] = json!([{"bearer": []}, {"cookie": []}]);
        }
        if let Some(req) = e.request {
            op["requestBody"] = json!({"required": true, "content": {"application/json": {"schema": r(req)}}});
        }
        if e.path.contains("{id}") || e.path.contains("{symbol}") {
            let name = if e.path.contains("{id}") { "id" } else { "symbol" };
            op["parameters"] = json!([{"name": name, "in": "path", "required": true, "schema": {"type": "string"}}]);
        }
        let entry = paths.entry(e.path.to_string()).or_insert_with(|| json!({}));
        entry[e.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "fortfolio", "version": env!("CARGO_PKG_VERSION"), "description": "Self-hosted financial API. Errors are RFC 9457 problem documents with a stable `code`."},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "fortfolio_access"},
            },
        },
    })
}

pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document().to_string()).into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// `GET /docs`: the endpoint table as plain HTML (no scripts, no network).
pub async fn docs() -> Html<String> {
    let mut rows = String::new();
    for e in ENDPOINTS {
        rows.push_str(&format!(
            "<tr><td>{}</td><td><code>/api/v1{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td></tr>\n",
            e.method.to_uppercase(),
            esc(e.path),
            esc(e.summary),
            if e.auth { "token" } else { "–" },
            e.request.unwrap_or("–"),
            e.status,
            e.response,
            e.errors.join(", ")
        ));
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>fortfolio API</title></head><body>\
         <h1>fortfolio API {}</h1><p>Machine-readable: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1). \
         Errors are <code>application/problem+json</code> with a stable <code>code</code>.</p>\
         <table border=\"1\" cellpadding=\"4\"><tr><th>Method</th><th>Path</th><th>What</th><th>Auth</th><th>Body</th><th>Success</th><th>Error codes</th></tr>\n{rows}</table></body></html>",
        env!("CARGO_PKG_VERSION")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_is_openapi_31_with_every_endpoint() {
        let d = document();
        assert_eq!(d["openapi"], "3.1.0");
        let paths = d["paths"].as_object().unwrap();
        for e in ENDPOINTS {
            assert!(paths[e.path][e.method].is_object(), "{} {}", e.method, e.path);
            if let Some(req) = e.request {
                assert!(d["components"]["schemas"][req].is_object(), "{req}");
            }
            assert!(d["components"]["schemas"][e.response].is_object(), "{}", e.response);
        }
    }
}
