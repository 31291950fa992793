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

use base64::Engine;
use ring::hmac;

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
