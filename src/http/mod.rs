//! The HTTP layer: the router and its defensive middleware, extractors,
//! handlers (`api/`), the admin socket's routes, metrics and the OpenAPI
//! document. It parses requests, calls the services and renders their
//! answers and errors (RFC 9457); no rule lives here. `state` is where the
//! services are wired together.

pub mod admin;
pub mod api;
pub mod client;
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
