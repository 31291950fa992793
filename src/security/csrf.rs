//! CSRF protection (SPEC §5.2), double-submit cookie: a state-changing
//! request that a cookie authenticates must echo the `fortfolio_csrf` cookie
//! in `X-CSRF-Token`. Bearer requests are exempt: a browser never adds an
//! Authorization header on its own.

use axum::http::{HeaderMap, Method, StatusCode};
use subtle::ConstantTimeEq;

use crate::api::extract::{cookie, CSRF_COOKIE};
use crate::error::ApiError;

pub const HEADER: &str = "x-csrf-token";

pub fn is_state_changing(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// Checks the double submit; compares in constant time.
pub fn verify(headers: &HeaderMap) -> Result<(), ApiError> {
    let cookie = cookie(headers, CSRF_COOKIE).unwrap_or("");
    let header = headers.get(HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let matches: bool = cookie.as_bytes().ct_eq(header.as_bytes()).into();
    if cookie.len() >= 16 && matches {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "cookie-authenticated requests must send X-CSRF-Token equal to the fortfolio_csrf cookie",
        ))
    }
}

/// [`verify`], recording a `csrf_failed` event when it fails.
pub async fn enforce(
    state: &crate::app::AppState,
    headers: &HeaderMap,
    client: &super::client::ClientInfo,
) -> Result<(), ApiError> {
    use super::events::{EventType, NewEvent};
    let result = verify(headers);
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
    fn double_submit() {
        let tok = "abcdefghijklmnopqrstuvwxyz";
        assert!(verify(&headers(&format!("fortfolio_csrf={tok}"), Some(tok))).is_ok());
        assert!(verify(&headers(&format!("fortfolio_csrf={tok}"), None)).is_err());
        assert!(verify(&headers(
            &format!("fortfolio_csrf={tok}"),
            Some("abcdefghijklmnopqrstuvwxyZ")
        ))
        .is_err());
        assert!(verify(&headers("fortfolio_csrf=", Some(""))).is_err());
        assert!(!is_state_changing(&Method::GET));
        assert!(is_state_changing(&Method::PATCH));
    }
}
