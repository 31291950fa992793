//! fortfolio: a self-hosted financial API in one binary.
//!
//! Layout: `config` (layered settings) → `app` (state and router with the
//! defensive layers in SPEC §5 order) → `api/` (one module per resource) →
//! `accounts/`, `security/` (the rules) → `store/` (one trait per concern,
//! redb behind it). `server` binds the listeners; `admin` and `cli` drive it
//! from the command line.

pub mod accounts;
pub mod admin;
#[cfg(test)]
mod architecture;
pub mod backup;
pub mod cli;
pub mod config;
pub mod connections;
pub mod domain;
pub mod http;
pub mod market;
pub mod ml;
pub mod portfolio;
pub mod security;
pub mod server;
pub mod state;
pub mod store;
pub mod telemetry;
#[cfg(test)]
pub(crate) mod test_support;

/// What `fortfolio --version` prints after the name: the crate version, the
/// git commit and the build date (see `build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("FORTFOLIO_GIT_COMMIT"),
    ", built ",
    env!("FORTFOLIO_BUILD_DATE"),
    ")"
);

/// Installs rustls' ring provider; call once before any TLS is used.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
