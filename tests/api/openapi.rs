//! The OpenAPI document against the running server: every route it serves
//! is documented, every documented route is served, the answers it gives to
//! probes are the ones documented, and the checked-in `openapi.json` is
//! what the server serves.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{token, TestApp};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn root(app: &TestApp) -> String {
    app.base.trim_end_matches("/api/v1").to_string()
}

async fn document(app: &TestApp) -> Value {
    app.get("/openapi.json", None).await.json().await.unwrap()
}

/// Every (path, method, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, &'static str, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item[method].is_object() {
                out.push((path.clone(), method, item[method].clone()));
            }
        }
    }
    out
}

/// The path with each parameter replaced by a value of its documented form.
fn concrete(path: &str) -> String {
    let file = if path.starts_with("/console/") {
        "app.js"
    } else {
        "docs.js"
    };
    path.replace("{id}", "0190a0a0-0000-7000-8000-000000000000")
        .replace("{symbol}", "SPY")
        .replace("{file}", file)
}

/// `method` on the documented `path`, with no token and no body.
async fn bare(app: &TestApp, method: &str, path: &str) -> reqwest::Response {
    let url = format!("{}{}", root(app), concrete(path));
    app.client
        .request(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), &url)
        .send()
        .await
        .unwrap()
}

fn is_router_fallback(status: u16, body: &Value) -> bool {
    (status == 404 && body["detail"] == "no such endpoint") || status == 405
}

/// The problem codes the document allows for `status` of `op`.
fn documented_codes(op: &Value, status: u16) -> Option<Vec<String>> {
    let response = &op["responses"][status.to_string()];
    if response.is_null() {
        return None;
    }
    let codes = &response["content"]["application/problem+json"]["schema"]["properties"]["code"]["enum"];
    Some(serde_json::from_value(codes.clone()).unwrap_or_default())
}

#[tokio::test]
async fn the_checked_in_document_is_the_served_one() {
    let app = TestApp::spawn().await;
    let served = app.get("/openapi.json", None).await.text().await.unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("FORTFOLIO_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &served).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == served,
        "openapi.json differs from the served document; regenerate it with \
         `cargo run --release -- openapi > openapi.json` and review the diff"
    );
    // `fortfolio openapi` prints the same document.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fortfolio"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8(out.stdout).unwrap() == served);
}

#[tokio::test]
async fn every_documented_route_is_served_and_no_other_method_is() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = operations(&doc);
    assert!(ops.len() >= 33, "{} operations", ops.len());
    for (path, method, _) in &ops {
        let r = bare(&app, method, path).await;
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or_default();
        assert!(
            !is_router_fallback(status, &body),
            "{method} {path} is documented but not routed ({status})"
        );
    }
    // A method the document does not list for a path is not served.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item[**m].is_null()) {
            let r = bare(&app, method, path).await;
            assert_eq!(r.status(), 405, "{method} {path} is served but not documented");
        }
    }
}

/// Probes every operation the ways the layers and extractors refuse a
/// request (no token, a malformed or mistyped body, a bad parameter, a
/// declared body too large) and holds each answer to the document: its
/// status must be listed for the operation and its problem `code` named for
/// that status.
#[tokio::test]
async fn every_answer_to_a_probe_is_documented() {
    let app = TestApp::spawn_with(|c| c.server.max_body_bytes = 4096).await;
    let doc = document(&app).await;
    let access = token(&app.register("probe@example.com").await, "access_token");
    let mut seen = 0;
    for (path, method, op) in operations(&doc) {
        let url = format!("{}{}", root(&app), concrete(&path));
        let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let with_token = |b: reqwest::RequestBuilder| b.bearer_auth(&access);
        let probes: Vec<(&str, reqwest::RequestBuilder)> = vec![
            ("no token", app.client.request(m.clone(), &url)),
            (
                "malformed JSON",
                with_token(app.client.request(m.clone(), &url))
                    .header("content-type", "application/json")
                    .body("{"),
            ),
            (
                "not JSON",
                with_token(app.client.request(m.clone(), &url))
                    .header("content-type", "text/plain")
                    .body("x"),
            ),
            (
                "empty object",
                with_token(app.client.request(m.clone(), &url)).json(&json!({})),
            ),
            (
                "unknown field",
                with_token(app.client.request(m.clone(), &url)).json(&json!({"no_such_field": 1})),
            ),
            (
                "bad query",
                with_token(
                    app.client
                        .request(m.clone(), format!("{url}?limit=0&cursor=%20&history=2d&since=x")),
                ),
            ),
            (
                "too large",
                with_token(app.client.request(m.clone(), &url)).body(vec![b' '; 8192]),
            ),
        ];
        let mut probes = probes;
        // Logging out would leave the later operations only the 401 probe.
        if !path.contains("logout") {
            probes.push(("well formed", with_token(app.client.request(m.clone(), &url))));
        }
        for (probe, request) in probes {
            let r = request.send().await.unwrap();
            let status = r.status().as_u16();
            let is_problem = r
                .headers()
                .get("content-type")
                .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/problem+json"));
            let body: Value = r.json().await.unwrap_or_default();
            let codes = documented_codes(&op, status).unwrap_or_else(|| {
                panic!("{method} {path} ({probe}) answered {status}, which is not documented: {body}")
            });
            if is_problem {
                let code = body["code"].as_str().unwrap_or("");
                assert!(
                    codes.iter().any(|c| c == code),
                    "{method} {path} ({probe}) answered {status} `{code}`, not among {codes:?}"
                );
            }
            seen += 1;
        }
    }
    assert!(seen > 200, "{seen} probes");
}
