//! Helpers for unit tests that need the machine's PostgreSQL or Redis.

#![allow(clippy::panic)]

/// The URL of a test service from `var`, or `None` after saying loudly that
/// `test` was skipped. Under `CI=true` a missing URL fails the test: CI must
/// never pass by skipping the scaled-mode suites.
pub(crate) fn service_url(var: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{test}: {var} is not set, and CI=true forbids skipping");
            }
            // Straight to the file descriptor: the harness captures
            // `eprintln!` of passing tests, and a skip must be seen.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: set {var} to run it against a real server"
            );
            None
        }
    }
}
