//! HTTP middleware for the defensive layers of SPEC §5, in request order:
//! request id and security headers → CORS → timeout, body limit and metrics
//! → (CSRF, checked where a cookie authenticates) → request queue and rate
//! limits → handlers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::Instrument;

use crate::config::{ServerConfig, TlsMode};
use crate::http::client::{client_ip, ClientInfo};
use crate::http::error::ApiError;
use crate::http::extract::access_token;
use crate::http::request_id;
use crate::http::state::AppState;
use crate::security::events::{EventType, NewEvent};
use crate::security::rate_limit::Group;

/// CORS for the configured origins only; credentials allowed, never `*`.
pub fn cors(server: &ServerConfig) -> CorsLayer {
    let origins: Vec<HeaderValue> = server
        .cors_allowed_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_credentials(true)
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-csrf-token"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("x-device-token"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("ratelimit-limit"),
            HeaderName::from_static("ratelimit-remaining"),
            HeaderName::from_static("ratelimit-reset"),
            header::RETRY_AFTER,
        ])
        .max_age(Duration::from_secs(600))
}

/// At most `max_concurrent_requests` in flight; up to `max_queued_requests`
/// wait at most `queue_timeout`; the rest get `503 overloaded`.
pub struct RequestQueue {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    timeout: Duration,
}

impl RequestQueue {
    pub fn new(server: &ServerConfig) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(server.max_concurrent_requests)),
            waiting: AtomicUsize::new(0),
            max_waiting: server.max_queued_requests,
            timeout: server.queue_timeout.0,
        }
    }

    /// Requests waiting for a slot now (for metrics).
    pub fn depth(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

fn overloaded() -> Response {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "the server is at capacity; retry shortly",
    )
    .with_header(header::RETRY_AFTER, "1")
    .into_response()
}

/// A slot for one request, or `503 overloaded` when none frees up in time.
async fn admit(q: &RequestQueue) -> Result<OwnedSemaphorePermit, Response> {
    if let Ok(p) = q.permits.clone().try_acquire_owned() {
        return Ok(p);
    }
    if q.waiting.fetch_add(1, Ordering::AcqRel) >= q.max_waiting {
        q.waiting.fetch_sub(1, Ordering::AcqRel);
        return Err(overloaded());
    }
    let got = tokio::time::timeout(q.timeout, q.permits.clone().acquire_owned()).await;
    q.waiting.fetch_sub(1, Ordering::AcqRel);
    match got {
        Ok(Ok(p)) => Ok(p),
        _ => Err(overloaded()),
    }
}

/// The request queue (SPEC §5.3), then the rate limit of one endpoint group
/// (SPEC §5.4), as one layer in front of each API route (each layer costs
/// every request a clone of the service under it). Every request counts
/// against its client IP's bucket (IPv6 clients by /64); a request to an
/// authenticated endpoint whose access token passes the full check
/// (signature, expiry, revocation, live session, enabled user) also counts
/// against its user's bucket. A token never lifts the IP limit, and on the
/// anonymous endpoints (register, login, refresh) it is not even looked at.
pub async fn rate_limit(State((state, group)): State<(AppState, Group)>, mut req: Request, next: Next) -> Response {
    let _slot = match admit(&state.queue).await {
        Ok(slot) => slot,
        Err(refused) => return refused,
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]));
    let ip = client_ip(peer, &state.config.server.trusted_proxies, req.headers());
    let checked = state
        .rate_limiter
        .check(group, &format!("ip:{}", rate_key_net(ip)))
        .await;
    let mut d = match checked {
        Ok(d) => d,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut user_id = None;
    if d.allowed && !group.is_anonymous() {
        if let Some((token, _)) = access_token(req.headers()) {
            if let Ok(ctx) = state.accounts.authenticate(&token).await {
                match state.rate_limiter.check(group, &format!("user:{}", ctx.user.id)).await {
                    Ok(user) => d = d.tighter(user),
                    Err(e) => return ApiError::from(e).into_response(),
                }
                user_id = Some(ctx.user.id.clone());
                req.extensions_mut().insert(Authenticated(ctx));
            }
        }
    }
    let headers = [
        ("ratelimit-limit", HeaderValue::from(d.limit)),
        ("ratelimit-remaining", HeaderValue::from(d.remaining)),
        ("ratelimit-reset", HeaderValue::from(d.reset_secs)),
    ];
    let mut resp = if d.allowed {
        next.run(req).await
    } else {
        let mut ev = NewEvent::failure(EventType::RateLimited)
            .client(&ClientInfo {
                ip,
                user_agent: req
                    .headers()
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .map(|s| s.chars().take(512).collect())
                    .unwrap_or_default(),
                request_id: req
                    .extensions()
                    .get::<crate::http::request_id::RequestId>()
                    .map(|r| r.0.clone()),
            })
            .detail("group", group.name())
            .detail("retry_after_s", d.retry_after_secs);
        if let Some(id) = &user_id {
            ev = ev.user_id(id);
        }
        state.events.emit(ev).await;
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many requests to this endpoint; retry in {} s", d.retry_after_secs),
        )
        .with_header(header::RETRY_AFTER, &d.retry_after_secs.to_string())
        .into_response()
    };
    for (name, value) in headers {
        resp.headers_mut().insert(name, value);
    }
    resp
}

