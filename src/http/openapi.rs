//! The OpenAPI 3.1 document, generated from the code that serves the API.
//!
//! Every route is registered with `utoipa_axum::routes!` from a handler
//! carrying `#[utoipa::path]`, so the router and the document are built
//! from one list; request and response bodies are the handlers' own serde
//! types deriving `ToSchema`. What the layers in front of the handlers add
//! to every operation (problem answers, rate-limit and request-id headers,
//! the CSRF header of cookie sessions) is filled in by [`complete`], from
//! facts each operation states: its security, body, parameters and rate-limit
//! group. `GET /api/v1/openapi.json` serves the result; `GET /docs` renders
//! it with the vendored Swagger UI (a plain table without JavaScript).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Extension;
use serde_json::{json, Map, Value};
use utoipa::openapi::response::{Response as OaResponse, ResponseBuilder};
use utoipa::openapi::RefOr;
use utoipa::OpenApi;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The problem schema of one status, naming the codes it may carry.
fn problem_schema(codes: &[&str]) -> Value {
    json!({
        "allOf": [{"$ref": "#/components/schemas/Problem"}],
        "properties": {"code": {"type": "string", "enum": codes}},
    })
}

fn problem_description(codes: &[Value]) -> String {
    let names: Vec<String> = codes
        .iter()
        .filter_map(Value::as_str)
        .map(|c| format!("`{c}`"))
        .collect();
    format!("A problem document; `code` is one of {}.", names.join(", "))
}

/// The extension of a response that names its problem codes until
/// [`complete`] turns it into the response's schema.
const CODES: &str = "x-problem-codes";

/// Responses for `(status, codes)` pairs, as `problems!` declares them.
pub fn problem_responses(list: &[(u16, &[&str])]) -> BTreeMap<String, RefOr<OaResponse>> {
    list.iter()
        .map(|(status, codes)| {
            let response = ResponseBuilder::new()
                .description("")
                .extensions(Some([(CODES, json!(codes))].into_iter().collect()))
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

/// The parts of the document that are not operations.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "fortfolio",
        description = "A self-hosted financial API: hardened accounts, a portfolio, market prices, news with sentiment and price predictions.\n\nErrors are RFC 9457 problem documents (`application/problem+json`) with a stable `code`; every operation lists the codes each status can carry. Decimals are strings. Lists are paged with `limit` (1–500, default 50) and the opaque `cursor` of the previous page's `next_cursor`.\n\nAuthentication: `Authorization: Bearer <access token>` for API clients, or the `fortfolio_access` cookie for browsers, which must then send the session's `X-CSRF-Token` (from `GET /api/v1/auth/csrf`) on every state-changing request.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0"),
    ),
    components(schemas(crate::http::error::Problem)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "auth", description = "Registration, login, tokens, sessions"),
        (name = "two-factor", description = "TOTP enrolment and the second login step"),
        (name = "account", description = "The caller's account, sessions, devices and security log"),
        (name = "portfolio", description = "Orders, positions and the ledger"),
        (name = "market", description = "Prices and news"),
        (name = "predictions", description = "Forecasts with their out-of-sample record"),
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "admin", description = "Accounts and security events, for accounts with the admin role; actions need a recent authentication"),
    )
)]
pub struct Base;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from register, login or refresh."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("`metrics.token` from the configuration."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::http::extract::ACCESS_COOKIE,
                "The browser session cookie; state-changing requests also need X-CSRF-Token.",
            ))),
        );
    }
}

/// Security requirement of an operation that needs an access token.
pub const SIGNED_IN: &str = "bearer";

/// A link from one operation's answer to the next operation of a flow.
struct Link {
    from: &'static str,
    status: &'static str,
    name: &'static str,
    to: &'static str,
    /// Parameters of `to`, as runtime expressions on the answer.
    parameters: &'static [(&'static str, &'static str)],
    /// `(field, expression)`: the request body of `to`.
    body: Option<(&'static str, &'static str)>,
}

const fn link(from: &'static str, status: &'static str, name: &'static str, to: &'static str) -> Link {
    Link {
        from,
        status,
        name,
        to,
        parameters: &[],
        body: None,
    }
}

