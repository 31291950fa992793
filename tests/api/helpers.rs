use std::path::{Path, PathBuf};

use fortfolio::config::{Config, Overrides, TlsMode};
use fortfolio::server::{self, Running};
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

pub const PASSWORD: &str = "violet-anchor-tundra-41";

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub config: Config,
}

/// A config for tests: plain HTTP on a free port, generous rate limits.
pub fn test_config(data_dir: &Path) -> Config {
    let mut c = Config::load_from(None, &[], &Overrides::default()).expect("default config");
    c.server.bind = "127.0.0.1:0".parse().expect("addr");
    c.server.tls = TlsMode::Off;
    c.storage.data_dir = data_dir.to_path_buf();
    c.logging.dir = data_dir.join("logs");
    // Tests make many calls from one IP; rate-limit tests set their own.
    let lots = fortfolio::config::Rate::parse("100000/s").expect("rate");
    let r = &mut c.rate_limits;
    for rate in [
        &mut r.register,
        &mut r.login,
        &mut r.two_factor,
        &mut r.refresh,
        &mut r.logout,
        &mut r.password,
        &mut r.account,
        &mut r.portfolio,
        &mut r.prices,
        &mut r.news,
        &mut r.predictions,
    ] {
        *rate = lots;
    }
    c
}

pub fn client() -> Client {
    Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .expect("client")
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        fortfolio::install_crypto();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_config(dir.path());
        tweak(&mut config);
        let running = server::start(config.clone()).await.expect("server starts");
        let scheme = if config.server.tls == TlsMode::Off {
            "http"
        } else {
            "https"
        };
        let base = format!("{scheme}://{}/api/v1", running.addr);
        Self {
            base,
            client: client(),
            running: Some(running),
            dir,
            config,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Stops the server (graceful) and starts it again on the same data dir.
    pub async fn restart(&mut self) {
        self.stop().await;
        let mut config = self.config.clone();
        config.server.bind = "127.0.0.1:0".parse().expect("addr");
        let running = server::start(config).await.expect("server restarts");
        let scheme = if self.config.server.tls == TlsMode::Off {
            "http"
        } else {
            "https"
        };
        self.base = format!("{scheme}://{}/api/v1", running.addr);
        self.running = Some(running);
    }

    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Response {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn register(&self, email: &str) -> Value {
        let r = self
            .post(
                "/auth/register",
                json!({"email": email, "password": PASSWORD}),
                None,
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post(
            "/auth/login",
            json!({"email": email, "password": password}),
            None,
        )
        .await
    }
}

/// Asserts a problem document with `status` and `code`; returns it.
pub async fn problem(resp: Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "status");
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.expect("problem json");
    assert_eq!(ct, "application/problem+json", "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status);
    for key in ["type", "title", "detail"] {
        assert!(body.get(key).is_some(), "problem lacks {key}: {body}");
    }
    body
}

pub fn token(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}
