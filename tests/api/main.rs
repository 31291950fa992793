//! Black-box tests: the real app on port 0 with a temporary data dir, driven
//! over HTTP by a real client (and the real binary for CLI checks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod browser;
mod helpers;

mod accounts;
mod admin_api;
mod backups;
mod cli;
mod console_browser;
mod defenses;
mod docs_browser;
mod errors;
mod events;
mod hardening;
mod market;
mod metrics;
mod news;
mod openapi;
mod portfolio;
mod recovery;
mod scaled;
mod tokens;
mod two_factor;
