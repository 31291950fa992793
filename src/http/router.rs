//! The public router: every route under the defensive layers of SPEC §5,
//! in request order, and the OpenAPI document built from the same routes.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware;
use axum::response::IntoResponse;
use axum::{Extension, Router};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::api::{self, Limits};
use crate::http::console;
use crate::http::error::ApiError;
use crate::http::middleware as layers;
use crate::http::openapi::{self, Published};
use crate::http::state::AppState;

/// Every public route with its documentation. Serving (`state` given), the
/// request queue and the rate limits are in front of the API routes; the
/// document is the same either way.
fn routes(state: Option<&AppState>) -> OpenApiRouter<AppState> {
    let limited = api::router(Limits(state));
    OpenApiRouter::with_openapi(openapi::Base::openapi())
        .nest("/api/v1", api::ops::router().merge(limited))
        .routes(routes!(openapi::docs))
        .routes(routes!(openapi::docs_asset))
        .routes(routes!(crate::http::metrics::serve))
        .routes(routes!(console::index))
        .routes(routes!(console::asset))
}

/// The OpenAPI document the server serves (`fortfolio openapi` prints it).
pub fn document() -> serde_json::Value {
    openapi::complete(routes(None).into_openapi())
}

/// The public router with every layer, in request order: request id and
/// security headers, panics caught, CORS, the OpenAPI document and the
/// body limit for extractors, then the routes, each behind the timeout,
/// body limit and metrics layer (which needs the matched route).
///
/// Only that layer is applied with `Router::layer`: it wraps every route in
/// a boxed service of its own, cloned by every request, so the layers that
/// need no route wrap the whole router once instead.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let (router, doc) = routes(Some(&state)).split_for_parts();
    let published = Arc::new(Published::new(&openapi::complete(doc)));
    let routed = router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), layers::guard))
        .with_state(state.clone());
    let front = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(state.clone(), layers::front))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(layers::cors(&state.config.server))
        .layer(Extension(published))
        .layer(DefaultBodyLimit::max(max_body))
        .service(routed);
    Router::new().fallback_service(front)
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
