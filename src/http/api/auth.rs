//! `/auth/*`: register, login, refresh, logout, CSRF token.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Limits;
use crate::accounts::{AuthSuccess, LoginOutcome, TokenPair};
use crate::domain::Secret;
use crate::http::cookies;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{cookie, parse_json, require_json, AppJson, AuthUser, DEVICE_COOKIE, REFRESH_COOKIE};
use crate::http::middleware::Authenticated;
use crate::http::pagination::param;
use crate::http::state::AppState;
use crate::security::client::ClientInfo;
use crate::security::jwt::TokenType;
use crate::security::rate_limit::Group;
use utoipa::openapi::path::{Parameter, ParameterIn};

pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    let r = OpenApiRouter::new;
    OpenApiRouter::new()
        .merge(limits.apply(Group::Register, r().routes(routes!(register))))
        .merge(limits.apply(Group::Login, r().routes(routes!(login))))
        .merge(limits.apply(Group::Refresh, r().routes(routes!(refresh))))
        .merge(limits.apply(Group::Logout, r().routes(routes!(logout)).routes(routes!(logout_all))))
        .merge(limits.apply(
            Group::Account,
            r().routes(routes!(csrf)).routes(routes!(password_check)),
        ))
        .merge(limits.apply(Group::Password, r().routes(routes!(reauthenticate))))
}

/// One proof: the password, or a current TOTP code (2FA on); its schema is
/// `ReauthenticateProof`, which says "exactly one".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReauthBody {
    #[serde(default)]
    password: Option<Secret>,
    #[serde(default)]
    code: Option<Secret>,
}

#[derive(Serialize, ToSchema)]
struct Reauthenticated {
    #[serde(with = "crate::domain::ts")]
    #[schema(value_type = crate::domain::schema::Timestamp)]
    authenticated_at: chrono::DateTime<chrono::Utc>,
    /// Actions that need a recent authentication work until then.
    #[serde(with = "crate::domain::ts")]
    #[schema(value_type = crate::domain::schema::Timestamp)]
    fresh_until: chrono::DateTime<chrono::Utc>,
}

problems!(ReauthProblems {
    401 => ["invalid_credentials", "invalid_2fa_code"],
    409 => ["two_factor_not_enabled"],
    423 => ["account_locked"],
});

