//! The account lifecycle (SPEC §12) against a real SMTP server on loopback:
//! verification, password reset (with 2FA), email change, and the
//! tamper-evident log through the CLI.

use serde_json::{json, Value};

use crate::helpers::{problem, smtp_to, token, unquote_printable, MailSink, TestApp, PASSWORD};

const NEW_PASSWORD: &str = "quartz-meadow-lantern-77";

fn subject(mail: &str) -> &str {
    mail.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("")
}

/// The mail with this subject (waiting up to 10 s for it).
async fn mail_with(sink: &MailSink, subject_has: &str) -> String {
    for _ in 0..100 {
        if let Some(m) = sink.all().into_iter().find(|m| subject(m).contains(subject_has)) {
            return m;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "no mail about {subject_has:?}: {:?}",
        sink.all().iter().map(|m| subject(m)).collect::<Vec<_>>()
    );
}

/// The token at the end of a mailed link to the console page `route`.
fn token_in(mail: &str, route: &str) -> String {
    let text = unquote_printable(mail);
    let marker = format!("#/{route}/");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no {marker} link in {text}"))
        + marker.len();
    let token: String = text[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    assert_eq!(token.len(), 43, "256 bits, base64url: {token}");
    token
}

async fn with_mail(tweak: impl FnOnce(&mut fortfolio::config::Config)) -> (TestApp, MailSink) {
    let (sink, port) = MailSink::start_any();
    let app = TestApp::spawn_with(|c| {
        smtp_to(c, port);
        tweak(c);
    })
    .await;
    (app, sink)
}

#[tokio::test]
async fn a_verification_link_proves_the_address_once() {
    let (app, sink) = with_mail(|_| {}).await;
    let reg = app.register("va@example.com").await;
    let access = token(&reg, "access_token");
    assert_eq!(reg["user"]["email_verified"], false);
    let mail = mail_with(&sink, "Confirm your fortfolio email address").await;
    assert!(mail.contains("To: va@example.com"));
    let t = token_in(&mail, "verify-email");
    let r = app.post("/auth/verify-email", json!({"token": t}), None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body, json!({"email": "va@example.com", "email_verified": true}));
    problem(
        app.post("/auth/verify-email", json!({"token": t}), None).await,
        400,
        "invalid_token",
    )
    .await;
    problem(
        app.post("/auth/verify-email", json!({"token": "x".repeat(43)}), None)
            .await,
        400,
        "invalid_token",
    )
    .await;
    let me: Value = app.get("/me", Some(&access)).await.json().await.unwrap();
    assert_eq!(me["email_verified"], true);
    // A verified address is sent nothing more; the answer is the same.
    let r = app
        .post("/auth/verify-email/resend", json!({"email": "va@example.com"}), None)
        .await;
    assert_eq!(r.status(), 202);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.all().len(), 1);
    // No token in any log line.
    let logs = std::fs::read_to_string(app.data_dir().join("logs/security.log")).unwrap()
        + &std::fs::read_to_string(app.data_dir().join("logs/security.json")).unwrap();
    assert!(!logs.contains(&t), "a log line holds the token");
}

#[tokio::test]
async fn unverified_accounts_reach_only_me_when_verification_is_required() {
    let (app, sink) = with_mail(|c| c.auth.require_email_verification = true).await;
    let reg = app.register("vb@example.com").await;
    let access = token(&reg, "access_token");
    problem(app.get("/portfolio", Some(&access)).await, 403, "email_not_verified").await;
    assert_eq!(app.get("/me", Some(&access)).await.status(), 200);
    let t = token_in(&mail_with(&sink, "Confirm your fortfolio").await, "verify-email");
    assert_eq!(
        app.post("/auth/verify-email", json!({"token": t}), None).await.status(),
        200
    );
    let r = app.get("/portfolio", Some(&access)).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

#[tokio::test]
async fn a_password_reset_ends_every_session_and_works_once() {
    let (app, sink) = with_mail(|_| {}).await;
    let reg = app.register("ra@example.com").await;
    let (access, refresh) = (token(&reg, "access_token"), token(&reg, "refresh_token"));
    let known = app
        .post("/auth/password-reset/request", json!({"email": "ra@example.com"}), None)
        .await;
    let unknown = app
        .post(
            "/auth/password-reset/request",
            json!({"email": "nobody@example.com"}),
            None,
        )
        .await;
    assert_eq!(
        (known.status(), unknown.status()),
        (reqwest::StatusCode::ACCEPTED, reqwest::StatusCode::ACCEPTED)
    );
    let (a, b): (Value, Value) = (known.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(a, b, "the same body for a known and an unknown address");
    let mail = mail_with(&sink, "Reset your fortfolio password").await;
    assert!(mail.contains("To: ra@example.com"));
    let t = token_in(&mail, "reset-password");

    let weak = app
        .post(
            "/auth/password-reset/confirm",
            json!({"token": t, "new_password": "password1234"}),
            None,
        )
        .await;
    problem(weak, 422, "weak_password").await;
    let r = app
        .post(
            "/auth/password-reset/confirm",
            json!({"token": t, "new_password": NEW_PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200, "a refused password leaves the link usable");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["sessions_ended"], 1);
    problem(app.get("/me", Some(&access)).await, 401, "unauthorized").await;
    let r = app.post("/auth/refresh", json!({"refresh_token": refresh}), None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.login("ra@example.com", NEW_PASSWORD).await.status(), 200);
    problem(app.login("ra@example.com", PASSWORD).await, 401, "invalid_credentials").await;
    problem(
        app.post(
            "/auth/password-reset/confirm",
            json!({"token": t, "new_password": "another-fine-phrase-93"}),
            None,
        )
        .await,
        400,
        "invalid_token",
    )
    .await;
    mail_with(&sink, "password was reset").await;
    assert!(
        sink.all().iter().all(|m| !m.contains("nobody@example.com")),
        "no mail to an unknown address"
    );
}

#[tokio::test]
async fn a_reset_never_bypasses_two_factor() {
    let (app, sink) = with_mail(|_| {}).await;
    let reg = app.register("rb@example.com").await;
    let access = token(&reg, "access_token");
    let secret: Value = app
        .post("/auth/2fa/enable", json!({"password": PASSWORD}), Some(&access))
        .await
        .json()
        .await
        .unwrap();
    let bytes = totp_rs::Secret::Encoded(secret["secret"].as_str().unwrap().into())
        .to_bytes()
        .unwrap();
    let code_at = |t: i64| fortfolio::security::totp::code_at(&bytes, t as u64);
    let now = chrono::Utc::now().timestamp();
    let r = app
        .post("/auth/2fa/verify", json!({"code": code_at(now - 30)}), Some(&access))
        .await;
    assert_eq!(r.status(), 200);
    app.post("/auth/password-reset/request", json!({"email": "rb@example.com"}), None)
        .await;
    let t = token_in(&mail_with(&sink, "Reset your").await, "reset-password");
    let confirm = |code: Option<String>| {
        let mut body = json!({"token": t, "new_password": NEW_PASSWORD});
        if let Some(c) = code {
            body["code"] = json!(c);
        }
        app.post("/auth/password-reset/confirm", body, None)
    };
    problem(confirm(None).await, 401, "invalid_2fa_code").await;
    let wrong = if code_at(now) == "000000" { "111111" } else { "000000" };
    problem(confirm(Some(wrong.into())).await, 401, "invalid_2fa_code").await;
    assert_eq!(confirm(Some(code_at(now))).await.status(), 200);
    assert_eq!(app.login("rb@example.com", NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn without_smtp_the_admin_hands_out_the_reset_link() {
    let app = TestApp::spawn().await;
    app.register("rc@example.com").await;
    problem(
        app.post("/auth/password-reset/request", json!({"email": "rc@example.com"}), None)
            .await,
        503,
        "email_unavailable",
    )
    .await;
    let out = cli(&app, &["admin", "user", "reset-password", "rc@example.com"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let t = token_in(&text, "reset-password");
    let r = app
        .post(
            "/auth/password-reset/confirm",
            json!({"token": t, "new_password": NEW_PASSWORD}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.login("rc@example.com", NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn an_email_change_takes_effect_on_confirmation_and_can_be_cancelled() {
    let (app, sink) = with_mail(|_| {}).await;
    let reg = app.register("ca@example.com").await;
    let access = token(&reg, "access_token");
    problem(
        app.post(
            "/me/email",
            json!({"new_email": "cb@example.com", "password": "not-the-password"}),
            Some(&access),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    let r = app
        .post(
            "/me/email",
            json!({"new_email": "cb@example.com", "password": PASSWORD}),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), 202);
    let confirm = mail_with(&sink, "Confirm your new fortfolio email address").await;
    assert!(confirm.contains("To: cb@example.com"));
    let alert = mail_with(&sink, "about to change").await;
    assert!(alert.contains("To: ca@example.com"));
    assert!(unquote_printable(&alert).contains("cb@example.com"));
    assert_eq!(
        app.login("ca@example.com", PASSWORD).await.status(),
        200,
        "the old address signs in until the change is confirmed"
    );
    let r = app
        .post(
            "/auth/confirm-email",
            json!({"token": token_in(&confirm, "confirm-email")}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.login("cb@example.com", PASSWORD).await.status(), 200);
    problem(app.login("ca@example.com", PASSWORD).await, 401, "invalid_credentials").await;
    let changed = mail_with(&sink, "address was changed").await;
    assert!(changed.contains("To: ca@example.com"), "the old address is told");

    // The old address's cancel link moves the account back.
    let r = app
        .post(
            "/auth/cancel-email-change",
            json!({"token": token_in(&alert, "cancel-email-change")}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["email"], "ca@example.com");
    problem(app.get("/me", Some(&access)).await, 401, "unauthorized").await;
    assert_eq!(app.login("ca@example.com", PASSWORD).await.status(), 200);
}

async fn cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    let (dir, args) = (app.data_dir(), args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_fortfolio"))
            .args(&args)
            .arg("--data-dir")
            .arg(dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn admin_events_verify_finds_an_edited_log_line() {
    let app = TestApp::spawn().await;
    app.register("ea@example.com").await;
    app.login("ea@example.com", "wrong-password-1").await;
    let out = cli(&app, &["admin", "events", "verify", "--files"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok: every link holds"));
    let path = app.data_dir().join("logs/security.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("login_failure", "login_success", 1)).unwrap();
    let out = cli(&app, &["admin", "events", "verify", "--files"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("security.json line") && err.contains("edited"), "{err}");
}
