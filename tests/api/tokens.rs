use base64::Engine;
use fortfolio::security::jwt::{JwtKeys, TokenType};
use serde_json::{json, Value};

use crate::helpers::{problem, token, TestApp, PASSWORD};

#[tokio::test]
async fn refresh_rotates_and_detects_reuse() {
    let app = TestApp::spawn().await;
    let first = app.register("gi@example.com").await;
    let other: Value = app.login("gi@example.com", PASSWORD).await.json().await.unwrap();
    let old_refresh = token(&first, "refresh_token");

    let r = app
        .post("/auth/refresh", json!({"refresh_token": old_refresh}), None)
        .await;
    assert_eq!(r.status(), 200);
    let pair: Value = r.json().await.unwrap();
    let new_access = token(&pair, "access_token");
    let new_refresh = token(&pair, "refresh_token");
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(app.get("/me", Some(&new_access)).await.status(), 200);

    let r = app
        .post("/auth/refresh", json!({"refresh_token": old_refresh}), None)
        .await;
    problem(r, 401, "refresh_token_reused").await;
    // The whole session is dead: its new pair too.
    assert_eq!(app.get("/me", Some(&new_access)).await.status(), 401);
    let r = app
        .post("/auth/refresh", json!({"refresh_token": new_refresh}), None)
        .await;
    assert_eq!(r.status(), 401);
    // Other sessions of the user are untouched.
    assert_eq!(app.get("/me", Some(&token(&other, "access_token"))).await.status(), 200);
    let r = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": token(&other, "refresh_token")}),
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn logout_survives_restart_and_logout_all_ends_everything() {
    let mut app = TestApp::spawn().await;
    let s1 = app.register("ha@example.com").await;
    let s2: Value = app.login("ha@example.com", PASSWORD).await.json().await.unwrap();
    let s3: Value = app.login("ha@example.com", PASSWORD).await.json().await.unwrap();
    let a1 = token(&s1, "access_token");

    let r = app.post("/auth/logout", json!({}), Some(&a1)).await;
    assert_eq!(r.status(), 200);
    problem(app.get("/me", Some(&a1)).await, 401, "unauthorized").await;
    let r = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": token(&s1, "refresh_token")}),
            None,
        )
        .await;
    assert_eq!(r.status(), 401);

    app.restart().await;
    problem(app.get("/me", Some(&a1)).await, 401, "unauthorized").await;
    let a2 = token(&s2, "access_token");
    assert_eq!(app.get("/me", Some(&a2)).await.status(), 200, "others survive restart");

    let r = app.post("/auth/logout-all", json!({}), Some(&a2)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/me", Some(&a2)).await.status(), 401);
    assert_eq!(app.get("/me", Some(&token(&s3, "access_token"))).await.status(), 401);
}

fn jwt_key(app: &TestApp) -> Vec<u8> {
    let hex_key = std::fs::read_to_string(app.data_dir().join("jwt.key")).unwrap();
    hex::decode(hex_key.trim()).unwrap()
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let reg = app.register("io@example.com").await;
    let access = token(&reg, "access_token");
    let refresh = token(&reg, "refresh_token");
    let user_id = reg["user"]["id"].as_str().unwrap().to_string();
    let claims_b64 = access.split('.').nth(1).unwrap().to_string();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;

    // alg: none
    let none = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), claims_b64);
    problem(app.get("/me", Some(&none)).await, 401, "unauthorized").await;
    // wrong signature
    let mut parts: Vec<&str> = access.split('.').collect();
    let bad_sig = b64.encode([0u8; 32]);
    parts[2] = &bad_sig;
    problem(app.get("/me", Some(&parts.join("."))).await, 401, "unauthorized").await;
    // HS512 with the right key
    let sid: Value = serde_json::from_slice(&b64.decode(&claims_b64).unwrap()).unwrap();
    let hs512 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS512),
        &sid,
        &jsonwebtoken::EncodingKey::from_secret(&jwt_key(&app)),
    )
    .unwrap();
    problem(app.get("/me", Some(&hs512)).await, 401, "unauthorized").await;
    // expired, correctly signed
    let keys = JwtKeys::new(&jwt_key(&app), "fortfolio");
    let sid = sid["sid"].as_str().unwrap();
    let (expired, _) = keys
        .issue(TokenType::Access, &user_id, Some(sid), chrono::Duration::seconds(-1))
        .unwrap();
    problem(app.get("/me", Some(&expired)).await, 401, "unauthorized").await;
    // the same, unexpired, proves the key is right
    let (fresh, _) = keys
        .issue(TokenType::Access, &user_id, Some(sid), chrono::Duration::seconds(60))
        .unwrap();
    assert_eq!(app.get("/me", Some(&fresh)).await.status(), 200);
    // refresh as access, access as refresh, device as access
    problem(app.get("/me", Some(&refresh)).await, 401, "unauthorized").await;
    let r = app.post("/auth/refresh", json!({"refresh_token": access}), None).await;
    problem(r, 401, "unauthorized").await;
    problem(
        app.get("/me", Some(&token(&reg, "device_token"))).await,
        401,
        "unauthorized",
    )
    .await;
    problem(app.get("/me", Some("garbage")).await, 401, "unauthorized").await;
}
