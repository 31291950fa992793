//! Operations endpoints (SPEC §6): health and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::http::state::AppState;
use crate::state::StateHealth;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/openapi.json", get(crate::http::openapi::openapi_json))
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    storage: &'static str,
    state: &'static str,
}

/// Readiness: storage `ok` or `failing`; state `ok` or `degraded` (this
/// instance serves from its own state until Redis answers again).
#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    storage: &'static str,
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

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
