//! The HTTP API under `/api/v1`: one module per resource, each exposing
//! `router()`. Handlers are thin; the rules live in `accounts/`, `security/`.

pub mod auth;
pub mod me;
pub mod news;
pub mod ops;
pub mod portfolio;
pub mod predictions;
pub mod prices;
pub mod two_factor;

use axum::{middleware, Router};

use crate::http::middleware::rate_limit;
use crate::http::state::AppState;
use crate::security::rate_limit::Group;

/// Every rate-limited, queued route (health and ready are neither).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(auth::router(state))
        .merge(two_factor::router(state))
        .merge(me::router(state))
        .merge(portfolio::router(state))
        .merge(prices::router(state))
        .merge(predictions::router(state))
        .merge(news::router(state))
}

/// Puts `routes` under `group`'s rate limit.
pub fn limited(state: &AppState, group: Group, routes: Router<AppState>) -> Router<AppState> {
    routes.route_layer(middleware::from_fn_with_state((state.clone(), group), rate_limit))
}
