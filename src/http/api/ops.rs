//! Operations endpoints (SPEC §6): health and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::http::state::AppState;
use crate::state::StateHealth;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(ready))
        .routes(routes!(crate::http::openapi::openapi_json))
}

#[derive(Serialize, ToSchema)]
struct Health {
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
    #[schema(value_type = String, example = "0.1.0")]
    version: &'static str,
    uptime_seconds: u64,
    /// The storage backend: `redb` or `postgres`.
    #[schema(value_type = String, example = "redb")]
    storage: &'static str,
    /// The state backend: `memory` or `redis`.
    #[schema(value_type = String, example = "memory")]
    state: &'static str,
}

/// Readiness: storage `ok` or `failing`; state `ok` or `degraded` (this
/// instance serves from its own state until Redis answers again).
#[derive(Serialize, ToSchema)]
struct Readiness {
    #[schema(value_type = String, pattern = "^(ready|degraded|unavailable)$")]
    status: &'static str,
    #[schema(value_type = String, pattern = "^(ok|failing)$")]
    storage: &'static str,
    #[schema(value_type = String, pattern = "^(ok|degraded)$")]
    state: &'static str,
    /// What is degraded or failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Liveness and the backends in use
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "getHealth",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)),
)]
async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.started.elapsed().as_secs(),
        storage: state.store.kind(),
        state: state.state.kind(),
    })
}

/// `200` while requests can be served (also when degraded, which a load
/// balancer should keep routing to); `503` when storage does not answer.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "getReady",
    tag = "operations",
    summary = "Readiness",
    description = "`200` while requests can be served, also when degraded (serving from this instance's own state while Redis is away); `503` when storage does not answer.",
    responses(
        (status = 200, description = "Ready or degraded", body = Readiness),
        (status = 503, description = "Storage does not answer", body = Readiness),
    ),
)]
async fn ready(State(state): State<AppState>) -> Response {
    let (stored, shared) = tokio::join!(state.store.ping(), state.state.health());
    let (state_word, degraded) = match shared {
        StateHealth::Ok => ("ok", None),
        StateHealth::Degraded(reason) => ("degraded", Some(reason)),
    };
    match stored {
        Ok(()) => Json(Readiness {
            status: if degraded.is_some() { "degraded" } else { "ready" },
            storage: "ok",
            state: state_word,
            reason: degraded,
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness: storage failed");
            let reason = match degraded {
                Some(d) => format!("storage unavailable; {d}"),
                None => "storage unavailable".to_string(),
            };
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    status: "unavailable",
                    storage: "failing",
                    state: state_word,
                    reason: Some(reason),
                }),
            )
                .into_response()
        }
    }
}
