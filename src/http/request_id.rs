//! `X-Request-Id` (SPEC §1): echoed when the client sent a well-formed one,
//! otherwise generated; carried in the tracing span of the request. The
//! same layer reports the server's own time in `Server-Timing`
//! ([`crate::http::middleware::front`] applies both).

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The request's id: the client's own when well formed, otherwise a new
/// one; kept in the request's extensions for handlers and events.
pub fn assign(req: &mut Request) -> String {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map(str::to_string)
        .unwrap_or_else(crate::domain::new_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    id
}

/// Echoes the id on the answer, with the time spent in the server since
/// `started` for clients and benchmarks (W3C `Server-Timing`).
pub fn stamp(resp: &mut Response, id: &str, started: Instant) {
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert(HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={elapsed_ms:.3}")) {
        resp.headers_mut().insert("server-timing", v);
    }
}
