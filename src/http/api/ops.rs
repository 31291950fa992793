//! Operations endpoints (SPEC §6): health and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::http::state::AppState;

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

/// Readiness: each dependency `ok` or `failing`.
#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    storage: &'static str,
    state: &'static str,
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

async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(Readiness {
            status: "ready",
            storage: "ok",
            state: "ok",
        })
        .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "readiness: storage failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Readiness {
                    status: "unavailable",
                    storage: "failing",
                    state: "ok",
                }),
            )
                .into_response()
        }
    }
}
