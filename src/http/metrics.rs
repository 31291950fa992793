//! Prometheus metrics (SPEC §6, `GET /metrics`): request counts and latency
//! histograms per route and status, security-event counters, request-queue
//! depth and outbox depth, rendered in the text exposition format.
//!
//! Served only to loopback peers unless `metrics.token` is set; then any peer
//! presenting `Authorization: Bearer <token>` (compared in constant time).

use std::collections::HashMap;
use std::fmt::Write;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use crate::http::error::ApiError;
use crate::http::state::AppState;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// (method label, route template, status); route names are interned, so
/// counting a request allocates nothing. Every part comes from a fixed set,
/// so no client can grow the series: see [`method_label`] and [`UNMATCHED`].
type Key = (&'static str, Arc<str>, u16);

/// The route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";

/// The method as a label: the standard methods by name, any other method a
/// client makes up as `other`.
fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<HashMap<Key, Series>>,
    routes: std::sync::RwLock<HashMap<String, Arc<str>>>,
}

impl Metrics {
    /// The interned name of a route template (a few dozen exist).
    fn route_name(&self, route: &str) -> Arc<str> {
        if let Ok(names) = self.routes.read() {
            if let Some(n) = names.get(route) {
                return n.clone();
            }
        }
        let name: Arc<str> = Arc::from(route);
        if let Ok(mut names) = self.routes.write() {
            names.insert(route.to_string(), name.clone());
        }
        name
    }

    pub fn observe(&self, method: &Method, route: Arc<str>, status: u16, secs: f64) {
        let Ok(mut map) = self.requests.lock() else {
            return;
        };
        let s = map.entry((method_label(method), route, status)).or_default();
        s.count += 1;
        s.sum += secs;
        for (i, upper) in BUCKETS.iter().enumerate() {
            if secs <= *upper {
                s.buckets[i] += 1;
            }
        }
    }

    fn render_requests(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP fortfolio_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE fortfolio_http_requests_total counter");
        let _ = writeln!(
            out,
            "# HELP fortfolio_http_request_duration_seconds Time spent in the server per request."
        );
        let _ = writeln!(out, "# TYPE fortfolio_http_request_duration_seconds histogram");
        let Ok(map) = self.requests.lock() else {
            return;
        };
        let mut keys: Vec<_> = map.keys().collect();
        keys.sort();
        for key in keys {
            let (method, route, status) = key;
            let Some(s) = map.get(key) else { continue };
            let labels = format!(
                "method=\"{method}\",route=\"{}\",status=\"{status}\"",
                route.replace('"', "'")
            );
            let _ = writeln!(out, "fortfolio_http_requests_total{{{labels}}} {}", s.count);
            for (i, upper) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "fortfolio_http_request_duration_seconds_bucket{{{labels},le=\"{upper}\"}} {}",
                    s.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "fortfolio_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(out, "fortfolio_http_request_duration_seconds_sum{{{labels}}} {}", s.sum);
            let _ = writeln!(
                out,
                "fortfolio_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
    }
}

/// Runs the request and records it under its route template
/// (`/api/v1/me/sessions/{id}`), so ids never explode the label set; paths
/// that match no route share one label. Called by `middleware::guard`.
pub async fn record(state: &AppState, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = state
        .metrics
        .route_name(req.extensions().get::<MatchedPath>().map_or(UNMATCHED, |m| m.as_str()));
    let resp = next.run(req).await;
    state
        .metrics
        .observe(&method, route, resp.status().as_u16(), started.elapsed().as_secs_f64());
    resp
}

problems!(MetricsProblems {
    401 => ["unauthorized"],
    403 => ["forbidden"],
});

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "getMetrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Served to loopback peers only, unless `metrics.token` is set: then to any peer that sends it as a bearer token.",
    security((), ("metrics" = [])),
    responses(
        (status = 200, description = "Metrics in the Prometheus text format", content_type = "text/plain", body = String),
        MetricsProblems,
    ),
)]
pub async fn serve(State(state): State<AppState>, req: Request) -> Response {
    let token = &state.config.metrics.token;
    if token.is_empty() {
        let loopback = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|c| c.0.ip().is_loopback());
        if !loopback {
            return ApiError::forbidden("metrics are served to loopback peers only (set metrics.token)")
                .into_response();
        }
    } else {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !token.ct_eq(presented) {
            return ApiError::unauthorized("metrics need the metrics token").into_response();
        }
    }
    let mut out = String::with_capacity(16 * 1024);
    state.metrics.render_requests(&mut out);
    let _ = writeln!(
        out,
        "# HELP fortfolio_security_events_total Security events emitted since start, by type."
    );
    let _ = writeln!(out, "# TYPE fortfolio_security_events_total counter");
    for (name, n) in state.events.counts() {
        let _ = writeln!(out, "fortfolio_security_events_total{{event=\"{name}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP fortfolio_request_queue_depth Requests waiting for a slot.");
    let _ = writeln!(out, "# TYPE fortfolio_request_queue_depth gauge");
    let _ = writeln!(out, "fortfolio_request_queue_depth {}", state.queue.depth());
    let _ = writeln!(out, "# HELP fortfolio_outbox_depth Alert emails waiting for delivery.");
    let _ = writeln!(out, "# TYPE fortfolio_outbox_depth gauge");
    let depth = state.store.outbox_depth().await.unwrap_or(0);
    let _ = writeln!(out, "fortfolio_outbox_depth {depth}");
    let _ = writeln!(
        out,
        "# HELP fortfolio_last_backup_timestamp_seconds When this server last wrote a backup (Unix time; 0: not since start)."
    );
    let _ = writeln!(out, "# TYPE fortfolio_last_backup_timestamp_seconds gauge");
    let _ = writeln!(
        out,
        "fortfolio_last_backup_timestamp_seconds {}",
        state.last_backup.get()
    );
    let _ = writeln!(out, "# HELP fortfolio_uptime_seconds Seconds since start.");
    let _ = writeln!(out, "# TYPE fortfolio_uptime_seconds gauge");
    let _ = writeln!(out, "fortfolio_uptime_seconds {}", state.started.elapsed().as_secs());
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let m = Metrics::default();
        m.observe(&Method::GET, m.route_name("/api/v1/me"), 200, 0.0007);
        m.observe(&Method::GET, m.route_name("/api/v1/me"), 200, 0.2);
        let mut out = String::new();
        m.render_requests(&mut out);
        assert!(out.contains("fortfolio_http_requests_total{method=\"GET\",route=\"/api/v1/me\",status=\"200\"} 2"));
        assert!(out.contains("le=\"0.0005\"} 0"));
        assert!(out.contains("le=\"0.001\"} 1"));
        assert!(out.contains("le=\"0.25\"} 2"));
        assert!(out.contains("le=\"+Inf\"} 2"));
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let m = Metrics::default();
        for name in ["FOO", "BAR", "BAZ"] {
            let method = Method::from_bytes(name.as_bytes()).unwrap();
            m.observe(&method, m.route_name(UNMATCHED), 405, 0.001);
        }
        m.observe(&Method::PATCH, m.route_name(UNMATCHED), 404, 0.001);
        let mut out = String::new();
        m.render_requests(&mut out);
        assert!(
            out.contains("{method=\"other\",route=\"unmatched\",status=\"405\"} 3"),
            "{out}"
        );
        assert!(
            out.contains("{method=\"PATCH\",route=\"unmatched\",status=\"404\"} 1"),
            "{out}"
        );
        assert!(!out.contains("FOO"));
    }
}
