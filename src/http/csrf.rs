//! CSRF defence for cookie-authenticated requests (SPEC §5.6): a signed
//! double submit bound to the session ([`CsrfKey`] signs and checks).

use axum::http::{HeaderMap, Method, StatusCode};
use subtle::ConstantTimeEq;

use crate::http::error::ApiError;
use crate::http::extract::cookie;
use crate::security::client::ClientInfo;
pub use crate::security::csrf::CsrfKey;

pub const HEADER: &str = "x-csrf-token";
pub const COOKIE: &str = "fortfolio_csrf";
pub const HOST_COOKIE: &str = "__Host-fortfolio_csrf";

/// The CSRF cookie's name: `__Host-` prefixed whenever TLS is on.
pub fn cookie_name(tls: bool) -> &'static str {
    if tls {
        HOST_COOKIE
    } else {
        COOKIE
    }
}

pub fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Checks the signed double submit for `session_id`.
pub fn verify(headers: &HeaderMap, cookie_name: &str, key: &CsrfKey, session_id: &str) -> Result<(), ApiError> {
    let cookie = cookie(headers, cookie_name).unwrap_or("");
    let header = headers.get(HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let matches: bool = cookie.as_bytes().ct_eq(header.as_bytes()).into();
    if matches && key.is_valid(header, session_id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "cookie-authenticated requests must send X-CSRF-Token equal to the CSRF cookie of their session",
        ))
    }
}

/// [`verify`], recording a `csrf_failed` event when it fails.
pub async fn enforce(
    state: &crate::http::state::AppState,
    headers: &HeaderMap,
    client: &ClientInfo,
    session_id: &str,
) -> Result<(), ApiError> {
    use crate::security::events::{EventType, NewEvent};
    let result = verify(headers, state.csrf_cookie(), &state.csrf, session_id);
    if result.is_err() {
        state
            .events
            .emit(NewEvent::failure(EventType::CsrfFailed).client(client))
            .await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookie: &str, header: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", cookie.parse().unwrap());
        if let Some(v) = header {
            h.insert(HEADER, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn signed_double_submit_bound_to_the_session() {
        let key = CsrfKey::derive(&[7u8; 32]);
        let tok = key.issue("s1");
        let jar = format!("fortfolio_csrf={tok}");
        assert!(verify(&headers(&jar, Some(&tok)), COOKIE, &key, "s1").is_ok());
        assert!(verify(&headers(&jar, None), COOKIE, &key, "s1").is_err());
        assert!(
            verify(&headers(&jar, Some(&tok)), COOKIE, &key, "s2").is_err(),
            "another session"
        );
        assert!(
            verify(&headers(&jar, Some(&tok)), HOST_COOKIE, &key, "s1").is_err(),
            "other name"
        );
        // A planted pair that matches but is not signed for the session.
        let planted = "abcdefghijklmnopqrstuvwxyz.AAAA";
        let jar = format!("fortfolio_csrf={planted}");
        assert!(verify(&headers(&jar, Some(planted)), COOKIE, &key, "s1").is_err());
        let other_server = CsrfKey::derive(&[8u8; 32]).issue("s1");
        let jar = format!("fortfolio_csrf={other_server}");
        assert!(verify(&headers(&jar, Some(&other_server)), COOKIE, &key, "s1").is_err());
        // Tokens issued without a session pass nothing.
        assert!(!key.is_valid(&key.issue(""), ""));
        assert!(!is_state_changing(&Method::GET));
        assert!(is_state_changing(&Method::PATCH));
    }
}