/// The network a client is limited as: its IPv4 address, or its IPv6 /64
/// (one subscriber usually holds a whole /64).
pub fn rate_key_net(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.into(),
            None => std::net::Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1)).into(),
        },
        v4 => v4,
    }
}

/// The caller of a request whose access token the rate limiter already
/// checked in full; the `AuthUser` extractor reuses it.
#[derive(Clone)]
pub struct Authenticated(pub Arc<crate::accounts::AuthContext>);

/// The request timeout, the body limit and the request metrics, outermost
/// first, as one layer: each `from_fn` layer clones and boxes the service
/// under it for every request, which the profile of a cached read showed.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.server.request_timeout.0, body_limit(&state, req, next)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the request took longer than the server allows",
        )
        .with_header(header::RETRY_AFTER, "5")
        .into_response(),
    }
}

/// Refuses a declared body larger than `server.max_body_bytes` before reading
/// it, and reads any other body in full before the handler runs.
///
/// Reading it matters even where the handler has no use for it (a `GET`
/// with a body, a logout): a connection closed with request bytes still
/// unread is reset by the kernel, and over TLS (where the body arrives in a
/// record of its own) the reset cut long answers short at the client.
async fn body_limit(state: &AppState, req: Request, next: Next) -> Response {
    let max = state.config.server.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > max) {
        return crate::http::extract::payload_too_large().into_response();
    }
    let has_body = declared.is_some_and(|n| n > 0) || req.headers().contains_key(header::TRANSFER_ENCODING);
    if !has_body {
        return crate::http::metrics::record(state, req, next).await;
    }
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, max).await {
        Ok(bytes) => {
            let req = Request::from_parts(parts, axum::body::Body::from(bytes));
            crate::http::metrics::record(state, req, next).await
        }
        Err(_) => crate::http::extract::payload_too_large().into_response(),
    }
}

/// The outermost layer: the request id (SPEC §1) with its tracing span and
/// `Server-Timing`, and the security headers, on every answer (a caught
/// panic's included). One layer, not three: each layer applied to the
/// router wrapped every route in a boxed service that every request cloned
/// (the profile of `GET /portfolio` showed those clones at about a tenth of
/// the server's time).
pub async fn front(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = request_id::assign(&mut req);
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let mut resp = next.run(req).instrument(span).await;
    request_id::stamp(&mut resp, &id, started);
    security_headers(&state, resp.headers_mut());
    resp
}

fn security_headers(state: &AppState, h: &mut axum::http::HeaderMap) {
    let mut set = |name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    // Every response is per-user or security-relevant: never cache.
    set(header::CACHE_CONTROL, "no-store");
    if state.config.server.tls != TlsMode::Off {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000; includeSubDomains");
    }
    // The docs page states its own (scripts and styles from this server).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::rate_key_net;

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let net = |s: &str| rate_key_net(s.parse().unwrap()).to_string();
        assert_eq!(net("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::");
        assert_eq!(net("2001:db8:1:2:ffff:1:2:3"), "2001:db8:1:2::");
        assert_eq!(net("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(net("192.0.2.7"), "192.0.2.7");
    }
}
