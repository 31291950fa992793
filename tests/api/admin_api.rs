//! The admin API over TCP (SPEC §11): role read from the store on every
//! request, recent authentication for actions, events naming the admin.

use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{problem, token, TestApp, PASSWORD};

/// `fortfolio admin user set-role EMAIL ROLE` against the running server.
async fn set_role(app: &TestApp, email: &str, role: &str) {
    let (dir, email, role) = (app.data_dir(), email.to_string(), role.to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_fortfolio"))
            .args(["admin", "user", "set-role", &email, &role, "--data-dir"])
            .arg(&dir)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("is now"));
}

/// Proves boss's password again: each block of actions below starts fresh
/// (the window is 3 s and logins hash passwords).
async fn reauthenticate(app: &TestApp, access: &str) {
    let r = app
        .post("/auth/reauthenticate", json!({"password": PASSWORD}), Some(access))
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert!(body["fresh_until"].as_str().unwrap() > body["authenticated_at"].as_str().unwrap());
}

async fn events_of(app: &TestApp, access: &str, query: &str) -> Vec<Value> {
    let r = app.get(&format!("/admin/security-events?{query}"), Some(access)).await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    page["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn users_are_refused_and_admins_act_only_after_a_recent_authentication() {
    let app = TestApp::spawn_with(|c| {
        c.auth.reauth_max_age = fortfolio::config::Dur::parse("3s").unwrap();
    })
    .await;
    let alice = app.register("alice@example.com").await;
    let alice_id = alice["user"]["id"].as_str().unwrap().to_string();
    let alice_token = token(&alice, "access_token");
    let boss = app.register("boss@example.com").await;
    let boss_token = token(&boss, "access_token");
    let boss_id = boss["user"]["id"].as_str().unwrap().to_string();

    // A user is refused everywhere under /admin.
    let disable = format!("/admin/users/{alice_id}/disable");
    for path in ["/admin/users", "/admin/status", "/admin/security-events"] {
        problem(app.get(path, Some(&alice_token)).await, 403, "forbidden").await;
    }
    problem(
        app.post(&disable, json!({}), Some(&alice_token)).await,
        403,
        "forbidden",
    )
    .await;
    problem(app.get("/admin/users", None).await, 401, "unauthorized").await;

    // Promoted by the CLI: the token boss already holds now carries the role.
    set_role(&app, "boss@example.com", "admin").await;
    let r = app.get("/admin/users?limit=1", Some(&boss_token)).await;
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"][0]["email"], "alice@example.com");
    assert_eq!(page["items"][0]["locked"], false);
    let next = page["next_cursor"].as_str().unwrap();
    let r = app
        .get(&format!("/admin/users?limit=1&cursor={next}"), Some(&boss_token))
        .await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"][0]["role"], "admin");
    assert!(page["next_cursor"].is_null());
    let r = app.get("/admin/users?q=ALICE", Some(&boss_token)).await;
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let status: Value = app.get("/admin/status", Some(&boss_token)).await.json().await.unwrap();
    assert_eq!(
        (status["users"].as_u64(), status["sessions_active"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(status["storage"], "embedded");

    // The login is no longer recent: actions need a reauthentication.
    tokio::time::sleep(std::time::Duration::from_millis(3200)).await;
    let body = problem(
        app.post(&disable, json!({}), Some(&boss_token)).await,
        403,
        "reauthentication_required",
    )
    .await;
    assert!(body["authenticated_at"].is_string());
    assert_eq!(
        app.get("/me", Some(&alice_token)).await.status(),
        200,
        "nothing changed"
    );
    problem(
        app.post(
            "/auth/reauthenticate",
            json!({"password": "wrong-password-123"}),
            Some(&boss_token),
        )
        .await,
        401,
        "invalid_credentials",
    )
    .await;
    problem(
        app.post("/auth/reauthenticate", json!({"code": "123456"}), Some(&boss_token))
            .await,
        409,
        "two_factor_not_enabled",
    )
    .await;
    problem(
        app.post("/auth/reauthenticate", json!({}), Some(&boss_token)).await,
        422,
        "validation_failed",
    )
    .await;
    reauthenticate(&app, &boss_token).await;
    let r = app.post(&disable, json!({}), Some(&boss_token)).await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(
        (user["disabled"].as_bool(), user["id"].as_str()),
        (Some(true), Some(alice_id.as_str()))
    );
    assert_eq!(app.get("/me", Some(&alice_token)).await.status(), 401, "signed out");
    problem(app.login("alice@example.com", PASSWORD).await, 403, "account_disabled").await;

    // Both accounts' logs name the admin.
    let on_alice = events_of(&app, &boss_token, "user=alice@example.com&event=account_disabled").await;
    assert_eq!(on_alice.len(), 1);
    assert_eq!(on_alice[0]["details"]["actor"], "boss@example.com");
    assert_eq!(on_alice[0]["details"]["actor_id"], boss_id.as_str());
    let on_boss = events_of(&app, &boss_token, &format!("user={boss_id}&event=admin_action")).await;
    assert_eq!(on_boss[0]["details"]["action"], "account_disabled");
    assert_eq!(on_boss[0]["details"]["target_user_id"], alice_id.as_str());
    let own: Value = app
        .get("/me/security-events", Some(&boss_token))
        .await
        .json()
        .await
        .unwrap();
    assert!(own["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "admin_action"));

    // An admin cannot disable or demote themselves; 404 for no such user.
    let me = format!("/admin/users/{boss_id}");
    problem(
        app.post(&format!("{me}/disable"), json!({}), Some(&boss_token)).await,
        403,
        "forbidden",
    )
    .await;
    problem(
        app.post(&format!("{me}/role"), json!({"role": "user"}), Some(&boss_token))
            .await,
        403,
        "forbidden",
    )
    .await;
    problem(
        app.post("/admin/users/no-such-user/enable", json!({}), Some(&boss_token))
            .await,
        404,
        "not_found",
    )
    .await;

    // Enable, promote: alice's fresh login is an admin at once; demoted, not.
    reauthenticate(&app, &boss_token).await;
    let alice_path = format!("/admin/users/{alice_id}");
    assert_eq!(
        app.post(&format!("{alice_path}/enable"), json!({}), Some(&boss_token))
            .await
            .status(),
        200
    );
    let r = app
        .post(
            &format!("{alice_path}/role"),
            json!({"role": "admin"}),
            Some(&boss_token),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["role"], "admin");
    let login: Value = app.login("alice@example.com", PASSWORD).await.json().await.unwrap();
    let alice_token = token(&login, "access_token");
    assert_eq!(app.get("/admin/status", Some(&alice_token)).await.status(), 200);
    let r = app
        .post(
            &format!("{alice_path}/role"),
            json!({"role": "user"}),
            Some(&boss_token),
        )
        .await;
    assert_eq!(r.status(), 200);
    problem(app.get("/admin/status", Some(&alice_token)).await, 403, "forbidden").await;

    // Unlock lifts a lockout; revoke-sessions ends the live session.
    for _ in 0..5 {
        app.login("alice@example.com", "not-the-password-9").await;
    }
    problem(app.login("alice@example.com", PASSWORD).await, 423, "account_locked").await;
    reauthenticate(&app, &boss_token).await;
    let r = app
        .post(&format!("{alice_path}/unlock"), json!({}), Some(&boss_token))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["locked"], false);
    let login: Value = app.login("alice@example.com", PASSWORD).await.json().await.unwrap();
    let alice_token = token(&login, "access_token");
    reauthenticate(&app, &boss_token).await;
    let r = app
        .post(&format!("{alice_path}/revoke-sessions"), json!({}), Some(&boss_token))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/me", Some(&alice_token)).await.status(), 401);
    // Once more with nothing to end: still one event, on alice's timeline
    // without the admin's address (that is on the admin's own event).
    let r = app
        .post(&format!("{alice_path}/revoke-sessions"), json!({}), Some(&boss_token))
        .await;
    assert_eq!(r.status(), 200);
    let revoked = events_of(&app, &boss_token, "user=alice@example.com&event=session_revoked").await;
    let ended: Vec<&Value> = revoked.iter().map(|e| &e["details"]["sessions_ended"]).collect();
    // Two sessions: the logins after the promotion and after the unlock.
    assert_eq!(ended, [&json!(0), &json!(2)], "{revoked:?}");
    assert!(revoked.iter().all(|e| e["ip"].is_null()), "{revoked:?}");
    // The same role again changes nothing and records nothing.
    let r = app
        .post(
            &format!("{alice_path}/role"),
            json!({"role": "user"}),
            Some(&boss_token),
        )
        .await;
    assert_eq!(r.status(), 200);
    problem(
        app.post("/admin/users/a%00b/enable", json!({}), Some(&boss_token))
            .await,
        404,
        "not_found",
    )
    .await;
    let r = app
        .post(&format!("{alice_path}/reset-2fa"), json!({}), Some(&boss_token))
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["two_factor_enabled"], false);

    // Filters are checked.
    for bad in ["event=no_such_event", "since=yesterday", "limit=0", "cursor=zzz"] {
        let r = app
            .get(&format!("/admin/security-events?{bad}"), Some(&boss_token))
            .await;
        problem(r, 422, "validation_failed").await;
    }
    let recent = events_of(&app, &boss_token, "since=1h&event=role_changed").await;
    assert_eq!(recent.len(), 3, "{recent:?}");
}