/// The flows a client (or a stateful fuzzer) follows: log in, finish with
/// a second factor, see the account; buy, see the ledger; list sessions or
/// devices, end one.
const LINKS: &[Link] = &[
    Link {
        body: Some(("challenge_token", "$response.body#/challenge_token")),
        ..link("login", "200", "FinishWithTotp", "loginTwoFactor")
    },
    Link {
        body: Some(("challenge_token", "$response.body#/challenge_token")),
        ..link("login", "200", "FinishWithBackupCode", "loginBackupCode")
    },
    link("login", "200", "Me", "getMe"),
    link("loginTwoFactor", "200", "Me", "getMe"),
    link("register", "201", "Me", "getMe"),
    Link {
        parameters: &[("symbol", "$response.body#/transaction/symbol")],
        ..link("buy", "201", "Transactions", "listTransactions")
    },
    Link {
        parameters: &[("symbol", "$response.body#/transaction/symbol")],
        ..link("sell", "201", "Transactions", "listTransactions")
    },
    Link {
        parameters: &[("symbol", "$response.body#/transaction/symbol")],
        ..link("buy", "201", "Price", "getPrice")
    },
    Link {
        parameters: &[("id", "$response.body#/items/0/id")],
        ..link("listSessions", "200", "EndSession", "endSession")
    },
    Link {
        parameters: &[("id", "$response.body#/items/0/id")],
        ..link("listDevices", "200", "ForgetDevice", "forgetDevice")
    },
    Link {
        parameters: &[("symbol", "$response.body#/items/0/symbol")],
        ..link("listPrices", "200", "Price", "getPrice")
    },
    Link {
        body: Some(("symbol", "$response.body#/items/0/symbol")),
        ..link("listPrices", "200", "Predict", "predict")
    },
    Link {
        parameters: &[("cursor", "$response.body#/next_cursor")],
        ..link("listTransactions", "200", "NextPage", "listTransactions")
    },
    Link {
        parameters: &[("cursor", "$response.body#/next_cursor")],
        ..link("listNews", "200", "NextPage", "listNews")
    },
];

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every operation of the document: its path, method and object.
fn operations(doc: &Value) -> impl Iterator<Item = (&String, &'static str, &Value)> {
    doc["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .flat_map(|(path, item)| METHODS.into_iter().map(move |m| (path, m, &item[m])))
        .filter(|(_, _, op)| op.is_object())
}

/// Adds to one operation's answer for `status` the problem `code`.
fn add_problem(op: &mut Value, status: u16, code: &str) {
    let Some(responses) = op["responses"].as_object_mut() else {
        return;
    };
    let entry = responses
        .entry(status.to_string())
        .or_insert_with(|| json!({"description": ""}));
    let schema = &mut entry["content"][PROBLEM_JSON]["schema"];
    if schema.is_null() {
        *schema = problem_schema(&[]);
    }
    if let Some(list) = schema["properties"]["code"]["enum"].as_array_mut() {
        if !list.iter().any(|c| c == code) {
            list.push(json!(code));
        }
    }
}

/// Words every problem answer by the codes it carries; an answer that may
/// also be a typed body (`503` of /ready) keeps its own words first.
fn describe_problems(op: &mut Value) {
    const OR: &str = " Or a problem document";
    let Some(responses) = op["responses"].as_object_mut() else {
        return;
    };
    for response in responses.values_mut() {
        let Some(codes) = response["content"][PROBLEM_JSON]["schema"]["properties"]["code"]["enum"].as_array() else {
            continue;
        };
        let text = problem_description(codes);
        let typed = response["content"].as_object().is_some_and(|c| c.len() > 1);
        response["description"] = if typed {
            let own = response["description"].as_str().unwrap_or("");
            let own = own.split(OR).next().unwrap_or(own);
            json!(format!("{own}{OR}{}", text.trim_start_matches("A problem document")))
        } else {
            json!(text)
        };
    }
}

fn header_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

fn add_header(response: &mut Value, name: &str, component: &str) {
    response["headers"][name] = header_ref(component);
}

/// What the layers of `router.rs` add to every operation, from the facts
/// the operation states about itself.
fn complete_operation(method: &str, op: &mut Value) {
    // Secured: a token is required (an operation that also lists `{}`
    // takes one only if sent, and never refuses for it).
    let requirements = op["security"].as_array().cloned().unwrap_or_default();
    let secured = requirements.iter().any(|r| r.get(SIGNED_IN).is_some())
        && !requirements.iter().any(|r| r.as_object().is_some_and(Map::is_empty));
    let limited = op["x-rate-limit-group"].is_string();
    let has_body = op["requestBody"].is_object();
    // An optional body is absent, never `null` (which no operation takes).
    let schema = &mut op["requestBody"]["content"]["application/json"]["schema"];
    if let Some(variants) = schema.get("oneOf").and_then(Value::as_array).cloned() {
        let not_null: Vec<Value> = variants.into_iter().filter(|v| v["type"] != "null").collect();
        if let [only] = not_null.as_slice() {
            *schema = only.clone();
        }
    }
    if !has_body {
        if let Some(op) = op.as_object_mut() {
            op.remove("requestBody");
        }
    }
    let state_changing = method != "get";
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let has_params = params
        .iter()
        .any(|p| matches!(p["in"].as_str(), Some("query" | "path")));

    let mut extra_params = vec![json!({"$ref": "#/components/parameters/RequestId"})];
    if secured && state_changing {
        extra_params.push(json!({"$ref": "#/components/parameters/CsrfToken"}));
    }
    let list = &mut op["parameters"];
    if !list.is_array() {
        *list = json!([]);
    }
    if let Some(list) = list.as_array_mut() {
        list.extend(extra_params);
    }

    let declared: Vec<(u16, String)> = op["responses"]
        .as_object_mut()
        .into_iter()
        .flat_map(|r| r.iter_mut())
        .filter_map(|(status, response)| {
            let codes = response.as_object_mut()?.remove(CODES)?;
            Some((status.parse::<u16>().ok()?, codes))
        })
        .flat_map(|(status, codes)| {
            let codes: Vec<String> = serde_json::from_value(codes).unwrap_or_default();
            codes.into_iter().map(move |c| (status, c))
        })
        .collect();
    for (status, code) in declared {
        add_problem(op, status, &code);
    }
    add_problem(op, 413, "payload_too_large");
    add_problem(op, 503, "overloaded");
    add_problem(op, 500, "internal");
    if has_body {
        add_problem(op, 400, "invalid_json");
        add_problem(op, 415, "invalid_json");
        add_problem(op, 422, "validation_failed");
    }
    if has_params {
        add_problem(op, 422, "validation_failed");
    }
    if secured {
        add_problem(op, 401, "unauthorized");
        add_problem(op, 403, "account_disabled");
        if state_changing {
            add_problem(op, 403, "csrf_failed");
        }
    }
    if limited {
        add_problem(op, 429, "rate_limited");
        add_problem(op, 503, "storage_unavailable");
    }
    describe_problems(op);

    let Some(responses) = op["responses"].as_object_mut() else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        add_header(response, "X-Request-Id", "RequestId");
        add_header(response, "Server-Timing", "ServerTiming");
        if limited {
            add_header(response, "RateLimit-Limit", "RateLimitLimit");
            add_header(response, "RateLimit-Remaining", "RateLimitRemaining");
            add_header(response, "RateLimit-Reset", "RateLimitReset");
        }
        match status.as_str() {
            "429" | "423" | "503" => add_header(response, "Retry-After", "RetryAfter"),
            "401" => add_header(response, "WWW-Authenticate", "WwwAuthenticate"),
            _ => {}
        }
    }
}

