//! Regression tests for the outside audit of the release build (issue 10):
//! each failed on the code before the fix.

use fortfolio::config::Rate;
use serde_json::{json, Value};

use crate::helpers::{problem, token, TestApp, PASSWORD};

/// 100 guesses at once, the right password last: at most the threshold of
/// wrong passwords is ever evaluated, and the right one never gets in.
#[tokio::test]
async fn concurrent_guesses_cannot_race_the_lockout() {
    let app = TestApp::spawn().await;
    app.register("race@example.com").await;
    let mut guesses = Vec::new();
    for i in 0..100 {
        let password = if i == 99 {
            PASSWORD.to_string()
        } else {
            format!("wrong-guess-{i}")
        };
        let (client, url) = (app.client.clone(), app.url("/auth/login"));
        guesses.push(tokio::spawn(async move {
            client
                .post(url)
                .json(&json!({"email": "race@example.com", "password": password}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for g in guesses {
        statuses.push(g.await.unwrap());
    }
    let count = |s: u16| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(count(200), 0, "{statuses:?}");
    assert!(
        count(401) <= 4,
        "more than threshold-1 wrong answers evaluated: {statuses:?}"
    );
    assert_eq!(count(401) + count(423), 100, "{statuses:?}");
    // The lock the failures set stands against the right password.
    problem(app.login("race@example.com", PASSWORD).await, 423, "account_locked").await;
}

async fn login_with_token(app: &TestApp, token: Option<&str>) -> u16 {
    let mut req = app
        .client
        .post(app.url("/auth/login"))
        .json(&json!({"email": "nobody@example.com", "password": "wrong-password-1"}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap().status().as_u16()
}

/// An IP at its login limit stays limited whatever token it attaches; on
/// authenticated routes the IP bucket counts even for valid tokens, and a
/// revoked token earns no bucket of its own.
#[tokio::test]
async fn tokens_never_lift_the_ip_limit() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limits.login = Rate::per_minute(2);
        c.rate_limits.prices = Rate::per_minute(3);
    })
    .await;
    let reg = app.register("rl@example.com").await;
    let access = token(&reg, "access_token");
    assert_eq!(login_with_token(&app, None).await, 401);
    assert_eq!(login_with_token(&app, None).await, 401);
    assert_eq!(login_with_token(&app, None).await, 429);
    assert_eq!(login_with_token(&app, Some(&access)).await, 429);

    let other = app.register("rl2@example.com").await;
    let revoked = token(&other, "access_token");
    assert_eq!(app.post("/auth/logout", json!({}), Some(&revoked)).await.status(), 200);
    for _ in 0..3 {
        assert_eq!(app.get("/prices", Some(&access)).await.status(), 200);
    }
    // Same IP: a revoked token, a valid one of another user — all limited.
    assert_eq!(app.get("/prices", Some(&revoked)).await.status(), 429);
    let fresh = token(&app.register("rl3@example.com").await, "access_token");
    let r = app.get("/prices", Some(&fresh)).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

async fn login_with_device(app: &TestApp, email: &str, device: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/login"))
        .header("x-device-token", device)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
}

async fn lock(app: &TestApp, email: &str) {
    for _ in 0..5 {
        app.login(email, "attacker-guess-1").await;
    }
    problem(app.login(email, PASSWORD).await, 423, "account_locked").await;
}

/// `fortfolio admin user unlock` against the running server.
async fn unlock(app: &TestApp, email: &str) {
    admin(app, &["unlock", email]).await;
}

/// With strangers' lock on the account, `device` no longer gets through.
async fn assert_device_locked_out(app: &TestApp, device: &str) {
    lock(app, "dv@example.com").await;
    let r = login_with_device(app, "dv@example.com", device).await;
    problem(r, 423, "account_locked").await;
    unlock(app, "dv@example.com").await;
}

/// Device tokens die with a password change or logout-all, and one device
/// can be revoked by its owner.
#[tokio::test]
async fn device_tokens_can_be_retired_and_revoked() {
    let app = TestApp::spawn().await;
    let reg = app.register("dv@example.com").await;
    let device = token(&reg, "device_token");
    let access = token(&reg, "access_token");

    let devices: Value = app.get("/me/devices", Some(&access)).await.json().await.unwrap();
    assert_eq!(devices["items"][0]["trusted"], true, "{devices}");
    let device_id = devices["items"][0]["id"].as_str().unwrap().to_string();

    // Logout-all retires it: a lock by strangers now stops this device too.
    let r = app.post("/auth/logout-all", json!({}), Some(&access)).await;
    assert_eq!(r.status(), 200);
    assert_device_locked_out(&app, &device).await;

    // A fresh sign-in binds a fresh token; deleting the device revokes it.
    let body: Value = app.login("dv@example.com", PASSWORD).await.json().await.unwrap();
    let device = token(&body, "device_token");
    let access = token(&body, "access_token");
    let forget = || {
        app.client
            .delete(app.url(&format!("/me/devices/{device_id}")))
            .bearer_auth(&access)
            .send()
    };
    assert_eq!(forget().await.unwrap().status(), 204);
    problem(forget().await.unwrap(), 404, "not_found").await;
    assert_device_locked_out(&app, &device).await;

    // A password change retires the device token it did not come with.
    let body: Value = app.login("dv@example.com", PASSWORD).await.json().await.unwrap();
    let device = token(&body, "device_token");
    let access = token(&body, "access_token");
    let r = app
        .post(
            "/me/password",
            json!({"current_password": PASSWORD, "new_password": "quartz-lantern-meadow-77"}),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), 200);
    for _ in 0..5 {
        app.login("dv@example.com", "attacker-guess-1").await;
    }
    let r = app
        .client
        .post(app.url("/auth/login"))
        .header("x-device-token", &device)
        .json(&json!({"email": "dv@example.com", "password": "quartz-lantern-meadow-77"}))
        .send()
        .await
        .unwrap();
    problem(r, 423, "account_locked").await;
}

/// A stolen access token alone cannot turn 2FA on or off, and wrong
/// passwords and codes there count toward the lockout.
#[tokio::test]
async fn two_factor_changes_need_the_password_and_count_failures() {
    let app = TestApp::spawn().await;
    let reg = app.register("su@example.com").await;
    let access = token(&reg, "access_token");
    problem(
        app.post("/auth/2fa/enable", json!({}), Some(&access)).await,
        422,
        "validation_failed",
    )
    .await;
    let body = problem(
        app.post(
            "/auth/2fa/enable",
            json!({"password": "not-the-password"}),
            Some(&access),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(body["attempts_remaining"], 4);
    let r = app
        .post("/auth/2fa/enable", json!({"password": PASSWORD}), Some(&access))
        .await;
    assert_eq!(r.status(), 200);
    let body = problem(
        app.post("/auth/2fa/verify", json!({"code": "000000"}), Some(&access))
            .await,
        401,
        "invalid_2fa_code",
    )
    .await;
    assert_eq!(body["attempts_remaining"], 3);
    for _ in 0..2 {
        app.post("/auth/2fa/verify", json!({"code": "000000"}), Some(&access))
            .await;
    }
    problem(
        app.post("/auth/2fa/verify", json!({"code": "000000"}), Some(&access))
            .await,
        423,
        "account_locked",
    )
    .await;
    problem(app.login("su@example.com", PASSWORD).await, 423, "account_locked").await;
}

/// A password longer than any account can have is refused unhashed.
#[tokio::test]
async fn oversized_login_passwords_are_refused() {
    let app = TestApp::spawn().await;
    app.register("big@example.com").await;
    let huge = "x".repeat(5000);
    let body = problem(app.login("big@example.com", &huge).await, 401, "invalid_credentials").await;
    assert_eq!(body["attempts_remaining"], 4);
}

/// Opens `n` connections that send half a request head and then stall.
async fn half_open(addr: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let mut conns = Vec::new();
    for _ in 0..n {
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        conns.push(c);
    }
    conns
}

/// True when the server closed the connection (EOF or reset) in time.
async fn closed_within(c: &mut tokio::net::TcpStream, secs: u64) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        match tokio::time::timeout_at(deadline, c.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {} // a 408 answer may come first
        }
    }
}

/// Slowloris: 300 half-open connections are closed by the header timeout
/// while /health keeps answering; connections past the cap are refused.
#[tokio::test]
async fn slow_clients_are_cut_off_and_health_keeps_answering() {
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout = fortfolio::config::Dur::secs(1);
        c.server.max_connections = 400;
    })
    .await;
    let addr = app.running.as_ref().unwrap().addr;
    let started = std::time::Instant::now();
    let mut conns = half_open(addr, 300).await;
    let health = crate::helpers::client().get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    for c in &mut conns {
        assert!(
            closed_within(c, 5).await,
            "a half-open connection outlived the header timeout"
        );
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // At the cap, a new connection is closed at once, and served again
    // once the stalled ones are cut off.
    let app = TestApp::spawn_with(|c| {
        c.server.header_read_timeout = fortfolio::config::Dur::secs(2);
        c.server.max_connections = 10;
    })
    .await;
    let addr = app.running.as_ref().unwrap().addr;
    let _stalled = half_open(addr, 10).await;
    let mut extra = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut extra, 1).await, "the 11th connection was admitted");
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let health = crate::helpers::client().get(app.url("/health")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

/// `fortfolio admin user …` against the running server; returns stdout.
async fn admin(app: &TestApp, args: &[&str]) -> String {
    let (dir, args) = (app.data_dir(), args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fortfolio"))
            .args(["admin", "user"])
            .args(&args)
            .arg("--data-dir")
            .arg(dir)
            .env("USER", "root-admin")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every admin action is a security event naming who ran it; disable and
/// reset-2fa also mail the user.
#[tokio::test]
async fn admin_actions_are_events_with_their_actor_and_alert_the_user() {
    let (sink, port) = crate::helpers::MailSink::start_any();
    let app = TestApp::spawn_with(|c| crate::helpers::smtp_to(c, port)).await;
    let reg = app.register("ad@example.com").await;
    let access = token(&reg, "access_token");
    admin(&app, &["reset-2fa", "ad@example.com"]).await;
    admin(&app, &["disable", "ad@example.com"]).await;
    admin(&app, &["enable", "ad@example.com"]).await;
    let mails = sink.wait_for_alerts(2, 10).await;
    let subjects: Vec<&str> = mails
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("Subject:")))
        .collect();
    assert!(
        subjects.iter().any(|s| s.contains("disabled by an administrator")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("turned off two-factor")),
        "{subjects:?}"
    );
    assert!(mails.iter().all(|m| m.contains("To: ad@example.com")), "{mails:?}");
    // The events name the actor; the disabled account's token died.
    problem(app.get("/me", Some(&access)).await, 401, "unauthorized").await;
    let body: Value = app.login("ad@example.com", PASSWORD).await.json().await.unwrap();
    let access = token(&body, "access_token");
    let events: Value = app
        .get("/me/security-events?limit=50", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    for kind in ["two_factor_reset", "account_disabled", "account_enabled"] {
        let ev = events["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["event"] == kind)
            .unwrap_or_else(|| panic!("no {kind} event in {events}"));
        assert_eq!(ev["details"]["by"], "admin", "{ev}");
        assert!(ev["details"]["actor"].as_str().unwrap().contains("root-admin"), "{ev}");
    }
}
