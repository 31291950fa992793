//! The HTTP layer: the router and its defensive middleware, extractors,
//! handlers (`api/`), the admin socket's routes, metrics and the OpenAPI
//! document. It parses requests, calls the services and renders their
//! answers and errors (RFC 9457); no rule lives here. `state` is where the
//! services are wired together.

/// Declares the problem answers of one operation beyond those its layers
/// give: `problems!(SellProblems { 404 => ["unknown_symbol"] })`
/// (see `openapi::complete`).
macro_rules! problems {
    ($(#[$meta:meta])* $name:ident { $($status:literal => [$($code:literal),+ $(,)?]),+ $(,)? }) => {
        $(#[$meta])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                $crate::http::openapi::problem_responses(&[$(($status, &[$($code),+])),+])
            }
        }
    };
}

pub mod admin;
pub mod api;
pub mod client;
pub mod console;
pub mod cookies;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod money;
pub mod openapi;
pub mod pagination;
pub mod request_id;
pub mod router;
pub mod state;