/// Prove the password or a 2FA code again
///
/// Send exactly one of `password` and `code`. Admin actions need an
/// authentication (this, or the login) within the last 10 minutes. A wrong
/// secret counts toward the account's lockout like a failed login.
#[utoipa::path(
    post,
    path = "/auth/reauthenticate",
    operation_id = "reauthenticate",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = crate::domain::schema::ReauthenticateProof, example = json!({"password": "correct horse battery staple 42"})),
    responses((status = 200, description = "Recorded on the session", body = Reauthenticated), ReauthProblems),
)]
async fn reauthenticate(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppJson(body): AppJson<ReauthBody>,
) -> ApiResult<Json<Reauthenticated>> {
    use crate::accounts::step_up::Proof;
    let proof = match (&body.password, &body.code) {
        (Some(p), None) => Proof::Password(p),
        (None, Some(c)) => Proof::Code(c),
        (Some(_), Some(_)) => return Err(ApiError::validation("code", "send either password or code, not both")),
        (None, None) => return Err(ApiError::validation("password", "send password or code")),
    };
    let at = state.accounts.reauthenticate(&auth.ctx, proof, &client).await?;
    Ok(Json(Reauthenticated {
        authenticated_at: at,
        fresh_until: state.accounts.fresh_until(at),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Register)]
struct RegisterBody {
    #[schema(value_type = crate::domain::schema::EmailAddress)]
    email: String,
    #[schema(value_type = crate::domain::schema::NewPassword)]
    password: Secret,
    #[serde(default)]
    #[schema(value_type = Option<crate::domain::schema::FullName>)]
    full_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Login)]
struct LoginBody {
    /// Any string: an address that is not an account's is answered exactly
    /// like a wrong password.
    #[schema(example = "ann@example.com")]
    email: String,
    #[schema(value_type = String, format = Password, example = "correct horse battery staple 42")]
    password: Secret,
}

problems!(RegisterProblems {
    409 => ["email_taken"],
    422 => ["weak_password"],
});

problems!(PasswordCheckProblems {
    422 => ["validation_failed"],
});

problems!(LoginProblems {
    401 => ["invalid_credentials"],
    403 => ["account_disabled"],
    423 => ["account_locked"],
});

problems!(RefreshProblems {
    401 => ["unauthorized", "refresh_token_reused"],
    403 => ["csrf_failed", "account_disabled"],
});

/// A register/login success: JSON body plus the browser-mode cookies.
pub fn auth_response(state: &AppState, status: StatusCode, body: AuthSuccess) -> Response {
    let mut headers = HeaderMap::new();
    cookies::set_session(state, &mut headers, &body.tokens);
    cookies::set_device(&mut headers, &body.device_token);
    (status, headers, Json(body)).into_response()
}

/// Create an account
///
/// Answers like a login: tokens, the user, a device token, and the browser
/// session cookies.
#[utoipa::path(
    post,
    path = "/auth/register",
    operation_id = "register",
    tag = "auth",
    request_body(content = RegisterBody, example = json!({"email": "ann@example.com", "password": "correct horse battery staple 42", "full_name": "Ann Example"})),
    params(DeviceTokenHeader),
    responses(
        (status = 201, description = "The account, signed in", body = AuthSuccess, headers(("Set-Cookie" = String, description = "Session cookies"))),
        RegisterProblems,
    ),
)]
async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<RegisterBody>,
) -> ApiResult<Response> {
    let out = state
        .accounts
        .register(&body.email, body.password.expose(), body.full_name, &client)
        .await?;
    Ok(auth_response(&state, StatusCode::CREATED, out))
}

/// The device token a client presents: header first, then cookie.
pub fn device_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("x-device-token")
        .and_then(|v| v.to_str().ok())
        .or_else(|| cookie(headers, DEVICE_COOKIE))
}

/// Log in
///
/// With 2FA on, a correct password answers a challenge to finish with
/// `POST /auth/login/2fa` or `POST /auth/2fa/backup-code`.
#[utoipa::path(
    post,
    path = "/auth/login",
    operation_id = "login",
    tag = "auth",
    request_body(content = LoginBody, example = json!({"email": "ann@example.com", "password": "correct horse battery staple 42"})),
    params(DeviceTokenHeader),
    responses(
        (status = 200, description = "Tokens, or a second-factor challenge", body = LoginAnswer, headers(("Set-Cookie" = String, description = "Session cookies (not with a challenge)"))),
        LoginProblems,
    ),
)]
async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    AppJson(body): AppJson<LoginBody>,
) -> ApiResult<Response> {
    let outcome = state
        .accounts
        .login(&body.email, &body.password, &client, device_token(&headers))
        .await?;
    Ok(match outcome {
        LoginOutcome::Tokens(out) => auth_response(&state, StatusCode::OK, out),
        LoginOutcome::Challenge {
            challenge_token,
            expires_in,
        } => Json(LoginAnswer::Challenge(Challenge {
            two_factor_required: true,
            challenge_token,
            expires_in,
        }))
        .into_response(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Refresh)]
struct RefreshBody {
    refresh_token: String,
}

/// Exchange a refresh token for a new pair
///
/// API clients send the token in the body; browsers send no body and the
/// `fortfolio_refresh` cookie, with the session's `X-CSRF-Token`. The old
/// refresh token is spent: presenting it again revokes the session.
#[utoipa::path(
    post,
    path = "/auth/refresh",
    operation_id = "refresh",
    tag = "auth",
    request_body(content = Option<RefreshBody>, description = "Absent when the refresh cookie is used"),
    params(CsrfHeader),
    responses(
        (status = 200, description = "A new token pair", body = TokenPair, headers(("Set-Cookie" = String, description = "Session cookies"))),
        RefreshProblems,
    ),
)]
async fn refresh(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    // The token comes in the body (API clients) or the refresh cookie
    // (browsers, which must also pass the CSRF check of its session).
    let token = if body.iter().all(u8::is_ascii_whitespace) {
        let from_cookie = cookie(&headers, REFRESH_COOKIE)
            .map(str::to_string)
            .ok_or_else(|| ApiError::unauthorized("a refresh token is required, in the body or the refresh cookie"))?;
        let session = state
            .accounts
            .jwt
            .verify(&from_cookie, TokenType::Refresh)
            .and_then(|c| c.sid)
            .unwrap_or_default();
        crate::http::csrf::enforce(&state, &headers, &client, &session).await?;
        from_cookie
    } else {
        require_json(&headers)?;
        parse_json::<RefreshBody>(&body)?.refresh_token
    };
    let pair: TokenPair = state.accounts.refresh(&token, &client).await?;
    let mut out = HeaderMap::new();
    cookies::set_session(&state, &mut out, &pair);
    Ok((out, Json(pair)).into_response())
}

