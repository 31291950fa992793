//! JSON Web Tokens (SPEC §2): HS256 only, with `typ` separating access,
//! refresh, device and 2FA-challenge tokens so none can stand in for another.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    Access,
    Refresh,
    Device,
    Challenge,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub typ: TokenType,
    pub iss: String,
    pub aud: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Not valid before (never set by this server, honoured when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Device tokens: the device they were issued to. The store binds each
    /// device to its latest token, so a device token can be retired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub did: Option<String>,
}

impl Claims {
    pub fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or_else(Utc::now)
    }
}

pub const AUDIENCE: &str = "fortfolio-api";

/// Clock skew tolerated on `iat` and `nbf`.
pub const CLOCK_LEEWAY_SECS: i64 = 30;

/// Signs and verifies tokens with the server's HS256 key.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    issuer: String,
    /// Built once: HS256 only, no leeway, this issuer and audience.
    validation: Validation,
}

impl JwtKeys {
    pub fn new(secret: &[u8], issuer: &str) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            issuer: issuer.to_string(),
            validation: {
                let mut v = Validation::new(Algorithm::HS256);
                v.leeway = 0;
                v.set_issuer(&[issuer]);
                v.set_audience(&[AUDIENCE]);
                v.set_required_spec_claims(&["exp", "iat", "sub", "iss", "aud"]);
                v
            },
        }
    }

    /// Issues a token; returns it with its claims.
    pub fn issue(
        &self,
        typ: TokenType,
        sub: &str,
        sid: Option<&str>,
        ttl: Duration,
    ) -> Result<(String, Claims), jsonwebtoken::errors::Error> {
        self.sign(self.claims(typ, sub, sid, ttl))
    }

    fn sign(&self, claims: Claims) -> Result<(String, Claims), jsonwebtoken::errors::Error> {
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, claims))
    }

    fn claims(&self, typ: TokenType, sub: &str, sid: Option<&str>, ttl: Duration) -> Claims {
        let now = Utc::now();
        Claims {
            sub: sub.to_string(),
            iat: now.timestamp(),
            exp: (now + ttl).timestamp(),
            jti: crate::domain::new_id(),
            typ,
            iss: self.issuer.clone(),
            aud: AUDIENCE.to_string(),
            sid: sid.map(str::to_string),
            nbf: None,
            did: None,
        }
    }

    /// Verifies signature, algorithm (HS256 only), issuer, audience, expiry
    /// (no leeway: this server is the only issuer), that the token was not
    /// issued in the future and is not used before its `nbf` (both with
    /// [`CLOCK_LEEWAY_SECS`]), and the token type.
    pub fn verify(&self, token: &str, typ: TokenType) -> Option<Claims> {
        let claims = decode::<Claims>(token, &self.decoding, &self.validation).ok()?.claims;
        let latest = Utc::now().timestamp() + CLOCK_LEEWAY_SECS;
        let timely = claims.iat <= latest && claims.nbf.is_none_or(|nbf| nbf <= latest);
        (timely && claims.typ == typ).then_some(claims)
    }

    /// Issues a device token for one device of a user.
    pub fn issue_device(
        &self,
        sub: &str,
        device_id: &str,
        ttl: Duration,
    ) -> Result<(String, Claims), jsonwebtoken::errors::Error> {
        self.sign(Claims {
            did: Some(device_id.to_string()),
            ..self.claims(TokenType::Device, sub, None, ttl)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys() -> JwtKeys {
        JwtKeys::new(&[7u8; 32], "fortfolio")
    }

    #[test]
    fn round_trip_and_type_separation() {
        let k = keys();
        let (t, c) = k
            .issue(TokenType::Access, "u1", Some("s1"), Duration::minutes(15))
            .unwrap();
        let back = k.verify(&t, TokenType::Access).unwrap();
        assert_eq!(back.jti, c.jti);
        assert_eq!(back.sid.as_deref(), Some("s1"));
        assert!(k.verify(&t, TokenType::Refresh).is_none());
    }

    #[test]
    fn refuses_forgeries() {
        let k = keys();
        let (t, _) = k
            .issue(TokenType::Access, "u1", Some("s1"), Duration::minutes(15))
            .unwrap();
        let other = JwtKeys::new(&[8u8; 32], "fortfolio");
        assert!(other.verify(&t, TokenType::Access).is_none());
        let (expired, _) = k.issue(TokenType::Access, "u1", None, Duration::seconds(-5)).unwrap();
        assert!(k.verify(&expired, TokenType::Access).is_none());
        // alg: none with the same claims
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = t.split('.').nth(1).unwrap();
        let none = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), payload);
        assert!(k.verify(&none, TokenType::Access).is_none());
        // Signed with our key, but issued in the future or not yet valid.
        let sign = |c: &Claims| k.sign(c.clone()).unwrap().0;
        let mut future = k.verify(&t, TokenType::Access).unwrap();
        future.iat = Utc::now().timestamp() + 3600;
        assert!(k.verify(&sign(&future), TokenType::Access).is_none());
        let mut early = k.verify(&t, TokenType::Access).unwrap();
        early.nbf = Some(Utc::now().timestamp() + 3600);
        assert!(k.verify(&sign(&early), TokenType::Access).is_none());
        early.nbf = Some(Utc::now().timestamp() + 5);
        assert!(
            k.verify(&sign(&early), TokenType::Access).is_some(),
            "within the leeway"
        );
        let wrong_iss = JwtKeys::new(&[7u8; 32], "someone-else");
        assert!(wrong_iss.verify(&t, TokenType::Access).is_none());
    }
}
