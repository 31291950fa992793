use serde_json::json;

use crate::helpers::{problem, TestApp};

#[tokio::test]
async fn malformed_requests_get_problem_documents() {
    let app = TestApp::spawn().await;
    let post_raw = |body: &'static str| {
        app.client
            .post(app.url("/auth/register"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    problem(post_raw("{\"email\": ").await.unwrap(), 400, "invalid_json").await;
    let body = problem(
        post_raw("{\"password\": \"x\"}").await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "email");
    let body = problem(
        post_raw("{\"email\": 5, \"password\": \"x\"}").await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "email");
    problem(app.get("/no/such/route", None).await, 404, "not_found").await;
    let r = app.client.delete(app.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let r = app.client.post(app.url("/auth/login")).body("{}").send().await.unwrap();
    problem(r, 415, "invalid_json").await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let r = app
        .client
        .get(app.url("/health"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id with spaces");
    for h in [
        "x-content-type-options",
        "x-frame-options",
        "referrer-policy",
        "content-security-policy",
    ] {
        assert!(r.headers().contains_key(h), "{h}");
    }
    let health: serde_json::Value = r.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["storage"], "embedded");
    assert_eq!(health["state"], "memory");
    assert!(health["uptime_seconds"].is_u64());
    let r = app.get("/ready", None).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = TestApp::spawn_with(|c| c.server.max_body_bytes = 2048).await;
    let big = "x".repeat(4096);
    let r = app
        .post("/auth/login", json!({"email": big, "password": "y"}), None)
        .await;
    problem(r, 413, "payload_too_large").await;
}

#[tokio::test]
async fn tls_self_signed_certificate_is_kept_across_restarts() {
    let mut app = TestApp::spawn_with(|c| c.server.tls = fortfolio::config::TlsMode::SelfSigned).await;
    assert!(app.base.starts_with("https://"));
    let r = app.get("/health", None).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("strict-transport-security"));
    let cert = app.data_dir().join("tls/cert.pem");
    let before = std::fs::read(&cert).unwrap();
    app.restart().await;
    assert_eq!(app.get("/health", None).await.status(), 200);
    assert_eq!(std::fs::read(&cert).unwrap(), before);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(app.data_dir().join("tls/key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