fn components_extra() -> Value {
    let header = |description: &str, schema: Value| json!({"description": description, "schema": schema});
    json!({
        "headers": {
            "RequestId": header("The request's id: the client's `X-Request-Id` when well formed, else a new one.", json!({"type": "string"})),
            "ServerTiming": header("Time spent in the server (`app;dur=<ms>`).", json!({"type": "string"})),
            "RateLimitLimit": header("Requests allowed in the current window of this operation's rate-limit group.", json!({"type": "integer", "minimum": 0})),
            "RateLimitRemaining": header("Requests left in the current window.", json!({"type": "integer", "minimum": 0})),
            "RateLimitReset": header("Seconds until the window resets.", json!({"type": "integer", "minimum": 0})),
            "RetryAfter": header("Seconds to wait before retrying.", json!({"type": "integer", "minimum": 1})),
            "WwwAuthenticate": header("`Bearer`.", json!({"type": "string"})),
            "IdempotentReplayed": header("`true` when the answer is the stored one of an earlier request with the same `Idempotency-Key`.", json!({"type": "string", "enum": ["true"]})),
            "SetCookie": header("Browser session cookies (`fortfolio_access`, `fortfolio_refresh`, `fortfolio_device`, `fortfolio_csrf`): HttpOnly, SameSite=Strict, Secure over TLS.", json!({"type": "string"})),
        },
        "parameters": {
            "RequestId": {
                "name": "X-Request-Id", "in": "header", "required": false,
                "description": "A client-chosen request id, echoed back and logged when it is 1–128 of `A–Z a–z 0–9 - _ . :`; any other value is replaced by a new id, never refused.",
                "schema": {"type": "string"},
            },
            "CsrfToken": {
                "name": "X-CSRF-Token", "in": "header", "required": false,
                "description": "Required when the access token comes from the `fortfolio_access` cookie: the session's CSRF token from `GET /api/v1/auth/csrf` (double-submitted with the `fortfolio_csrf` cookie). Not needed with a bearer token.",
                "schema": {"type": "string"},
            },
        },
    })
}

