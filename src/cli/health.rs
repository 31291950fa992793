//! `fortfolio health`: one line and an exit code for scripts, monitoring and
//! container health checks. It asks the public listener, not the admin
//! socket, so it sees what a client would: `/api/v1/health` (the process
//! answers) then `/api/v1/ready` (storage answers). Ready or degraded exits
//! 0; no answer, an error status or unavailable storage exits 1.
//!
//! The certificate is not verified: the check sends no credential and reads
//! only the status, usually of a server on this machine whose certificate is
//! self-signed (or names a public host, not the loopback address it is asked
//! at).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{Config, TlsMode};

/// The base URL of the server `config` describes: an unspecified bind
/// address (`0.0.0.0`, `[::]`) is asked at the matching loopback address.
pub fn base_url(config: &Config) -> String {
    let bind = config.server.bind;
    let ip = match bind.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if config.server.tls == TlsMode::Off {
        "http"
    } else {
        "https"
    };
    match ip {
        IpAddr::V4(v4) => format!("{scheme}://{v4}:{}", bind.port()),
        IpAddr::V6(v6) => format!("{scheme}://[{v6}]:{}", bind.port()),
    }
}

/// Prints the verdict (a line, or JSON) and returns whether the server is ready.
pub async fn run_health(base: &str, timeout: Duration, as_json: bool) -> anyhow::Result<bool> {
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .no_proxy()
        .timeout(timeout)
        .build()?;
    let base = base.trim_end_matches('/');
    let health = fetch(&client, &format!("{base}/api/v1/health")).await;
    let ready = match &health {
        Ok(_) => fetch(&client, &format!("{base}/api/v1/ready")).await,
        Err(_) => Err("not asked".to_string()),
    };
    let verdict = verdict(&health, &ready);
    if as_json {
        let report = json!({
            "healthy": verdict.is_ok(),
            "url": base,
            "health": health.as_ref().ok(),
            "ready": ready.as_ref().ok(),
            "error": verdict.as_ref().err(),
        });
        say!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        match &verdict {
            Ok(line) => say!("{line} at {base}")?,
            Err(why) => say!("unhealthy: {base}: {why}")?,
        }
    }
    Ok(verdict.is_ok())
}

/// The status and JSON body of any answer (`Null` for a body that is not
/// JSON); `Err` only when no answer came.
async fn fetch(client: &reqwest::Client, url: &str) -> Result<(u16, Value), String> {
    let response = client.get(url).send().await.map_err(|e| describe(&e))?;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "no answer within the timeout".to_string()
    } else if e.is_connect() {
        "connection refused or unreachable".to_string()
    } else {
        format!("request failed: {e}")
    }
}

type Answer = Result<(u16, Value), String>;

fn verdict(health: &Answer, ready: &Answer) -> Result<String, String> {
    let (status, body) = health.as_ref().map_err(Clone::clone)?;
    if *status != 200 || body["status"] != "ok" {
        return Err(format!("/api/v1/health answered {status}"));
    }
    let (ready_status, readiness) = ready.as_ref().map_err(Clone::clone)?;
    let word = readiness["status"].as_str().unwrap_or("");
    if *ready_status != 200 {
        let reason = readiness["reason"].as_str().unwrap_or("no reason given");
        return Err(format!("/api/v1/ready answered {ready_status}: {reason}"));
    }
    let mut line = format!(
        "{}: fortfolio {}, up {} s, storage {}, state {}",
        if word == "degraded" { "degraded" } else { "healthy" },
        body["version"].as_str().unwrap_or("?"),
        body["uptime_seconds"],
        body["storage"].as_str().unwrap_or("?"),
        body["state"].as_str().unwrap_or("?"),
    );
    if let Some(reason) = readiness["reason"].as_str() {
        line.push_str(&format!(" ({reason})"));
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unspecified_binds_are_asked_on_loopback() {
        let mut c = Config::default();
        c.server.bind = "0.0.0.0:8443".parse().unwrap();
        assert_eq!(base_url(&c), "https://127.0.0.1:8443");
        c.server.bind = "[::]:9000".parse().unwrap();
        c.server.tls = TlsMode::Off;
        assert_eq!(base_url(&c), "http://[::1]:9000");
        c.server.bind = "10.1.2.3:80".parse().unwrap();
        assert_eq!(base_url(&c), "http://10.1.2.3:80");
    }

    #[test]
    fn degraded_is_healthy_and_unavailable_storage_is_not() {
        let health: Answer = Ok((
            200,
            json!({"status": "ok", "version": "0.1.0", "uptime_seconds": 3, "storage": "postgres", "state": "redis"}),
        ));
        let degraded: Answer = Ok((200, json!({"status": "degraded", "reason": "redis unreachable"})));
        let line = verdict(&health, &degraded).unwrap();
        assert!(
            line.starts_with("degraded:") && line.contains("redis unreachable"),
            "{line}"
        );
        let down: Answer = Ok((503, json!({"status": "unavailable", "reason": "storage unavailable"})));
        assert_eq!(
            verdict(&health, &down).unwrap_err(),
            "/api/v1/ready answered 503: storage unavailable"
        );
        let refused: Answer = Err("connection refused or unreachable".into());
        assert!(verdict(&refused, &Err("not asked".into())).is_err());
        let teapot: Answer = Ok((418, Value::Null));
        assert!(verdict(&teapot, &degraded).is_err());
    }
}
