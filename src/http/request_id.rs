//! `X-Request-Id` (SPEC §1): echoed when the client sent a well-formed one,
//! otherwise generated; carried in the tracing span of the request. The
//! same layer reports the server's own time in `Server-Timing`.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn layer(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map(str::to_string)
        .unwrap_or_else(crate::domain::new_id);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(HEADER, v);
    }
    // Time spent in the server, for clients and benchmarks (W3C Server-Timing).
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={elapsed_ms:.3}")) {
        resp.headers_mut().insert("server-timing", v);
    }
    resp
}
