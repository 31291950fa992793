//! The public router: every route under the defensive layers of SPEC §5,
//! in request order.

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::http::api;
use crate::http::error::ApiError;
use crate::http::middleware as layers;
use crate::http::state::AppState;

/// The public router with every layer. `.layer` wraps what is above it, so
/// the last layer listed sees the request first.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let limited = api::router(&state).layer(middleware::from_fn_with_state(state.clone(), layers::queue));
    Router::new()
        .nest("/api/v1", crate::http::api::ops::router().merge(limited))
        .route("/docs", axum::routing::get(crate::http::openapi::docs))
        .route("/metrics", axum::routing::get(crate::http::metrics::serve))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::http::metrics::record,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), layers::body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), layers::request_timeout))
        .layer(layers::cors(&state.config.server))
        .layer(middleware::from_fn_with_state(state.clone(), layers::security_headers))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn(crate::http::request_id::layer))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not support the request method",
    )
}
