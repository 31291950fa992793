//! The HTTP API under `/api/v1`: one module per resource, each exposing
//! `router()`. Handlers are thin; the rules live in `accounts/`, `security/`.

pub mod auth;
pub mod cookies;
pub mod extract;
pub mod me;
pub mod ops;
pub mod pagination;

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(ops::router())
        .merge(auth::router())
        .merge(me::router())
}
