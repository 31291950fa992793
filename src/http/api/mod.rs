//! The HTTP API under `/api/v1`: one module per resource, each exposing
//! `router()`. Handlers are thin; the rules live in `accounts/`, `security/`.
//! Every route is registered with `routes!` from a documented handler, so
//! the router and the OpenAPI document come from the same list.

pub mod admin;
pub mod auth;
pub mod me;
pub mod news;
pub mod ops;
pub mod portfolio;
pub mod predictions;
pub mod prices;
pub mod recovery;
pub mod two_factor;

use axum::middleware;
use utoipa_axum::router::OpenApiRouter;

use crate::http::middleware::rate_limit;
use crate::http::state::AppState;
use crate::security::rate_limit::Group;

/// Puts routes under their rate-limit group. Serving, the limiter runs in
/// front of each route; either way each operation names its group in the
/// document (`x-rate-limit-group`).
#[derive(Clone, Copy)]
pub struct Limits<'a>(pub Option<&'a AppState>);

impl Limits<'_> {
    pub fn apply(&self, group: Group, mut routes: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
        for item in routes.get_openapi_mut().paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for op in ops.into_iter().flatten() {
                op.extensions
                    .get_or_insert_with(Default::default)
                    .insert("x-rate-limit-group".into(), group.name().into());
            }
        }
        match self.0 {
            Some(state) => routes.route_layer(middleware::from_fn_with_state((state.clone(), group), rate_limit)),
            None => routes,
        }
    }
}

/// Every rate-limited, queued route (health and ready are neither).
pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::router(limits))
        .merge(two_factor::router(limits))
        .merge(me::router(limits))
        .merge(portfolio::router(limits))
        .merge(prices::router(limits))
        .merge(predictions::router(limits))
        .merge(news::router(limits))
        .merge(admin::router(limits))
        .merge(recovery::router(limits))
}