/// End this session
///
/// Revokes the access token and its session's refresh token.
#[utoipa::path(
    post,
    path = "/auth/logout",
    operation_id = "logout",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Logged out", body = LoggedOut, example = json!({"logged_out": true}))),
)]
async fn logout(State(state): State<AppState>, auth: AuthUser, client: ClientInfo) -> ApiResult<Response> {
    state.accounts.logout(&auth.ctx, &client).await?;
    let mut headers = HeaderMap::new();
    cookies::clear_session(&mut headers);
    Ok((
        headers,
        Json(LoggedOut {
            logged_out: true,
            sessions_ended: None,
        }),
    )
        .into_response())
}

/// End every session of the account
#[utoipa::path(
    post,
    path = "/auth/logout-all",
    operation_id = "logoutAll",
    tag = "auth",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Every session ended", body = LoggedOut, example = json!({"logged_out": true, "sessions_ended": 3}))),
)]
async fn logout_all(State(state): State<AppState>, auth: AuthUser, client: ClientInfo) -> ApiResult<Response> {
    let ended = state.accounts.logout_all(&auth.ctx, &client).await?;
    let mut headers = HeaderMap::new();
    cookies::clear_session(&mut headers);
    Ok((
        headers,
        Json(LoggedOut {
            logged_out: true,
            sessions_ended: Some(ended),
        }),
    )
        .into_response())
}

/// A CSRF token for the session of the access token sent, if any (a token
/// without a session passes no check, but the call never fails). The rate
/// limiter in front has already checked that token in full.
#[utoipa::path(
    get,
    path = "/auth/csrf",
    operation_id = "getCsrfToken",
    tag = "auth",
    summary = "A CSRF token for the caller's session",
    description = "Also set as the `fortfolio_csrf` cookie. Browsers send it back as `X-CSRF-Token` on every state-changing request made with the session cookie.",
    security((), ("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The token", body = CsrfToken, headers(("Set-Cookie" = String, description = "The `fortfolio_csrf` cookie")))),
)]
async fn csrf(State(state): State<AppState>, caller: Option<Extension<Authenticated>>) -> Response {
    let session = caller.map(|Extension(c)| c.0.session_id.clone()).unwrap_or_default();
    let mut out = HeaderMap::new();
    let token = cookies::set_csrf(&state, &mut out, &session);
    (out, Json(CsrfToken { csrf_token: token })).into_response()
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordCheck)]
struct PasswordCheckBody {
    /// The candidate password (not stored, not logged).
    #[schema(value_type = String, format = Password, example = "correct horse battery staple 42")]
    password: Secret,
    /// The address it is for, when known: its local part is refused inside
    /// the password, and counts as a guessable word.
    #[serde(default)]
    #[schema(example = "ann@example.com")]
    email: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<crate::domain::schema::FullName>)]
    full_name: Option<String>,
}

