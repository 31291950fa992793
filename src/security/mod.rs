//! The security layers of SPEC §5 that live below HTTP: tokens, passwords,
//! the revocation list, key files and client identification.

pub mod alerts;
pub mod audit;
pub mod client;
pub mod cores;
pub mod csrf;
pub mod devices;
pub mod events;
pub mod jwt;
pub mod keyfile;
pub mod lockout;
pub mod password;
pub mod rate_limit;
pub mod revocation;
pub mod tls;
pub mod totp;

use sha2::{Digest, Sha256};

/// SHA-256 of a token, hex: how tokens are kept at rest and on lists.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh random token of `bytes` bytes, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rngs::OsRng.fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
