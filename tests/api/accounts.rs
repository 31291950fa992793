use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{problem, token, TestApp, PASSWORD};

#[tokio::test]
async fn register_validates_and_refuses_duplicates() {
    let app = TestApp::spawn().await;
    let body = app.register("Ann@Example.COM").await;
    assert_eq!(body["user"]["email"], "Ann@example.com");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    for key in ["access_token", "refresh_token", "device_token"] {
        assert!(body[key].is_string(), "{key}");
    }
    let dup = app
        .post(
            "/auth/register",
            json!({"email": "ann@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    problem(dup, 409, "email_taken").await;
    let weak = app
        .post(
            "/auth/register",
            json!({"email": "bo@example.com", "password": "password"}),
            None,
        )
        .await;
    problem(weak, 422, "weak_password").await;
    let weak = app
        .post(
            "/auth/register",
            json!({"email": "bo@example.com", "password": "password1234"}),
            None,
        )
        .await;
    let body = problem(weak, 422, "weak_password").await;
    assert!(body["suggestions"].is_array());
    let bad = app
        .post(
            "/auth/register",
            json!({"email": "not-an-email", "password": PASSWORD}),
            None,
        )
        .await;
    let body = problem(bad, 422, "validation_failed").await;
    assert_eq!(body["field"], "email");
}

#[tokio::test]
async fn login_failures_do_not_reveal_accounts() {
    let app = TestApp::spawn().await;
    app.register("cy@example.com").await;
    let ok = app.login("cy@example.com", PASSWORD).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body: serde_json::Value = ok.json().await.unwrap();
    assert!(body["access_token"].is_string());
    assert!(body["user"]["last_login_at"].is_string());

    let wrong = problem(
        app.login("cy@example.com", "wrong-password-here").await,
        401,
        "invalid_credentials",
    )
    .await;
    let unknown = problem(
        app.login("nobody@example.com", "wrong-password-here").await,
        401,
        "invalid_credentials",
    )
    .await;
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(keys(&wrong), keys(&unknown));
    assert_eq!(wrong["detail"], unknown["detail"]);
    assert_eq!(wrong["attempts_remaining"], unknown["attempts_remaining"]);
}

#[tokio::test]
async fn me_can_be_read_and_patched() {
    let app = TestApp::spawn().await;
    let reg = app.register("di@example.com").await;
    let access = token(&reg, "access_token");
    let me: serde_json::Value = app.get("/me", Some(&access)).await.json().await.unwrap();
    assert_eq!(me["email"], "di@example.com");
    let r = app
        .client
        .patch(app.url("/me"))
        .bearer_auth(&access)
        .json(&json!({"full_name": "Di Ng"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: serde_json::Value = r.json().await.unwrap();
    assert_eq!(me["full_name"], "Di Ng");
    let r = app
        .client
        .patch(app.url("/me"))
        .bearer_auth(&access)
        .json(&json!({"email": "x@example.com"}))
        .send()
        .await
        .unwrap();
    problem(r, 422, "validation_failed").await;
    assert_eq!(app.get("/me", None).await.status(), 401);
}

#[tokio::test]
async fn password_change_ends_other_sessions() {
    let app = TestApp::spawn().await;
    let first = app.register("ed@example.com").await;
    let second: serde_json::Value = app.login("ed@example.com", PASSWORD).await.json().await.unwrap();
    let a1 = token(&first, "access_token");
    let a2 = token(&second, "access_token");
    let new_pw = "quartz-meadow-lantern-77";
    let r = app
        .post(
            "/me/password",
            json!({"current_password": PASSWORD, "new_password": new_pw}),
            Some(&a2),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/me", Some(&a1)).await.status(), 401, "other session ended");
    assert_eq!(app.get("/me", Some(&a2)).await.status(), 200, "current session kept");
    let r = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": token(&first, "refresh_token")}),
            None,
        )
        .await;
    assert_eq!(r.status(), 401);
    assert_eq!(app.login("ed@example.com", new_pw).await.status(), 200);
    problem(app.login("ed@example.com", PASSWORD).await, 401, "invalid_credentials").await;
    let r = app
        .post(
            "/me/password",
            json!({"current_password": "not-the-password", "new_password": "quartz-meadow-lantern-78"}),
            Some(&a2),
        )
        .await;
    problem(r, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn sessions_are_listed_and_revocable() {
    let app = TestApp::spawn().await;
    let first = app.register("fa@example.com").await;
    let second: serde_json::Value = app.login("fa@example.com", PASSWORD).await.json().await.unwrap();
    let a1 = token(&first, "access_token");
    let a2 = token(&second, "access_token");
    let list: serde_json::Value = app.get("/me/sessions", Some(&a1)).await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(list["next_cursor"], serde_json::Value::Null);
    assert_eq!(items.iter().filter(|s| s["current"] == true).count(), 1);
    let other = items.iter().find(|s| s["current"] == false).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let page: serde_json::Value = app.get("/me/sessions?limit=1", Some(&a1)).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_string());
    let r = app
        .client
        .delete(app.url(&format!("/me/sessions/{other}")))
        .bearer_auth(&a1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(app.get("/me", Some(&a2)).await.status(), 401);
    assert_eq!(app.get("/me", Some(&a1)).await.status(), 200);
    // Someone else's (or an unknown) session is not found.
    let r = app
        .client
        .delete(app.url("/me/sessions/nope"))
        .bearer_auth(&a1)
        .send()
        .await
        .unwrap();
    problem(r, 404, "not_found").await;
}
