//! Extractors that answer in our problem format: `AppJson<T>` for bodies
//! (naming the offending field), `AppQuery<T>` and `AppPath<T>` (naming the
//! offending parameter), `AuthUser` for access tokens.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::accounts::AuthContext;
use crate::http::error::ApiError;
use crate::http::state::AppState;

/// A JSON body. Malformed JSON → `400 invalid_json`; a missing or
/// ill-typed field → `422 validation_failed` with `field` set.
pub struct AppJson<T>(pub T);

/// A JSON content type is required for every body: only then does a
/// cross-site request need a CORS preflight (a `fetch` with a Blob or text
/// body and no declared JSON type could otherwise log a victim in).
fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(Ok(ct)) = content_type.map(|v| v.to_str()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

/// `415 invalid_json` unless the request declares a JSON body.
pub fn require_json(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    if is_json(headers.get(header::CONTENT_TYPE)) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_json",
            "request body must be JSON with Content-Type: application/json",
        ))
    }
}

/// Parses a JSON body into `T`, classifying errors as SPEC §1 asks. Every
/// body is a JSON object: serde would also fill a struct from an array of
/// its fields in order (`[]` for one whose fields are all optional), which
/// the OpenAPI document does not allow, so anything else valid JSON is
/// `422`.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|b| *b != b'{') && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_ok() {
        return Err(ApiError::validation(
            "",
            "the request body is not a JSON object; expected a JSON object",
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        use serde_json::error::Category;
        match inner.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::invalid_json(format!("request body is not valid JSON: {inner}"))
            }
            Category::Data => {
                let msg = inner.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                let field = if path == "." || path.is_empty() {
                    missing_field(&msg).unwrap_or_default()
                } else if let Some(missing) = missing_field(&msg) {
                    format!("{path}.{missing}")
                } else {
                    path
                };
                let msg = without_type_names(&msg);
                let detail = if field.is_empty() {
                    msg.clone()
                } else {
                    format!("{field}: {msg}")
                };
                ApiError::validation(&field, detail)
            }
        }
    })?;
    de.end()
        .map_err(|e| ApiError::invalid_json(format!("request body is not valid JSON: {e}")))?;
    Ok(value)
}

fn missing_field(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// A serde message without the Rust type it names: "invalid type: sequence,
/// expected struct LoginBody" → "…, expected a JSON object".
fn without_type_names(msg: &str) -> String {
    let Some((head, expected)) = msg.split_once(", expected ") else {
        return msg.to_string();
    };
    [
        ("struct ", "a JSON object"),
        ("tuple struct ", "a JSON array"),
        ("enum ", "one of the documented values"),
    ]
    .iter()
    .find(|(rust, _)| expected.starts_with(rust))
    .map_or_else(|| msg.to_string(), |(_, plain)| format!("{head}, expected {plain}"))
}

/// Query parameters. One that cannot be read (e.g. given twice) →
/// `422 validation_failed` with `field` naming it.
pub struct AppQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for AppQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Query(q) = Query::try_from_uri(&parts.uri).map_err(|rej| {
            let text = rej.body_text();
            let msg = text
                .strip_prefix("Failed to deserialize query string: ")
                .unwrap_or(&text);
            let msg = without_type_names(&msg.replace("field `", "query parameter `"));
            let field = msg.split('`').nth(1).unwrap_or("query");
            ApiError::validation(field, format!("invalid query string: {msg}"))
        })?;
        Ok(AppQuery(q))
    }
}

/// Path parameters. One that cannot be read (e.g. not UTF-8) →
/// `422 validation_failed` with `field` naming it.
pub struct AppPath<T>(pub T);

impl<T, S> FromRequestParts<S> for AppPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(p) = Path::from_request_parts(parts, state).await.map_err(path_error)?;
        Ok(AppPath(p))
    }
}

fn path_error(rej: PathRejection) -> ApiError {
    let kind = match &rej {
        PathRejection::FailedToDeserializePathParams(e) if !rej.status().is_server_error() => e.kind(),
        // A route that does not match its handler: our bug, not the client's.
        _ => return ApiError::internal(rej.body_text()),
    };
    match kind {
        ErrorKind::InvalidUtf8InPathParam { key } => {
            ApiError::validation(key, format!("path parameter `{key}` is not valid UTF-8"))
        }
        ErrorKind::ParseErrorAtKey { key, .. } | ErrorKind::DeserializeError { key, .. } => {
            ApiError::validation(key, format!("path parameter `{key}` is not valid"))
        }
        _ => ApiError::validation("path", "a path parameter is not valid"),
    }
}

