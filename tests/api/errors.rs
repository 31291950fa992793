use serde_json::json;

use crate::helpers::{problem, token, TestApp};

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
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("{}")
        .send()
        .await
        .unwrap();
    problem(r, 415, "invalid_json").await;
    // No declared type is refused too: a cross-site `fetch` with a Blob or
    // text body sends none, and must not log a victim in (login CSRF).
    let r = app.client.post(app.url("/auth/login")).body("{}").send().await.unwrap();
    problem(r, 415, "invalid_json").await;
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "text/plain")
        .body(r#"{"email":"a@example.com","password":"violet-anchor-tundra-41"}"#)
        .send()
        .await
        .unwrap();
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

#[tokio::test]
async fn docs_and_metrics_are_served() {
    let app = TestApp::spawn().await;
    let root = app.base.trim_end_matches("/api/v1").to_string();
    let docs = app.client.get(format!("{root}/docs")).send().await.unwrap();
    assert_eq!(docs.status(), 200);
    let csp = docs.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
    let html = docs.text().await.unwrap();
    // Swagger UI from this server, and the whole table for no-script browsers.
    assert!(html.contains("<script src=\"/docs/swagger-ui-bundle.js\">"), "{html}");
    assert!(
        html.contains("<noscript>") && html.contains("/api/v1/portfolio/buy"),
        "{html}"
    );
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css", "docs.js", "docs.css"] {
        let r = app.client.get(format!("{root}/docs/{asset}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{asset}");
        assert!(!r.bytes().await.unwrap().is_empty(), "{asset}");
    }
    let r = app.client.get(format!("{root}/docs/index.html")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    app.get("/health", None).await;
    let metrics = app.client.get(format!("{root}/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("fortfolio_http_requests_total{method=\"GET\",route=\"/api/v1/health\",status=\"200\"}"),
        "{text}"
    );
    assert!(text.contains("fortfolio_security_events_total{event=\"login_success\"}"));
    assert!(text.contains("fortfolio_outbox_depth 0"));
    assert!(text.contains("fortfolio_request_queue_depth 0"));
}

#[tokio::test]
async fn metrics_token_is_required_when_set() {
    let app = TestApp::spawn_with(|c| c.metrics.token = fortfolio::domain::Secret::new("m-token-123")).await;
    let root = app.base.trim_end_matches("/api/v1").to_string();
    let r = app.client.get(format!("{root}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(format!("{root}/metrics"))
        .bearer_auth("m-token-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn query_and_path_rejections_are_problem_documents() {
    let app = TestApp::spawn().await;
    let access = token(&app.register("ea@example.com").await, "access_token");
    // Axum's own rejections answered `text/plain`.
    for list in [
        "/portfolio/transactions",
        "/news",
        "/prices",
        "/me/sessions",
        "/me/devices",
        "/me/security-events",
    ] {
        let r = app.get(&format!("{list}?limit=1&limit=2"), Some(&access)).await;
        let body = problem(r, 422, "validation_failed").await;
        assert_eq!(body["field"], "limit", "{list}: {body}");
    }
    let body = problem(app.get("/prices/%FF", Some(&access)).await, 422, "validation_failed").await;
    assert_eq!(body["field"], "symbol");
    let r = app
        .client
        .delete(app.url("/me/sessions/%FF"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    let body = problem(r, 422, "validation_failed").await;
    assert_eq!(body["field"], "id");
    // Cursors these lists never hand out were accepted.
    for list in ["/portfolio/transactions", "/me/security-events"] {
        let r = app.get(&format!("{list}?cursor=zzz"), Some(&access)).await;
        let body = problem(r, 422, "validation_failed").await;
        assert_eq!(body["field"], "cursor", "{list}: {body}");
    }
    // serde named the Rust type: "expected struct LoginBody".
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("content-type", "application/json")
        .body("[]")
        .send()
        .await
        .unwrap();
    let body = problem(r, 422, "validation_failed").await;
    let detail = body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("LoginBody") && detail.contains("JSON object"),
        "{detail}"
    );
}
