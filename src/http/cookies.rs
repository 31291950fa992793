//! Browser mode (SPEC §5.2): auth cookies are `HttpOnly; Secure;
//! SameSite=Strict`; the CSRF cookie is readable by scripts so they can echo
//! it in `X-CSRF-Token`.

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};

use crate::http::extract::{ACCESS_COOKIE, DEVICE_COOKIE, REFRESH_COOKIE};
use crate::http::state::AppState;

pub const REFRESH_PATH: &str = "/api/v1/auth/refresh";

fn set(headers: &mut HeaderMap, cookie: String) {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.append(SET_COOKIE, v);
    }
}

fn cookie(name: &str, value: &str, path: &str, max_age: u64, http_only: bool) -> String {
    let http_only = if http_only { "; HttpOnly" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; Secure{http_only}; SameSite=Strict")
}

/// Sets a fresh CSRF cookie bound to `session_id` and returns its value.
pub fn set_csrf(state: &AppState, headers: &mut HeaderMap, session_id: &str) -> String {
    let token = state.csrf.issue(session_id);
    set(headers, cookie(state.csrf_cookie(), &token, "/", 7 * 86400, false));
    token
}

/// Sets the access, refresh and CSRF cookies for a new token pair.
pub fn set_session(state: &AppState, headers: &mut HeaderMap, tokens: &crate::accounts::TokenPair) {
    let auth = &state.config.auth;
    set(
        headers,
        cookie(
            ACCESS_COOKIE,
            &tokens.access_token,
            "/",
            auth.access_ttl.0.as_secs(),
            true,
        ),
    );
    set(
        headers,
        cookie(
            REFRESH_COOKIE,
            &tokens.refresh_token,
            REFRESH_PATH,
            auth.refresh_ttl.0.as_secs(),
            true,
        ),
    );
    set_csrf(state, headers, &tokens.session_id);
}

pub fn set_device(headers: &mut HeaderMap, device: &str) {
    set(
        headers,
        cookie(DEVICE_COOKIE, device, "/api/v1/auth", 365 * 86400, true),
    );
}

/// Expires the session cookies (logout).
pub fn clear_session(headers: &mut HeaderMap) {
    set(headers, cookie(ACCESS_COOKIE, "", "/", 0, true));
    set(headers, cookie(REFRESH_COOKIE, "", REFRESH_PATH, 0, true));
}
