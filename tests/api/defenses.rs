use std::time::Duration;

use fortfolio::config::Rate;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{problem, token, TestApp, PASSWORD};

#[tokio::test]
async fn lockout_survives_restart_and_admin_unlock_lifts_it() {
    let mut app = TestApp::spawn().await;
    app.register("ka@example.com").await;
    for expected in (1..=4).rev() {
        let body = problem(
            app.login("ka@example.com", "wrong-password-x").await,
            401,
            "invalid_credentials",
        )
        .await;
        assert_eq!(body["attempts_remaining"], expected);
    }
    let r = app.login("ka@example.com", "wrong-password-x").await;
    assert!(r.headers().contains_key("retry-after"));
    let body = problem(r, 423, "account_locked").await;
    assert!(body["locked_until"].is_string());
    // The right password from a client without a device token is refused.
    problem(app.login("ka@example.com", PASSWORD).await, 423, "account_locked").await;
    app.restart().await;
    problem(app.login("ka@example.com", PASSWORD).await, 423, "account_locked").await;

    let dir = app.data_dir().to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fortfolio"))
            .args(["admin", "user", "unlock", "ka@example.com", "--data-dir", &dir])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(app.login("ka@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn unknown_emails_lock_like_known_ones() {
    let app = TestApp::spawn().await;
    for expected in (1..=4).rev() {
        let body = problem(
            app.login("ghost@example.com", "wrong-password-x").await,
            401,
            "invalid_credentials",
        )
        .await;
        assert_eq!(body["attempts_remaining"], expected);
    }
    problem(
        app.login("ghost@example.com", "wrong-password-x").await,
        423,
        "account_locked",
    )
    .await;
}

#[tokio::test]
async fn a_known_device_logs_in_while_strangers_locked_the_account() {
    let app = TestApp::spawn().await;
    let reg = app.register("lu@example.com").await;
    let device = token(&reg, "device_token");
    for _ in 0..6 {
        app.login("lu@example.com", "attacker-guess-1").await;
    }
    problem(app.login("lu@example.com", PASSWORD).await, 423, "account_locked").await;
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("x-device-token", &device)
        .json(&json!({"email": "lu@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "owner's device is not locked out");
    // The same via the cookie.
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("cookie", format!("fortfolio_device={device}"))
        .json(&json!({"email": "lu@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A device token of another account does not help.
    let other = app.register("mo@example.com").await;
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("x-device-token", token(&other, "device_token"))
        .json(&json!({"email": "lu@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    problem(r, 423, "account_locked").await;
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

async fn register_from(app: &TestApp, client: &reqwest::Client, n: usize, xff: Option<&str>) -> reqwest::Response {
    let mut req = client
        .post(app.url("/auth/register"))
        .json(&json!({"email": format!("rl{n}-{}@example.com", rand_suffix()), "password": PASSWORD}));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap()
}

fn rand_suffix() -> String {
    fortfolio::security::random_token(6)
        .to_lowercase()
        .replace(['-', '_'], "x")
}

#[tokio::test]
async fn register_rate_limit_is_per_client_ip_and_not_spoofable() {
    let app = TestApp::spawn_with(|c| c.rate_limits.register = Rate::per_minute(3)).await;
    let a = client_from("127.0.0.1");
    for i in 0..3 {
        let r = register_from(&app, &a, i, None).await;
        assert_eq!(r.status(), 201);
        assert_eq!(r.headers()["ratelimit-limit"], "3");
        assert_eq!(r.headers()["ratelimit-remaining"], (2 - i).to_string().as_str());
    }
    let r = register_from(&app, &a, 3, None).await;
    for h in [
        "retry-after",
        "ratelimit-limit",
        "ratelimit-remaining",
        "ratelimit-reset",
    ] {
        assert!(r.headers().contains_key(h), "{h}");
    }
    problem(r, 429, "rate_limited").await;
    // A forged X-Forwarded-For from an untrusted peer changes nothing.
    let r = register_from(&app, &a, 4, Some("198.51.100.1")).await;
    problem(r, 429, "rate_limited").await;
    // Another IP is unaffected.
    let b = client_from("127.0.0.2");
    assert_eq!(register_from(&app, &b, 5, None).await.status(), 201);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_the_key() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limits.register = Rate::per_minute(3);
        c.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let proxy = client_from("127.0.0.1");
    for i in 0..3 {
        let r = register_from(&app, &proxy, i, Some("203.0.113.5")).await;
        assert_eq!(r.status(), 201);
    }
    problem(
        register_from(&app, &proxy, 3, Some("203.0.113.5")).await,
        429,
        "rate_limited",
    )
    .await;
    // A left-most forged hop does not escape: the right-most untrusted hop is the client.
    problem(
        register_from(&app, &proxy, 4, Some("6.6.6.6, 203.0.113.5")).await,
        429,
        "rate_limited",
    )
    .await;
    assert_eq!(register_from(&app, &proxy, 5, Some("203.0.113.6")).await.status(), 201);
}

#[tokio::test]
async fn overload_is_shed_with_503_and_health_stays_up() {
    let app = TestApp::spawn_with(|c| {
        c.server.max_concurrent_requests = 2;
        c.server.max_queued_requests = 2;
    })
    .await;
    app.register("ne@example.com").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let client = app.client.clone();
        let url = app.url("/auth/login");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"email": "ne@example.com", "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let retry = r.headers().contains_key("retry-after");
            let body: Value = r.json().await.unwrap();
            (status, retry, body)
        }));
    }
    let health = app.get("/health", None).await;
    assert_eq!(health.status(), 200, "health answers under overload");
    let mut shed = 0;
    for t in tasks {
        let (status, retry, body) = t.await.unwrap();
        match status {
            StatusCode::OK => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["code"], "overloaded");
                assert!(retry);
                shed += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(shed > 0, "some requests are shed");
}

#[tokio::test]
async fn cookie_authenticated_changes_need_the_csrf_token() {
    let app = TestApp::spawn().await;
    let r = app
        .post(
            "/auth/register",
            json!({"email": "ol@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let get = |name: &str| {
        cookies
            .iter()
            .find(|c| c.starts_with(&format!("{name}=")))
            .map(|c| c.split(';').next().unwrap().split_once('=').unwrap().1.to_string())
            .unwrap()
    };
    let access_cookie = cookies.iter().find(|c| c.starts_with("fortfolio_access=")).unwrap();
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(access_cookie.contains(attr), "{access_cookie}");
    }
    let refresh_cookie = cookies.iter().find(|c| c.starts_with("fortfolio_refresh=")).unwrap();
    assert!(refresh_cookie.contains("Path=/api/v1/auth/refresh"));
    let body: Value = r.json().await.unwrap();
    let (access, csrf) = (get("fortfolio_access"), get("fortfolio_csrf"));
    let jar = format!("fortfolio_access={access}; fortfolio_csrf={csrf}");
    let patch = |csrf_header: Option<String>, cookie: Option<String>, bearer: Option<String>| {
        let mut req = app.client.patch(app.url("/me")).json(&json!({"full_name": "Ol"}));
        if let Some(c) = cookie {
            req = req.header("cookie", c);
        }
        if let Some(h) = csrf_header {
            req = req.header("x-csrf-token", h);
        }
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        req.send()
    };
    problem(patch(None, Some(jar.clone()), None).await.unwrap(), 403, "csrf_failed").await;
    problem(
        patch(Some("wrong-wrong-wrong-wrong".into()), Some(jar.clone()), None)
            .await
            .unwrap(),
        403,
        "csrf_failed",
    )
    .await;
    assert_eq!(
        patch(Some(csrf.clone()), Some(jar.clone()), None)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        patch(None, None, Some(token(&body, "access_token")))
            .await
            .unwrap()
            .status(),
        200
    );
    // Reads by cookie need no token.
    let r = app
        .client
        .get(app.url("/me"))
        .header("cookie", jar.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Logout by cookie is state-changing too.
    let r = app
        .client
        .post(app.url("/auth/logout"))
        .header("cookie", jar.clone())
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    problem(r, 403, "csrf_failed").await;
    // Refresh from the cookie needs it as well.
    let refresh = get("fortfolio_refresh");
    let r = app
        .client
        .post(app.url("/auth/refresh"))
        .header("cookie", format!("fortfolio_refresh={refresh}; fortfolio_csrf={csrf}"))
        .send()
        .await
        .unwrap();
    problem(r, 403, "csrf_failed").await;
    let r = app
        .client
        .post(app.url("/auth/refresh"))
        .header("cookie", format!("fortfolio_refresh={refresh}; fortfolio_csrf={csrf}"))
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // GET /auth/csrf hands out a token and cookie.
    let r = app.get("/auth/csrf", None).await;
    assert!(r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("fortfolio_csrf="));
    let v: Value = r.json().await.unwrap();
    assert!(v["csrf_token"].as_str().unwrap().len() >= 32);
}

#[tokio::test]
async fn cors_allows_only_listed_origins() {
    let app = TestApp::spawn_with(|c| c.server.cors_allowed_origins = vec!["https://app.example.com".into()]).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/me"))
            .header("origin", origin)
            .header("access-control-request-method", "PATCH")
            .header("access-control-request-headers", "content-type, x-csrf-token")
            .send()
    };
    let r = preflight("https://app.example.com").await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
    let r = preflight("https://evil.example.com").await.unwrap();
    assert!(!r.headers().contains_key("access-control-allow-origin"));
    let r = app
        .client
        .get(app.url("/health"))
        .header("origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "https://app.example.com");
    tokio::time::sleep(Duration::from_millis(1)).await;
}