impl<T, S> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        require_json(req.headers())?;
        let bytes = Bytes::from_request(req, state).await.map_err(|rej| {
            if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
                payload_too_large()
            } else {
                ApiError::invalid_json(format!("could not read the request body: {}", rej.body_text()))
            }
        })?;
        parse_json(&bytes).map(AppJson)
    }
}

pub fn payload_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the request body is larger than the server accepts",
    )
}

/// How the access token arrived; cookie-borne requests need a CSRF token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Bearer,
    Cookie,
}

pub const ACCESS_COOKIE: &str = "fortfolio_access";
pub const REFRESH_COOKIE: &str = "fortfolio_refresh";
pub const DEVICE_COOKIE: &str = "fortfolio_device";

/// The value of cookie `name`, if present.
pub fn cookie<'a>(parts: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    parts
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The bearer token or access cookie of a request.
pub fn access_token(headers: &axum::http::HeaderMap) -> Option<(String, Credential)> {
    if let Some(auth) = headers.get(header::AUTHORIZATION) {
        let v = auth.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        return Some((token.trim().to_string(), Credential::Bearer));
    }
    cookie(headers, ACCESS_COOKIE).map(|t| (t.to_string(), Credential::Cookie))
}

/// What an account with an unproven address may still reach when
/// `auth.require_email_verification` is on: its profile, sign-out, and
/// the change of a mistyped address (the verification endpoints need no
/// access token).
const UNVERIFIED_MAY_USE: [&str; 4] = [
    "/api/v1/me",
    "/api/v1/me/email",
    "/api/v1/auth/logout",
    "/api/v1/auth/logout-all",
];

/// An authenticated caller.
pub struct AuthUser {
    /// Shared with the cache of checked tokens: a request clones no record.
    pub ctx: Arc<AuthContext>,
    pub via: Credential,
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (token, via) =
            access_token(&parts.headers).ok_or_else(|| ApiError::unauthorized("an access token is required"))?;
        let ctx = match parts.extensions.remove::<crate::http::middleware::Authenticated>() {
            Some(checked) => checked.0,
            None => state.accounts.authenticate(&token).await?,
        };
        // Under the `/api/v1` nest the request's own URI has lost its prefix.
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or_else(|| parts.uri.path(), |o| o.0.path());
        if state.config.auth.require_email_verification
            && ctx.user.email_verified_at.is_none()
            && !UNVERIFIED_MAY_USE.contains(&path)
        {
            return Err(crate::accounts::AccountsError::EmailNotVerified.into());
        }
        if via == Credential::Cookie && crate::http::csrf::is_state_changing(&parts.method) {
            let client = crate::security::client::ClientInfo::from_parts(parts, &state.config.server.trusted_proxies);
            crate::http::csrf::enforce(state, &parts.headers, &client, &ctx.session_id).await?;
        }
        Ok(AuthUser { ctx, via })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[allow(dead_code)]
    struct Body {
        email: String,
        n: u32,
    }

    #[test]
    fn classifies_json_errors() {
        let e = parse_json::<Body>(b"{not json").unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "invalid_json"));
        let e = parse_json::<Body>(br#"{"n": 1}"#).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (422, "validation_failed"));
        assert_eq!(e.extra["field"], "email");
        let e = parse_json::<Body>(br#"{"email": "a", "n": "x"}"#).unwrap_err();
        assert_eq!(e.extra["field"], "n");
        let e = parse_json::<Body>(br#"{"email": "a", "n": 1} trailing"#).unwrap_err();
        assert_eq!(e.code, "invalid_json");
    }

    #[test]
    fn a_body_is_an_object_never_an_array_of_its_fields() {
        #[derive(Deserialize, Debug)]
        #[allow(dead_code)]
        struct AllOptional {
            name: Option<String>,
        }
        for body in [&b"[]"[..], b" [null]", b"[\"a\", 1]"] {
            let e = parse_json::<AllOptional>(body).unwrap_err();
            assert_eq!((e.status.as_u16(), e.code), (422, "validation_failed"));
            let e = parse_json::<Body>(body).unwrap_err();
            assert_eq!(e.code, "validation_failed");
        }
        assert!(parse_json::<Body>(br#"["a@b.co", 1]"#).is_err());
        assert!(parse_json::<AllOptional>(b"{}").is_ok());
    }

    #[test]
    fn json_errors_never_name_rust_types() {
        for body in [&b"[]"[..], b"5", b"\"x\"", b"[\"a\"]"] {
            let e = parse_json::<Body>(body).unwrap_err();
            assert_eq!(e.code, "validation_failed");
            assert!(!e.detail.contains("Body"), "{}", e.detail);
            assert!(e.detail.contains("expected a JSON object"), "{}", e.detail);
        }
    }
}
