//! `/docs` in a real browser: Debian's Chromium, headless, driven over
//! WebDriver (chromedriver) with plain HTTP calls. Every host but the
//! server's resolves nowhere, so a page that reached for the network would
//! fail to load; the browser's console must show no error and no CSP
//! violation, and every operation must be on the page with its fields.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{free_port, TestApp};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// chromedriver, stopped on drop.
struct Driver {
    child: Child,
    base: String,
    session: Option<String>,
    http: reqwest::Client,
}

impl Driver {
    async fn start() -> Option<Driver> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "chromium and chromium-driver are missing, and CI=true forbids skipping"
            );
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED docs in a browser: apt-get install chromium chromium-driver to run it"
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
        let mut driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            session: None,
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
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1400,1000",
                    // No network: only the server under test resolves.
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let session = driver.call("POST", "/session", caps).await;
        driver.session = Some(session["sessionId"].as_str().unwrap().to_string());
        Some(driver)
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = match &self.session {
            Some(id) if path != "/session" => format!("{}/session/{id}{path}", self.base),
            _ => format!("{}{path}", self.base),
        };
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = req.send().await.unwrap().json().await.unwrap();
        assert!(answer["value"]["error"].is_null(), "{method} {path}: {answer}");
        answer["value"].clone()
    }

    async fn script(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", json!({"script": script, "args": []}))
            .await
    }

    /// Waits until `script` answers `true`.
    async fn wait_for(&self, script: &str, what: &str) {
        let started = Instant::now();
        while self.script(script).await != json!(true) {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The property names of a schema, following `$ref` and `allOf`.
fn properties(doc: &Value, schema: &Value, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return properties(doc, &doc["components"]["schemas"][name], out);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        properties(doc, part, out);
    }
    if let Some(props) = schema["properties"].as_object() {
        out.extend(props.keys().cloned());
    }
}

#[tokio::test]
async fn docs_render_every_operation_offline_under_the_csp() {
    let Some(driver) = Driver::start().await else { return };
    let app = TestApp::spawn().await;
    let root = app.base.trim_end_matches("/api/v1").to_string();
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();

    driver
        .call("POST", "/url", json!({"url": format!("{root}/docs")}))
        .await;
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item[method].is_object() {
                operations.push((path.clone(), method, item[method].clone()));
            }
        }
    }
    let n = operations.len();
    driver
        .wait_for(
            &format!("return document.querySelectorAll('.opblock').length === {n};"),
            "every operation to be listed",
        )
        .await;
    // Open every operation, then read what each shows.
    driver
        .script("document.querySelectorAll('.opblock-summary-control').forEach(b => b.click()); return true;")
        .await;
    driver
        .wait_for(
            &format!("return document.querySelectorAll('.opblock .responses-wrapper').length === {n};"),
            "every operation to open",
        )
        .await;
    // Show each body's schema (its fields), not only its example.
    driver
        .script(
            "document.querySelectorAll('button.tablinks[data-name=\"model\"]').forEach(b => b.click()); return true;",
        )
        .await;
    driver
        .wait_for(
            "return document.querySelectorAll('.opblock .model-box').length > 0;",
            "the schemas to show",
        )
        .await;
    for (path, method, op) in &operations {
        let id = op["operationId"].as_str().unwrap();
        // Swagger UI gives each block the id `operations-<tag>-<operationId>`.
        let text = driver
            .script(&format!(
                "const b = document.querySelector('[id$=\"-{id}\"].opblock'); return b ? b.innerText : null;"
            ))
            .await;
        let text = text
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} ({id}) is not on the page"));
        assert!(text.contains(path.as_str()), "{id}: path missing");
        let mut fields = Vec::new();
        properties(
            &doc,
            &op["requestBody"]["content"]["application/json"]["schema"],
            &mut fields,
        );
        for (status, response) in op["responses"].as_object().unwrap() {
            assert!(text.contains(status.as_str()), "{id}: status {status} missing");
            if status.starts_with('2') {
                properties(&doc, &response["content"]["application/json"]["schema"], &mut fields);
            }
        }
        for field in fields {
            assert!(text.contains(&field), "{method} {path}: field `{field}` is not shown");
        }
    }
    // Nothing but this server was asked for anything.
    let resources = driver
        .script("return performance.getEntriesByType('resource').map(e => e.name);")
        .await;
    for url in resources.as_array().unwrap() {
        assert!(url.as_str().unwrap().starts_with(&root), "the page fetched {url}");
    }
    let log = driver.call("POST", "/se/log", json!({"type": "browser"})).await;
    for entry in log.as_array().unwrap() {
        let message = entry["message"].as_str().unwrap_or("");
        assert!(
            entry["level"] != "SEVERE" && !message.contains("Content Security Policy"),
            "browser console: {entry}"
        );
    }
    driver.call("DELETE", "", Value::Null).await;
}