fn add_links(doc: &mut Value) {
    let by_id: BTreeMap<String, (String, &str)> = operations(doc)
        .filter_map(|(path, method, op)| Some((op["operationId"].as_str()?.to_string(), (path.clone(), method))))
        .collect();
    for l in LINKS {
        let (Some((path, method)), true) = (by_id.get(l.from), by_id.contains_key(l.to)) else {
            continue;
        };
        let mut link = json!({"operationId": l.to});
        if !l.parameters.is_empty() {
            let map: Map<String, Value> = l.parameters.iter().map(|(k, v)| ((*k).to_string(), json!(v))).collect();
            link["parameters"] = Value::Object(map);
        }
        if let Some((field, expression)) = l.body {
            link["requestBody"] = json!({ field: expression });
        }
        doc["paths"][path][method]["responses"][l.status]["links"][l.name] = link;
    }
}

/// The served document: the generated one completed with what the layers add.
pub fn complete(generated: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(&generated).unwrap_or_default();
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for method in METHODS {
                if item[method].is_object() {
                    complete_operation(method, &mut item[method]);
                }
            }
        }
    }
    add_links(&mut doc);
    if let (Some(components), Value::Object(extra)) = (doc["components"].as_object_mut(), components_extra()) {
        components.extend(extra);
    }
    doc
}

/// The document as served, rendered once.
pub struct Published {
    json: String,
    html: String,
}

impl Published {
    pub fn new(doc: &Value) -> Self {
        Self {
            json: serde_json::to_string_pretty(doc).unwrap_or_default() + "\n",
            html: docs_page(doc),
        }
    }

