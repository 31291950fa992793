use base64::Engine;
use serde_json::{json, Value};

use crate::helpers::{problem, token, TestApp, PASSWORD};

fn secret_bytes(b32: &str) -> Vec<u8> {
    totp_rs::Secret::Encoded(b32.to_string()).to_bytes().unwrap()
}

fn code(b32: &str, offset_steps: i64) -> String {
    let now = chrono::Utc::now().timestamp() + offset_steps * 30;
    fortfolio::security::totp::code_at(&secret_bytes(b32), now as u64)
}

/// Enables 2FA: the secret, the backup codes and the code that verified
/// the enrolment (spent from then on).
async fn enrol(app: &TestApp, access: &str) -> (String, Vec<String>, String) {
    let r = app
        .post("/auth/2fa/enable", json!({"password": PASSWORD}), Some(access))
        .await;
    assert_eq!(r.status(), 200);
    let e: Value = r.json().await.unwrap();
    let secret = e["secret"].as_str().unwrap().to_string();
    let uri = e["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/fortfolio:"));
    assert!(uri.contains(&format!("secret={secret}")));
    let png = e["qr_png"]
        .as_str()
        .unwrap()
        .strip_prefix("data:image/png;base64,")
        .unwrap();
    let png = base64::engine::general_purpose::STANDARD.decode(png).unwrap();
    assert_eq!(&png[1..4], b"PNG");
    assert!(e["qr_svg"].as_str().unwrap().contains("<svg"));
    // Not active before verify.
    let me: Value = app.get("/me", Some(access)).await.json().await.unwrap();
    assert_eq!(me["two_factor_enabled"], false);
    let r = app
        .post("/auth/2fa/verify", json!({"code": "000000"}), Some(access))
        .await;
    if code(&secret, 0) != "000000" {
        problem(r, 401, "invalid_2fa_code").await;
    }
    let spent = code(&secret, 0);
    let r = app.post("/auth/2fa/verify", json!({"code": spent}), Some(access)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["two_factor_enabled"], true);
    let codes: Vec<String> = v["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), 10);
    (secret, codes, spent)
}

async fn challenge(app: &TestApp, email: &str) -> String {
    let r = app.login(email, PASSWORD).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["two_factor_required"], true);
    assert_eq!(v["expires_in"], 300);
    assert!(v.get("access_token").is_none());
    token(&v, "challenge_token")
}

#[tokio::test]
async fn totp_login_with_replay_protection_and_single_use_challenges() {
    let app = TestApp::spawn().await;
    let reg = app.register("pa@example.com").await;
    let access = token(&reg, "access_token");
    let (secret, _, spent) = enrol(&app, &access).await;
    let r = app
        .post("/auth/2fa/enable", json!({"password": PASSWORD}), Some(&access))
        .await;
    problem(r, 409, "two_factor_already_enabled").await;

    let ch = challenge(&app, "pa@example.com").await;
    // The challenge is not an access token.
    problem(app.get("/me", Some(&ch)).await, 401, "unauthorized").await;
    // The verify step spent its code: the same code is a replay (sent as
    // spent, not recomputed: a 30 s step may have begun since).
    let r = app
        .post("/auth/login/2fa", json!({"challenge_token": ch, "code": spent}), None)
        .await;
    let body = problem(r, 401, "invalid_2fa_code").await;
    // The wrong code at enrolment counted too.
    assert_eq!(body["attempts_remaining"], 3, "a wrong code counts toward lockout");
    let r = app
        .post(
            "/auth/login/2fa",
            json!({"challenge_token": ch, "code": code(&secret, 1)}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert!(app.get("/me", Some(&token(&v, "access_token"))).await.status() == 200);
    // Reused challenge.
    let r = app
        .post(
            "/auth/login/2fa",
            json!({"challenge_token": ch, "code": code(&secret, 1)}),
            None,
        )
        .await;
    problem(r, 401, "challenge_expired").await;
    // Garbage challenge.
    let r = app
        .post(
            "/auth/login/2fa",
            json!({"challenge_token": "x.y.z", "code": "123456"}),
            None,
        )
        .await;
    problem(r, 401, "challenge_expired").await;
}

#[tokio::test]
async fn backup_codes_work_once_each_and_disable_needs_a_code() {
    let app = TestApp::spawn().await;
    let reg = app.register("qi@example.com").await;
    let access = token(&reg, "access_token");
    let (secret, codes, _) = enrol(&app, &access).await;
    for (i, c) in codes.iter().take(3).enumerate() {
        let ch = challenge(&app, "qi@example.com").await;
        let r = app
            .post(
                "/auth/2fa/backup-code",
                json!({"challenge_token": ch, "backup_code": c}),
                None,
            )
            .await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["backup_codes_remaining"], 9 - i);
        assert!(v["access_token"].is_string());
    }
    let ch = challenge(&app, "qi@example.com").await;
    let r = app
        .post(
            "/auth/2fa/backup-code",
            json!({"challenge_token": ch, "backup_code": codes[0]}),
            None,
        )
        .await;
    problem(r, 401, "invalid_backup_code").await;

    let r = app
        .post(
            "/auth/2fa/disable",
            json!({"password": PASSWORD, "code": "nope"}),
            Some(&access),
        )
        .await;
    problem(r, 401, "invalid_2fa_code").await;
    let r = app
        .post(
            "/auth/2fa/disable",
            json!({"password": PASSWORD, "code": codes[5]}),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app.login("qi@example.com", PASSWORD).await;
    let v: Value = r.json().await.unwrap();
    assert!(v["access_token"].is_string(), "after disable, login gives tokens: {v}");
    let r = app
        .post(
            "/auth/2fa/disable",
            json!({"password": PASSWORD, "code": code(&secret, 0)}),
            Some(&access),
        )
        .await;
    problem(r, 409, "two_factor_not_enabled").await;
}

#[tokio::test]
async fn secrets_are_encrypted_at_rest_and_admin_can_reset() {
    let mut app = TestApp::spawn().await;
    let reg = app.register("ro@example.com").await;
    let access = token(&reg, "access_token");
    let (secret, _, _) = enrol(&app, &access).await;
    app.stop().await;
    let db = std::fs::read(app.data_dir().join("fortfolio.redb")).unwrap();
    let raw = secret_bytes(&secret);
    assert!(
        !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "base32 secret in db"
    );
    assert!(!db.windows(raw.len()).any(|w| w == raw.as_slice()), "raw secret in db");
    let dir = app.data_dir().to_str().unwrap().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fortfolio"))
        .args(["admin", "user", "reset-2fa", "ro@example.com", "--data-dir", &dir])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    app.restart().await;
    let r = app.login("ro@example.com", PASSWORD).await;
    let v: Value = r.json().await.unwrap();
    assert!(v["access_token"].is_string());
}
