//! CSRF protection (SPEC §5.2): a state-changing request that a cookie
//! authenticates must echo the CSRF cookie in `X-CSRF-Token`. Bearer
//! requests are exempt: a browser never adds an Authorization header on its
//! own.
//!
//! The token is a *signed* double submit (OWASP): `<nonce>.<HMAC(session,
//! nonce)>`, bound to the session it was issued for. A pair of cookies
//! planted by a sibling subdomain or a man in the middle therefore does not
//! pass: the attacker cannot sign a token for the victim's session. With TLS
//! on, the cookie is named `__Host-fortfolio_csrf`, which browsers accept
//! only from this origin over HTTPS, with `Path=/` and no `Domain`.

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use ring::hmac;
use subtle::ConstantTimeEq;

use crate::api::extract::cookie;
use crate::error::ApiError;

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

/// Signs and checks session-bound CSRF tokens.
pub struct CsrfKey(hmac::Key);

impl CsrfKey {
    /// A key of its own, derived from the server secret.
    pub fn derive(server_secret: &[u8]) -> Self {
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, server_secret), b"fortfolio csrf v1");
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    fn message(session_id: &str, nonce: &str) -> Vec<u8> {
        format!("{session_id}|{nonce}").into_bytes()
    }

    /// A fresh token for `session_id` (`""` for a client with no session:
    /// such a token passes no check).
    pub fn issue(&self, session_id: &str) -> String {
        let nonce = super::random_token(18);
        let tag = hmac::sign(&self.0, &Self::message(session_id, &nonce));
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{nonce}.{}", b64.encode(tag.as_ref()))
    }

    /// Whether `token` was issued for `session_id` (constant time).
    pub fn is_valid(&self, token: &str, session_id: &str) -> bool {
        let Some((nonce, tag)) = token.split_once('.') else {
            return false;
        };
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let Ok(tag) = b64.decode(tag) else { return false };
        !session_id.is_empty() && hmac::verify(&self.0, &Self::message(session_id, nonce), &tag).is_ok()
    }
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
    state: &crate::app::AppState,
    headers: &HeaderMap,
    client: &super::client::ClientInfo,
    session_id: &str,
) -> Result<(), ApiError> {
    use super::events::{EventType, NewEvent};
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
