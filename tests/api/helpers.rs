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
        &mut r.admin,
        &mut r.recovery,
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

    /// `GET /metrics` (the test client is a loopback peer).
    pub async fn metrics(&self) -> String {
        let root = self.base.trim_end_matches("/api/v1");
        let r = self
            .client
            .get(format!("{root}/metrics"))
            .send()
            .await
            .expect("metrics");
        r.text().await.expect("metrics text")
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
            .post("/auth/register", json!({"email": email, "password": PASSWORD}), None)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json().await.expect("json")
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post("/auth/login", json!({"email": email, "password": password}), None)
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
    v[key].as_str().unwrap_or_else(|| panic!("no {key} in {v}")).to_string()
}

/// A minimal real SMTP server on loopback (RFC 5321 commands HELO/EHLO,
/// MAIL, RCPT, DATA, RSET, NOOP, QUIT) that keeps every message it accepts.
#[derive(Clone, Default)]
pub struct MailSink {
    pub messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl MailSink {
    /// Serves on `port` (for the life of the test process).
    pub fn start(port: u16) -> Self {
        Self::serve(std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind smtp sink"))
    }

    /// Serves on a port of its own choosing (no race with other tests for
    /// a port picked beforehand); returns it.
    pub fn start_any() -> (Self, u16) {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind smtp sink");
        let port = listener.local_addr().expect("sink address").port();
        (Self::serve(listener), port)
    }

    fn serve(listener: std::net::TcpListener) -> Self {
        let sink = MailSink::default();
        let messages = sink.messages.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let messages = messages.clone();
                std::thread::spawn(move || {
                    let _ = serve_smtp(stream, messages);
                });
            }
        });
        sink
    }

    pub fn all(&self) -> Vec<String> {
        self.messages.lock().unwrap().clone()
    }

    /// The messages other than the verification mail every registration
    /// sends.
    pub fn alerts(&self) -> Vec<String> {
        self.all().into_iter().filter(|m| !is_verification(m)).collect()
    }

    /// Waits until at least `n` [`Self::alerts`] arrived (or `secs` pass).
    pub async fn wait_for_alerts(&self, n: usize, secs: u64) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while self.alerts().len() < n && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.alerts()
    }
}

/// Whether a mail is the verification link a registration sends.
pub fn is_verification(mail: &str) -> bool {
    mail.contains("Subject: Confirm your fortfolio email address")
}

fn serve_smtp(
    stream: std::net::TcpStream,
    messages: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let mut out = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    out.write_all(b"220 sink.test ESMTP\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_ascii_uppercase();
        if cmd.starts_with("EHLO") {
            out.write_all(b"250-sink.test\r\n250 8BITMIME\r\n")?;
        } else if cmd.starts_with("DATA") {
            out.write_all(b"354 end with .\r\n")?;
            let mut data = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            messages.lock().unwrap().push(data);
            out.write_all(b"250 queued\r\n")?;
        } else if cmd.starts_with("QUIT") {
            out.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            out.write_all(b"250 ok\r\n")?;
        }
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn smtp_to(c: &mut Config, port: u16) {
    c.smtp.host = "127.0.0.1".into();
    c.smtp.port = port;
    c.smtp.security = fortfolio::config::SmtpSecurity::None;
}

/// Undoes quoted-printable (soft line breaks and `=XX` bytes) so the parts
/// can be read as written.
pub fn unquote_printable(mail: &str) -> String {
    let joined = mail.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'=', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
