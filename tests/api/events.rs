use serde_json::{json, Value};

use crate::helpers::{free_port, problem, smtp_to, token, unquote_printable, MailSink, TestApp, PASSWORD};

fn subject(msg: &str) -> String {
    msg.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or("")
        .to_string()
}

async fn login_as(app: &TestApp, email: &str, password: &str, ua: &str) -> reqwest::Response {
    app.client
        .post(app.url("/auth/login"))
        .header("user-agent", ua)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn alerts_reach_the_user_by_email_without_secrets() {
    let (sink, port) = MailSink::start_any();
    let app = TestApp::spawn_with(|c| smtp_to(c, port)).await;
    let r = app
        .client
        .post(app.url("/auth/register"))
        .header("user-agent", "agent-one")
        .json(&json!({"email": "sa@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let reg: Value = r.json().await.unwrap();
    let access = token(&reg, "access_token");
    // Same device as registration: no alert. A new User-Agent: one alert.
    assert_eq!(
        login_as(&app, "sa@example.com", PASSWORD, "agent-one").await.status(),
        200
    );
    assert_eq!(
        login_as(&app, "sa@example.com", PASSWORD, "agent-two").await.status(),
        200
    );
    let mails = sink.wait_for_alerts(1, 10).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(subject(&mails[0]).contains("New sign-in"), "{}", subject(&mails[0]));
    assert!(mails[0].contains("agent-two"));

    let new_pw = "quartz-meadow-lantern-77";
    let r = app
        .post(
            "/me/password",
            json!({"current_password": PASSWORD, "new_password": new_pw}),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), 200);
    let mails = sink.wait_for_alerts(2, 10).await;
    assert!(subject(&mails[1]).contains("password was changed"));

    let r = app
        .post("/auth/2fa/enable", json!({"password": new_pw}), Some(&access))
        .await;
    let secret: Value = r.json().await.unwrap();
    let bytes = totp_rs::Secret::Encoded(secret["secret"].as_str().unwrap().into())
        .to_bytes()
        .unwrap();
    let code = fortfolio::security::totp::code_at(&bytes, chrono::Utc::now().timestamp() as u64);
    let r = app.post("/auth/2fa/verify", json!({"code": code}), Some(&access)).await;
    assert_eq!(r.status(), 200);
    let mails = sink.wait_for_alerts(3, 10).await;
    assert!(subject(&mails[2]).contains("Two-factor authentication was turned on"));

    for _ in 0..5 {
        login_as(&app, "sa@example.com", "not-the-password-1", "attacker").await;
    }
    let mails = sink.wait_for_alerts(4, 10).await;
    assert_eq!(mails.len(), 4);
    assert!(subject(&mails[3]).contains("locked"), "{}", subject(&mails[3]));
    for m in &mails {
        assert!(m.contains("To: sa@example.com"), "{m}");
        for secret in [PASSWORD, new_pw, "not-the-password-1", &access] {
            assert!(!m.contains(secret), "mail leaks a secret");
        }
    }
    let logs = std::fs::read_to_string(app.data_dir().join("logs/security.log")).unwrap()
        + &std::fs::read_to_string(app.data_dir().join("logs/security.json")).unwrap();
    for secret in [PASSWORD, new_pw, "not-the-password-1", &access, &code] {
        assert!(!logs.contains(secret), "log leaks a secret");
    }
}

#[tokio::test]
async fn queued_alerts_survive_a_dead_smtp_server_and_a_restart() {
    let port = free_port();
    let mut app = TestApp::spawn_with(|c| smtp_to(c, port)).await;
    app.register("ta@example.com").await;
    for ua in ["ua-1", "ua-2"] {
        assert_eq!(login_as(&app, "ta@example.com", PASSWORD, ua).await.status(), 200);
    }
    // Nothing listens: the alerts wait in the outbox; restart in between.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    app.restart().await;
    assert_eq!(login_as(&app, "ta@example.com", PASSWORD, "ua-3").await.status(), 200);
    let sink = MailSink::start(port);
    let mails = sink.wait_for_alerts(3, 20).await;
    assert_eq!(mails.len(), 3, "{mails:?}");
    // Exactly once: nothing more arrives.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(sink.alerts().len(), 3);
}

#[tokio::test]
async fn events_are_logged_stored_and_queryable() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().to_path_buf();
    std::fs::write(logs.join("security.log.2020-01-01"), "old\n").unwrap();
    std::fs::write(logs.join("security.json.2020-01-01"), "old\n").unwrap();
    let l2 = logs.clone();
    let app = TestApp::spawn_with(move |c| c.logging.dir = l2).await;
    let a = app.register("ua@example.com").await;
    let b = app.register("ub@example.com").await;
    let a_access = token(&a, "access_token");
    problem(
        app.login("ua@example.com", "wrong-password-1").await,
        401,
        "invalid_credentials",
    )
    .await;
    problem(
        app.login("nobody@example.com", "wrong-password-1").await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        login_as(&app, "ua@example.com", PASSWORD, "second-agent")
            .await
            .status(),
        200
    );
    let r = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": token(&a, "refresh_token")}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    app.post("/auth/logout", json!({}), Some(&token(&b, "access_token")))
        .await;

    // Retention ran at start.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!logs.join("security.log.2020-01-01").exists());
    assert!(!logs.join("security.json.2020-01-01").exists());

    let json_lines = std::fs::read_to_string(logs.join("security.json")).unwrap();
    let text_lines = std::fs::read_to_string(logs.join("security.log")).unwrap();
    let parsed: Vec<Value> = json_lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(parsed.len(), text_lines.lines().count());
    for e in &parsed {
        for k in [
            "timestamp",
            "event",
            "outcome",
            "user_id",
            "email",
            "ip",
            "user_agent",
            "request_id",
            "details",
        ] {
            assert!(e.get(k).is_some(), "{k} missing in {e}");
        }
    }
    let kinds: Vec<&str> = parsed.iter().map(|e| e["event"].as_str().unwrap()).collect();
    for k in [
        "register",
        "login_failure",
        "login_success",
        "new_device_login",
        "token_refreshed",
        "logout",
    ] {
        assert!(kinds.contains(&k), "{k} not in {kinds:?}");
        assert!(
            text_lines.lines().any(|l| l.contains(&format!(" {k} "))),
            "{k} not in text log"
        );
    }
    let unknown = parsed
        .iter()
        .find(|e| e["event"] == "login_failure" && e["email"] == "nobody@example.com")
        .unwrap();
    assert_eq!(unknown["user_id"], Value::Null);
    assert!(unknown["request_id"].is_string());

    // The user's own events, newest first, never another user's.
    let r: Value = app
        .get("/me/security-events", Some(&a_access))
        .await
        .json()
        .await
        .unwrap();
    let items = r["items"].as_array().unwrap();
    let a_id = a["user"]["id"].as_str().unwrap();
    assert!(items.iter().all(|e| e["user_id"] == a_id));
    assert!(items.len() >= 4);
    let stamps: Vec<&str> = items.iter().map(|e| e["id"].as_str().unwrap()).collect();
    let mut sorted = stamps.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(stamps, sorted, "newest first");
    let page: Value = app
        .get("/me/security-events?limit=2", Some(&a_access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let page2: Value = app
        .get(&format!("/me/security-events?limit=2&cursor={cursor}"), Some(&a_access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["items"][0]["id"], items[2]["id"]);

    // The admin sees the same events.
    let d = app.data_dir().to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fortfolio"))
            .args([
                "admin",
                "events",
                "--user",
                "ua@example.com",
                "--json",
                "--data-dir",
                &d,
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let admin: Value = serde_json::from_slice(&out.stdout).unwrap();
    let admin_ids: Vec<&str> = admin
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(admin_ids, stamps);

    // Devices: registration's and the second agent's.
    let r: Value = app.get("/me/devices", Some(&a_access)).await.json().await.unwrap();
    assert_eq!(r["items"].as_array().unwrap().len(), 2, "{r}");
}

/// An email typed at a failed login is client text: it must stay inside its
/// own field of its own line, in the log files and in `fortfolio admin events`.
#[tokio::test]
async fn a_typed_email_cannot_forge_log_lines_or_terminal_output() {
    let app = TestApp::spawn().await;
    let forged = "ghost@example.com\n2026-01-01T00:00:00Z login_success outcome=success user_id=\"u1\" email=\"admin@example.com\"\r\u{85}\u{2028}\u{1b}[2J\u{1b}]0;owned\u{7}.";
    problem(app.login(forged, "wrong-password-1").await, 401, "invalid_credentials").await;

    let logs = app.data_dir().join("logs");
    let text = std::fs::read_to_string(logs.join("security.log")).unwrap();
    // The file opens with the chain's log_file_started line.
    let lines: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(lines.len(), 1, "{text:?}");
    assert_eq!(lines[0].split(' ').nth(1), Some("login_failure"), "{text:?}");
    assert!(
        lines[0].contains(r#"email="ghost@example.com\n2026-01-01T00:00:00Z"#),
        "{text:?}"
    );
    let json = std::fs::read_to_string(logs.join("security.json")).unwrap();
    for file in [&text, &json] {
        // One line per event, even for readers that also split at U+0085/U+2028.
        assert_eq!(file.matches('\n').count(), 2, "{file:?}");
        assert!(
            !file
                .lines()
                .any(|l| l.chars().any(|c| c.is_control() || c == '\u{2028}')),
            "{file:?}"
        );
    }
    let event: Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(event["email"], forged, "the JSON log keeps the exact text");

    let d = app.data_dir().to_str().unwrap().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fortfolio"))
            .args(["admin", "events", "--event", "login_failure", "--data-dir", &d])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert_eq!(table.lines().count(), 2, "header and one event: {table:?}");
    assert!(
        !table.contains('\u{1b}') && !table.contains('\r') && !table.contains('\u{7}'),
        "{table:?}"
    );
    assert!(
        table.contains(r"ghost@example.com\n2026-01-01T00:00:00Z login_success"),
        "{table:?}"
    );
}

#[tokio::test]
async fn alert_mails_have_a_message_id_a_utc_date_and_a_user_agent_that_is_no_link() {
    let (sink, port) = MailSink::start_any();
    let app = TestApp::spawn_with(|c| smtp_to(c, port)).await;
    app.register("ma@example.com").await;
    let ua = format!(
        "Mozilla/5.0 see https://evil.example/login {}END-OF-AGENT",
        "A".repeat(400)
    );
    assert_eq!(login_as(&app, "ma@example.com", PASSWORD, &ua).await.status(), 200);
    let mails = sink.wait_for_alerts(1, 10).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    let head = mail.split("\r\n\r\n").next().unwrap();
    let header = |name: &str| -> Vec<&str> { head.lines().filter_map(|h| h.strip_prefix(name)).collect() };

    let ids = header("Message-ID: ");
    assert_eq!(ids.len(), 1, "{head}");
    let id = ids[0]
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix("@localhost>"))
        .unwrap_or_else(|| panic!("Message-ID not <uuid@smtp.from domain>: {}", ids[0]));
    uuid::Uuid::parse_str(id).unwrap();
    let dates = header("Date: ");
    assert_eq!(dates.len(), 1, "{head}");
    assert!(dates[0].ends_with(" +0000"), "not UTC: {}", dates[0]);
    let sent = chrono::DateTime::parse_from_rfc2822(dates[0]).unwrap();
    assert!((chrono::Utc::now() - sent.to_utc()).num_seconds().abs() < 60);

    let body = unquote_printable(mail);
    assert!(!body.contains("END-OF-AGENT"), "the User-Agent is cut");
    assert!(
        body.contains("User-Agent reported by the browser: Mozilla/5.0 see https://evil.example/login AAA"),
        "{body}"
    );
    assert!(
        body.contains("<code>Mozilla/\u{200b}5.\u{200b}0 see https:\u{200b}/\u{200b}/\u{200b}evil.\u{200b}example"),
        "{body}"
    );
    assert_eq!(
        body.matches("https://evil.example").count(),
        1,
        "only the text part shows it as written: {body}"
    );
}