    pub fn json(&self) -> &str {
        &self.json
    }
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApi",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
pub async fn openapi_json(Extension(doc): Extension<Arc<Published>>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], doc.json.clone()).into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The content-security policy of the docs page: scripts, styles and images
/// from this server only, no inline code, no eval, no network.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                        connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The docs page: Swagger UI over `/api/v1/openapi.json`, and, for a
/// browser without JavaScript, every operation in a plain table.
fn docs_page(doc: &Value) -> String {
    let mut rows = String::new();
    for (path, method, op) in operations(doc) {
        let statuses: Vec<String> = op["responses"]
            .as_object()
            .map(|r| {
                r.iter()
                    .map(|(status, resp)| {
                        let codes: Vec<&str> = resp["content"][PROBLEM_JSON]["schema"]["properties"]["code"]["enum"]
                            .as_array()
                            .map(|c| c.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        if codes.is_empty() {
                            status.clone()
                        } else {
                            format!("{status} ({})", codes.join(", "))
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let body = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(|r| r.rsplit('/').next().unwrap_or(r).to_string())
            .unwrap_or_else(|| "–".into());
        rows.push_str(&format!(
            "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            method.to_uppercase(),
            esc(path),
            esc(op["summary"].as_str().unwrap_or("")),
            if op["security"].is_array() { "token" } else { "–" },
            esc(&body),
            esc(&statuses.join("; ")),
        ));
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>fortfolio API</title><link rel=\"icon\" href=\"data:,\">\
         <link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\"><link rel=\"stylesheet\" href=\"/docs/docs.css\"></head>\
         <body><div id=\"swagger-ui\"></div>\
         <noscript><h1>fortfolio API {version}</h1><p>Machine-readable: <a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a> (OpenAPI 3.1). \
         Errors are <code>application/problem+json</code> with a stable <code>code</code>.</p>\
         <table><tr><th>Method</th><th>Path</th><th>What</th><th>Auth</th><th>Body</th><th>Answers (problem codes)</th></tr>\n{rows}</table></noscript>\
         <script src=\"/docs/swagger-ui-bundle.js\"></script><script src=\"/docs/docs.js\"></script></body></html>\n",
        version = env!("CARGO_PKG_VERSION"),
    )
}

/// Starts Swagger UI on the served document (a file, so the CSP needs no
/// inline script).
const DOCS_JS: &str = "window.addEventListener('load', function () {\n  \
    window.ui = SwaggerUIBundle({ url: '/api/v1/openapi.json', dom_id: '#swagger-ui', deepLinking: true,\n    \
    validatorUrl: null, defaultModelsExpandDepth: 2, defaultModelExpandDepth: 2 });\n});\n";

const DOCS_CSS: &str = "noscript table { border-collapse: collapse; font-family: sans-serif; font-size: 14px; }\n\
    noscript td, noscript th { border: 1px solid #ccc; padding: 4px; vertical-align: top; }\n";

fn with_docs_csp(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(DOCS_CSP));
    resp
}

/// The API reference: Swagger UI rendering this document, with a plain
/// table for browsers without JavaScript. Loads nothing from the network.
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "getDocs",
    tag = "operations",
    responses((status = 200, description = "The reference page", content_type = "text/html", body = String)),
)]
pub async fn docs(Extension(doc): Extension<Arc<Published>>) -> Response {
    with_docs_csp(Html(doc.html.clone()).into_response())
}

/// The files the docs page loads: Swagger UI's, vendored in the binary,
/// and its starter script.
#[utoipa::path(
    get,
    path = "/docs/{file}",
    operation_id = "getDocsAsset",
    tag = "operations",
    params(("file" = String, Path, description = "A file of the docs page", pattern = "^(swagger-ui-bundle\\.js|swagger-ui\\.css|docs\\.js|docs\\.css)$")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"),
            (String = "text/css"),
        )),
        (status = 404, description = "A problem document; `code` is one of `not_found`.", content_type = "application/problem+json", body = crate::http::error::Problem),
    ),
)]
pub async fn docs_asset(Path(file): Path<String>) -> Response {
    let (body, content_type): (Vec<u8>, &'static str) = match file.as_str() {
        "docs.js" => (DOCS_JS.as_bytes().to_vec(), "text/javascript; charset=utf-8"),
        "docs.css" => (DOCS_CSS.as_bytes().to_vec(), "text/css; charset=utf-8"),
        "swagger-ui-bundle.js" | "swagger-ui.css" => {
            let config = Arc::new(utoipa_swagger_ui::Config::new(["/api/v1/openapi.json"]));
            match utoipa_swagger_ui::serve(&file, config) {
                Ok(Some(f)) => (
                    f.bytes.into_owned(),
                    if file.ends_with(".css") {
                        "text/css; charset=utf-8"
                    } else {
                        "text/javascript; charset=utf-8"
                    },
                ),
                _ => return crate::http::error::ApiError::not_found("no such docs file").into_response(),
            }
        }
        _ => return crate::http::error::ApiError::not_found("no such docs file").into_response(),
    };
    with_docs_csp((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_codes_merge_into_one_enum_per_status() {
        let mut op = json!({"responses": {"200": {"description": "ok"}}});
        add_problem(&mut op, 422, "validation_failed");
        add_problem(&mut op, 422, "insufficient_quantity");
        add_problem(&mut op, 422, "validation_failed");
        describe_problems(&mut op);
        let codes = &op["responses"]["422"]["content"][PROBLEM_JSON]["schema"]["properties"]["code"]["enum"];
        assert_eq!(codes, &json!(["validation_failed", "insufficient_quantity"]));
        assert!(op["responses"]["422"]["description"]
            .as_str()
            .unwrap()
            .contains("`insufficient_quantity`"));
    }

    #[test]
    fn layers_add_their_answers_by_what_an_operation_states() {
        let mut op = json!({
            "security": [{"bearer": []}, {"cookie": []}],
            "x-rate-limit-group": "portfolio",
            "requestBody": {"content": {}},
            "responses": {"201": {"description": "ok"}},
        });
        complete_operation("post", &mut op);
        let statuses: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
        for s in ["201", "400", "401", "403", "413", "415", "422", "429", "500", "503"] {
            assert!(statuses.iter().any(|k| *k == s), "{s} missing: {statuses:?}");
        }
        assert!(op["responses"]["429"]["headers"]["Retry-After"].is_object());
        assert!(op["responses"]["201"]["headers"]["RateLimit-Remaining"].is_object());
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["$ref"].as_str())
            .collect();
        assert!(names.contains(&"#/components/parameters/CsrfToken"));

        let mut open = json!({"responses": {"200": {"description": "ok"}}});
        complete_operation("get", &mut open);
        assert!(open["responses"]["401"].is_null() && open["responses"]["429"].is_null());
    }
}