/// The password policy's verdict.
#[derive(Serialize, ToSchema)]
struct PasswordVerdict {
    /// Would register, password change or reset take it?
    acceptable: bool,
    /// zxcvbn's estimate, 0 (guessable) to 4; 3 or more is needed.
    #[schema(minimum = 0, maximum = 4)]
    score: u8,
    /// Why it would be refused (`null` when acceptable).
    reason: Option<String>,
    /// The estimator's advice.
    suggestions: Vec<String>,
}

/// Judge a password before using it
///
/// Applies the policy of register and password change (12–1024 characters,
/// zxcvbn score ≥ 3, not containing the email's local part) without
/// creating or changing anything, so a form can give feedback while the
/// user types. Touches no account: the answer is the same whether or not
/// the email is registered.
#[utoipa::path(
    post,
    path = "/auth/password-check",
    operation_id = "checkPassword",
    tag = "auth",
    request_body(content = PasswordCheckBody, example = json!({"password": "correct horse battery staple 42", "email": "ann@example.com"})),
    responses((status = 200, description = "The verdict", body = PasswordVerdict), PasswordCheckProblems),
)]
async fn password_check(AppJson(body): AppJson<PasswordCheckBody>) -> ApiResult<Json<PasswordVerdict>> {
    let full_name = crate::accounts::validate_full_name(body.full_name)?;
    let email = body.email.as_deref().and_then(|e| crate::domain::Email::parse(e).ok());
    // zxcvbn is CPU work (milliseconds at worst): off the async workers.
    let verdict = tokio::task::spawn_blocking(move || {
        crate::domain::assess_password(body.password.expose(), email.as_ref(), full_name.as_deref())
    })
    .await
    .map_err(|_| ApiError::internal("the password check stopped"))?;
    let (reason, suggestions) = match verdict.rejection {
        Some(r) => (Some(r.reason), r.suggestions),
        None => (None, Vec::new()),
    };
    Ok(Json(PasswordVerdict {
        acceptable: reason.is_none(),
        score: verdict.score,
        reason,
        suggestions,
    }))
}

/// What a correct password answers: tokens, or (2FA on) a challenge.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum LoginAnswer {
    #[allow(dead_code)] // documents the answer `auth_response` writes
    Tokens(AuthSuccess),
    Challenge(Challenge),
}

/// The answer to a correct password when 2FA is on.
#[derive(Serialize, ToSchema)]
struct Challenge {
    /// Always `true`.
    two_factor_required: bool,
    /// Finishes the login with a TOTP or backup code.
    challenge_token: String,
    /// Seconds the challenge stays valid.
    #[schema(example = 300)]
    expires_in: u64,
}

#[derive(Serialize, ToSchema)]
struct LoggedOut {
    logged_out: bool,
    /// Sessions ended (`logout-all` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions_ended: Option<usize>,
}

#[derive(Serialize, ToSchema)]
struct CsrfToken {
    csrf_token: String,
}

/// `X-Device-Token`: a device token from an earlier login on this device
/// (or the `fortfolio_device` cookie); failures made with it lock only it.
pub struct DeviceTokenHeader;

impl utoipa::IntoParams for DeviceTokenHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        header_param(
            "X-Device-Token",
            "The device token of an earlier login on this device (or the `fortfolio_device` cookie): failed attempts made with it lock only it, never the account for everyone.",
        )
    }
}

/// `X-CSRF-Token`: needed when the refresh token comes from the cookie.
struct CsrfHeader;

impl utoipa::IntoParams for CsrfHeader {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        header_param(
            "X-CSRF-Token",
            "Required when the refresh token comes from the `fortfolio_refresh` cookie: the session's CSRF token.",
        )
    }
}

/// An optional string header of the document.
pub fn header_param(name: &str, description: &str) -> Vec<Parameter> {
    param(serde_json::json!({
        "name": name, "in": "header", "required": false, "description": description,
        "schema": {"type": "string"},
    }))
    .into_iter()
    .collect()
}
