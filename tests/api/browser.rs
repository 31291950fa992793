//! Debian's Chromium, headless, driven over WebDriver (chromedriver) with
//! plain HTTP calls: the harness of the browser tests. Each `Browser` is a
//! WebDriver session with its own profile (its own cookies).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::free_port;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver, stopped on drop.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

/// One browser window (a WebDriver session); cheap to clone.
#[derive(Clone)]
pub struct Browser {
    url: String,
    http: reqwest::Client,
    pub name: String,
}

impl Driver {
    /// None (the test skips) when Chromium is not installed; with CI=true
    /// that is a failure instead.
    pub async fn start(what: &str) -> Option<Driver> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "chromium and chromium-driver are missing, and CI=true forbids skipping"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {what} in a browser: apt-get install chromium chromium-driver to run it"
            );
            return None;
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let started = Instant::now();
        while driver.http.get(format!("{}/status", driver.base)).send().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(driver)
    }

    /// A new window `width` × `height`; no host but 127.0.0.1 resolves, so a
    /// page that reached for the network would fail. Self-signed
    /// certificates are accepted (the server under test makes its own).
    pub async fn open(&self, name: &str, width: u32, height: u32) -> Browser {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "acceptInsecureCerts": true,
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let answer: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {answer}"));
        Browser {
            url: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
            name: name.to_string(),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// A WebDriver command; panics on a WebDriver error.
    pub async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let answer = self.try_call(method, path, body).await;
        assert!(answer["error"].is_null(), "{}: {method} {path}: {answer}", self.name);
        answer
    }

    async fn try_call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = req.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", "/url", json!({"url": url})).await;
    }

    /// Runs `script` (a function body) in the page with `args`.
    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    pub async fn script(&self, script: &str) -> Value {
        self.run(script, json!([])).await
    }

    /// Runs `script`, which calls its last argument with the answer.
    pub async fn script_async(&self, script: &str, args: Value) -> Value {
        self.call("POST", "/execute/async", json!({"script": script, "args": args}))
            .await
    }

    /// Waits until `script` answers `true`.
    pub async fn wait_for(&self, script: &str, what: &str) {
        let started = Instant::now();
        while self.script(script).await != json!(true) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{}: timed out waiting for {what}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The WebDriver element reference of the first match of `css`.
    pub async fn element(&self, css: &str) -> String {
        let found = self
            .call("POST", "/element", json!({"using": "css selector", "value": css}))
            .await;
        found
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: no element {css}", self.name))
            .to_string()
    }

    /// Types `text` into the element (real key events; `\u{E007}` is Enter).
    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call("POST", &format!("/element/{id}/clear"), json!({})).await;
        self.call("POST", &format!("/element/{id}/value"), json!({"text": text}))
            .await;
    }

    pub async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call("POST", &format!("/element/{id}/click"), json!({})).await;
    }

    /// Presses keys on whatever has focus.
    pub async fn keys(&self, keys: &[&str]) {
        let mut actions = Vec::new();
        for k in keys {
            actions.push(json!({"type": "keyDown", "value": k}));
            actions.push(json!({"type": "keyUp", "value": k}));
        }
        self.call(
            "POST",
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]}),
        )
        .await;
    }

    /// A Chrome DevTools command (emulation of a viewport or colour scheme).
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call("POST", "/goog/cdp/execute", json!({"cmd": cmd, "params": params}))
            .await
    }

    /// Errors and CSP violations in the browser's console since the last
    /// call. With `refusals_expected`, a request the server answered with an
    /// error status is not one (the console meets 401s and 403s by design).
    pub async fn console_problems(&self, refusals_expected: bool) -> Vec<String> {
        let log = self.call("POST", "/se/log", json!({"type": "browser"})).await;
        log.as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| {
                let message = e["message"].as_str().unwrap_or("").to_string();
                let answered = message.contains("Failed to load resource: the server responded with a status of");
                let severe = e["level"] == "SEVERE" && !(refusals_expected && answered);
                (severe || message.contains("Content Security Policy")).then_some(message)
            })
            .collect()
    }

    /// Saves a PNG of the window (best effort: the browser may be gone).
    pub async fn screenshot(&self, path: &std::path::Path) {
        let shot = self.try_call("GET", "/screenshot", Value::Null).await;
        if let Some(png) = shot.as_str() {
            use base64::Engine;
            if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(png) {
                let _ = std::fs::write(path, bytes);
            }
        }
    }

    /// Opens a tab in the same profile (same cookies and storage) and
    /// answers its handle; the current tab stays in control.
    pub async fn new_tab(&self) -> String {
        let tab = self.call("POST", "/window/new", json!({"type": "tab"})).await;
        tab["handle"].as_str().unwrap().to_string()
    }

    /// The handle of the tab in control.
    pub async fn tab(&self) -> String {
        self.call("GET", "/window", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    pub async fn switch_to(&self, handle: &str) {
        self.call("POST", "/window", json!({"handle": handle})).await;
    }

    pub async fn close(&self) {
        let _ = self.try_call("DELETE", "", Value::Null).await;
    }
}

/// Runs `body`; if it panics, saves a screenshot of every window into
/// `target/browser-screenshots/` (named after `test` and the window) and
/// fails with the panic.
pub async fn with_screenshots<F>(test: &str, windows: Vec<Browser>, body: F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(body).await;
    if let Err(e) = outcome {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        for w in &windows {
            let path = dir.join(format!("{test}-{}.png", w.name));
            w.screenshot(&path).await;
            eprintln!("screenshot of {} saved to {}", w.name, path.display());
        }
        for w in &windows {
            w.close().await;
        }
        std::panic::resume_unwind(e.into_panic());
    }
    for w in &windows {
        w.close().await;
    }
}
