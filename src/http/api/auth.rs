//! `/auth/*`: register, login, refresh, logout, CSRF token.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::limited;
use crate::accounts::{AuthSuccess, LoginOutcome, TokenPair};
use crate::domain::Secret;
use crate::http::cookies;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{cookie, parse_json, require_json, AppJson, AuthUser, DEVICE_COOKIE, REFRESH_COOKIE};
use crate::http::middleware::Authenticated;
use crate::http::state::AppState;
use crate::security::client::ClientInfo;
use crate::security::jwt::TokenType;
use crate::security::rate_limit::Group;

pub fn router(state: &AppState) -> Router<AppState> {
    let r = Router::new;
    Router::new()
        .merge(limited(
            state,
            Group::Register,
            r().route("/auth/register", post(register)),
        ))
        .merge(limited(state, Group::Login, r().route("/auth/login", post(login))))
        .merge(limited(
            state,
            Group::Refresh,
            r().route("/auth/refresh", post(refresh)),
        ))
        .merge(limited(
            state,
            Group::Logout,
            r().route("/auth/logout", post(logout))
                .route("/auth/logout-all", post(logout_all)),
        ))
        .merge(limited(state, Group::Account, r().route("/auth/csrf", get(csrf))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegisterBody {
    email: String,
    password: Secret,
    #[serde(default)]
    full_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: Secret,
}

/// A register/login success: JSON body plus the browser-mode cookies.
pub fn auth_response(state: &AppState, status: StatusCode, body: AuthSuccess) -> Response {
    let mut headers = HeaderMap::new();
    cookies::set_session(state, &mut headers, &body.tokens);
    cookies::set_device(&mut headers, &body.device_token);
    (status, headers, Json(body)).into_response()
}

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
        } => Json(Challenge {
            two_factor_required: true,
            challenge_token,
            expires_in,
        })
        .into_response(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

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
            .ok_or_else(|| ApiError::validation("refresh_token", "refresh_token is required"))?;
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
async fn csrf(State(state): State<AppState>, caller: Option<Extension<Authenticated>>) -> Response {
    let session = caller.map(|Extension(c)| c.0.session_id).unwrap_or_default();
    let mut out = HeaderMap::new();
    let token = cookies::set_csrf(&state, &mut out, &session);
    (out, Json(CsrfToken { csrf_token: token })).into_response()
}

/// The answer to a correct password when 2FA is on.
#[derive(Serialize)]
struct Challenge {
    two_factor_required: bool,
    challenge_token: String,
    expires_in: u64,
}

#[derive(Serialize)]
struct LoggedOut {
    logged_out: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    sessions_ended: Option<usize>,
}

#[derive(Serialize)]
struct CsrfToken {
    csrf_token: String,
}
