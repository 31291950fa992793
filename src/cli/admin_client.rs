//! `fortfolio admin …` on the command line. With a server running the
//! request goes over its admin socket (so its caches see the change); with
//! none, the same admin router runs in-process on the opened data dir.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tower::ServiceExt;

use crate::config::Config;
use crate::http::state::AppState;
use crate::security::events::escape_controls;
use crate::server::ADMIN_SOCKET;

pub enum Backend {
    Socket(std::path::PathBuf),
    Direct(axum::Router),
}

impl Backend {
    /// The running server's socket if it answers, else the data dir itself.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let dir = config.data_dir();
        if let Err(e) = std::fs::read_dir(dir) {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                bail!(
                    "cannot read the data directory {}: run this as root (sudo) or as the user that owns it",
                    dir.display()
                );
            }
        }
        let socket = dir.join(ADMIN_SOCKET);
        if socket.exists() && tokio::net::UnixStream::connect(&socket).await.is_ok() {
            return Ok(Backend::Socket(socket));
        }
        let state = AppState::open(config.clone())
            .await
            .context("cannot open the data directory")?;
        Ok(Backend::Direct(crate::http::admin::router(state)))
    }

    /// Sends one admin request; returns the JSON answer or the problem's detail.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "admin")
            .header("content-type", "application/json")
            .header(crate::http::admin::ACTOR_HEADER, crate::cli::privileges::actor())
            .body(bytes)?;
        let (status, body) = match self {
            Backend::Socket(path) => over_socket(path, req).await?,
            Backend::Direct(router) => {
                let resp = router.clone().oneshot(req.map(Body::from)).await?;
                let status = resp.status();
                (status, resp.into_body().collect().await?.to_bytes())
            }
        };
        let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if !status.is_success() {
            let detail = value["detail"].as_str().unwrap_or("request failed");
            bail!("{detail}");
        }
        Ok(value)
    }
}

async fn over_socket(path: &Path, req: Request<String>) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = tokio::net::UnixStream::connect(path).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let resp = sender.send_request(req.map(|b| Full::new(Bytes::from(b)))).await?;
    let status = resp.status();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// True when a server answers on the data dir's admin socket.
pub async fn server_running(config: &Config) -> bool {
    let socket = config.data_dir().join(ADMIN_SOCKET);
    socket.exists() && tokio::net::UnixStream::connect(&socket).await.is_ok()
}

/// Percent-encodes an email for a path segment.
pub fn segment(s: &str) -> String {
    s.trim()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Prints users as a table.
pub fn print_users(users: &Value) -> anyhow::Result<()> {
    let list = users
        .as_array()
        .ok_or_else(|| anyhow!("unexpected answer from the server"))?;
    say!(
        "{:<38} {:<32} {:<6} {:<8} {:<5} LOCKED_UNTIL",
        "ID",
        "EMAIL",
        "ROLE",
        "DISABLED",
        "2FA"
    )?;
    for u in list {
        say!(
            "{:<38} {:<32} {:<6} {:<8} {:<5} {}",
            u["id"].as_str().unwrap_or(""),
            u["email"].as_str().unwrap_or(""),
            u["role"].as_str().unwrap_or(""),
            u["disabled"].as_bool().unwrap_or(false),
            u["two_factor_enabled"].as_bool().unwrap_or(false),
            u["locked_until"].as_str().unwrap_or("-"),
        )?;
    }
    Ok(())
}

/// Prints events as a table, one line each: fields a client chose (the email
/// typed at a failed login) are shown with control characters escaped, so
/// they can neither forge table lines nor send escape codes to the terminal.
pub fn print_events(events: &Value) -> anyhow::Result<()> {
    let list = events
        .as_array()
        .ok_or_else(|| anyhow!("unexpected answer from the server"))?;
    say!(
        "{:<21} {:<22} {:<8} {:<30} {:<16} DETAILS",
        "TIMESTAMP",
        "EVENT",
        "OUTCOME",
        "EMAIL",
        "IP"
    )?;
    let field = |e: &Value, key: &str, absent: &str| escape_controls(e[key].as_str().unwrap_or(absent));
    for e in list {
        say!(
            "{:<21} {:<22} {:<8} {:<30} {:<16} {}",
            field(e, "timestamp", ""),
            field(e, "event", ""),
            field(e, "outcome", ""),
            field(e, "email", "-"),
            field(e, "ip", "-"),
            escape_controls(&e["details"].to_string()),
        )?;
    }
    Ok(())
}
