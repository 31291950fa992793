//! TOTP two-factor authentication (RFC 6238: SHA-1, 6 digits, 30 s, ±1
//! step), backup codes, provisioning QR codes, and the encryption of TOTP
//! secrets at rest (XChaCha20-Poly1305 with a key file in the data dir, the
//! user id as associated data so a ciphertext cannot be moved to another user).

use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret as TotpSecret, TOTP};

pub const STEP_SECS: u64 = 30;
pub const BACKUP_CODES: usize = 10;

#[derive(Debug, thiserror::Error)]
#[error("totp: {0}")]
pub struct TotpError(String);

/// Encrypts and decrypts TOTP secrets with the server's key.
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    pub fn new(key: &[u8]) -> Result<Self, TotpError> {
        let cipher = XChaCha20Poly1305::new_from_slice(&key[..32.min(key.len())])
            .map_err(|_| TotpError("the TOTP key must be 32 bytes".into()))?;
        Ok(Self { cipher })
    }

    /// `base64(nonce ‖ ciphertext)`.
    pub fn seal(&self, user_id: &str, secret: &[u8]) -> Result<String, TotpError> {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| TotpError("encryption failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend(ct);
        Ok(base64::engine::general_purpose::STANDARD.encode(out))
    }

    pub fn open(&self, user_id: &str, sealed: &str) -> Result<Vec<u8>, TotpError> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| TotpError("sealed secret is not base64".into()))?;
        if raw.len() < 24 + 16 {
            return Err(TotpError("sealed secret is too short".into()));
        }
        let (nonce, ct) = raw.split_at(24);
        let nonce: [u8; 24] = nonce
            .try_into()
            .map_err(|_| TotpError("sealed secret has a bad nonce".into()))?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: user_id.as_bytes(),
                },
            )
            .map_err(|_| TotpError("sealed secret does not decrypt (wrong key or user)".into()))
    }
}

/// A fresh 160-bit secret (RFC 4226's recommendation).
pub fn new_secret() -> Vec<u8> {
    let mut s = vec![0u8; 20];
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

pub fn base32(secret: &[u8]) -> String {
    match TotpSecret::Raw(secret.to_vec()).to_encoded() {
        TotpSecret::Encoded(s) => s,
        TotpSecret::Raw(_) => String::new(),
    }
}

fn totp(secret: &[u8]) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP_SECS, secret.to_vec())
}

/// The code for a time step (for tests and independent checks).
pub fn code_at(secret: &[u8], unix_secs: u64) -> String {
    totp(secret).generate(unix_secs)
}

/// The time step a code matches within ±1 step of `now`, if any.
/// Every candidate is compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, now_secs: u64) -> Option<u64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret);
    let now_step = now_secs / STEP_SECS;
    let mut found = None;
    for step in [now_step.saturating_sub(1), now_step, now_step + 1] {
        let expected = t.generate(step * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = Some(step);
        }
    }
    found
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `otpauth://totp/ISSUER:ACCOUNT?secret=…&issuer=…&algorithm=SHA1&digits=6&period=30`
pub fn otpauth_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={secret_b32}&issuer={}&algorithm=SHA1&digits=6&period={STEP_SECS}",
        percent(issuer),
        percent(account),
        percent(issuer)
    )
}

/// The QR code of `data` as an SVG document and a PNG data URI.
pub fn qr_codes(data: &str) -> Result<(String, String), TotpError> {
    let code = qrcode::QrCode::with_error_correction_level(data.as_bytes(), qrcode::EcLevel::M)
        .map_err(|e| TotpError(format!("cannot encode QR: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build();
    let png = qr_png(&code)?;
    let uri = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    Ok((svg, uri))
}

/// Renders modules at 8 px each with a 4-module quiet zone, 8-bit grey.
fn qr_png(code: &qrcode::QrCode) -> Result<Vec<u8>, TotpError> {
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let width = code.width();
    let colors = code.to_colors();
    let side = (width + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c == qrcode::Color::Dark {
            let (mx, my) = (i % width + QUIET, i / width + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| TotpError(e.to_string()))?;
        w.write_image_data(&pixels).map_err(|e| TotpError(e.to_string()))?;
    }
    Ok(out)
}

/// Ten backup codes like `k3f9-x2mq`, and their hashes to store.
pub fn backup_codes() -> (Vec<String>, Vec<String>) {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    let codes: Vec<String> = (0..BACKUP_CODES)
        .map(|_| {
            let mut s = String::with_capacity(9);
            for i in 0..8 {
                if i == 4 {
                    s.push('-');
                }
                s.push(ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char);
            }
            s
        })
        .collect();
    let hashes = codes.iter().map(|c| backup_code_hash(c)).collect();
    (codes, hashes)
}

/// Backup codes carry 40 random bits, so a plain SHA-256 of the normalised
/// code is enough at rest (no guessing a 2^40 space through the API).
pub fn backup_code_hash(code: &str) -> String {
    let normal: String = code
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    hex::encode(Sha256::digest(normal.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vector() {
        // RFC 6238 Appendix B, SHA-1 seed, T = 59 s → 94287082 (8 digits); 6 digits: 287082.
        let seed = b"12345678901234567890";
        assert_eq!(code_at(seed, 59), "287082");
        assert_eq!(code_at(seed, 1111111109), "081804");
    }

    #[test]
    fn accepts_one_step_either_side_only() {
        let s = new_secret();
        let now = 1_800_000_000;
        let prev = code_at(&s, now - 30);
        assert_eq!(matching_step(&s, &prev, now), Some(now / 30 - 1));
        let far = code_at(&s, now - 90);
        assert_ne!(matching_step(&s, &far, now), Some(now / 30 - 3));
        assert_eq!(matching_step(&s, "12345", now), None);
        assert_eq!(matching_step(&s, "abcdef", now), None);
    }

    #[test]
    fn sealed_secrets_are_bound_to_key_and_user() {
        let b = SecretBox::new(&[9u8; 32]).unwrap();
        let sealed = b.seal("u1", b"secret-bytes-123456").unwrap();
        assert_eq!(b.open("u1", &sealed).unwrap(), b"secret-bytes-123456");
        assert!(b.open("u2", &sealed).is_err());
        assert!(SecretBox::new(&[8u8; 32]).unwrap().open("u1", &sealed).is_err());
        assert!(!sealed.contains(&base32(b"secret-bytes-123456")));
    }

    #[test]
    fn backup_codes_are_distinct_and_hash_normalised() {
        let (codes, hashes) = backup_codes();
        assert_eq!(codes.len(), 10);
        let mut uniq = codes.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 10);
        assert_eq!(backup_code_hash(&codes[0].to_uppercase()), hashes[0]);
        assert_eq!(backup_code_hash(&codes[0].replace('-', "")), hashes[0]);
    }

    #[test]
    fn uri_and_qr() {
        let uri = otpauth_uri("fortfolio", "ann@example.com", "JBSWY3DPEHPK3PXP");
        assert_eq!(
            uri,
            "otpauth://totp/fortfolio:ann@example.com?secret=JBSWY3DPEHPK3PXP&issuer=fortfolio&algorithm=SHA1&digits=6&period=30"
        );
        let (svg, png) = qr_codes(&uri).unwrap();
        assert!(svg.starts_with("<?xml"));
        assert!(png.starts_with("data:image/png;base64,iVBOR"));
    }
}
