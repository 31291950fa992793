use std::process::{Command, Output};

use serde_json::{json, Value};

use crate::helpers::{problem, token, TestApp, PASSWORD};

fn fortfolio(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fortfolio"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn config_example_is_the_shipped_file() {
    let out = fortfolio(&["config", "example"], &[]);
    assert!(out.status.success());
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config.toml.example")).unwrap();
    assert_eq!(stdout(&out), shipped);
}

#[test]
fn config_check_redacts_and_invalid_config_names_the_key() {
    let secret = "s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t-42";
    let out = fortfolio(
        &["config", "check"],
        &[
            ("FORTFOLIO_AUTH__JWT_SECRET", secret),
            ("FORTFOLIO_SMTP__PASSWORD", "mail-pass-99"),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    assert!(text.contains("[server]"));
    assert!(!text.contains(secret) && !text.contains("mail-pass-99"));

    let dir = tempfile::tempdir().unwrap();
    let out = fortfolio(
        &["serve", "--data-dir", dir.path().to_str().unwrap()],
        &[("FORTFOLIO_SERVER__TLS", "maybe")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("server.tls"), "{err}");
}

#[test]
fn config_check_shows_no_password_token_or_key_of_any_url() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        r#"
[storage]
postgres_url = "postgres://app:pg-pass-111@db.example:5432/fortfolio?sslmode=require&password=pg-pass-222"

[state]
redis_url = "redis://:redis-pass-333@cache.example:6379/0?token=redis-token-444"

[market]
news_feeds = ["https://reader:feed-pass-555@feeds.example/rss?apikey=feed-key-666&lang=en"]
price_provider = "https://quotes.example/v1/{symbol}?api_key=quote-key-777&format=json"
"#,
    )
    .unwrap();
    let out = fortfolio(&["config", "check", "--config", file.to_str().unwrap()], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out) + &String::from_utf8_lossy(&out.stderr);
    for secret in [
        "pg-pass-111",
        "pg-pass-222",
        "redis-pass-333",
        "redis-token-444",
        "feed-pass-555",
        "feed-key-666",
        "quote-key-777",
    ] {
        assert!(!text.contains(secret), "secret {secret} shown: {text}");
    }
    for shown in [
        "postgres://app:***@db.example:5432/fortfolio?sslmode=require&password=***",
        "redis://:***@cache.example:6379/0?token=***",
        "https://reader:***@feeds.example/rss?apikey=***&lang=en",
        "https://quotes.example/v1/{symbol}?api_key=***&format=json",
    ] {
        assert!(text.contains(shown), "{shown} not in {text}");
    }

    // A secret given with the wrong type is named, not echoed.
    for (config, key) in [
        ("[auth]\njwt_secret = 987654321098765432\n", "auth.jwt_secret"),
        ("[smtp]\npassword = 987654321098765432\n", "smtp.password"),
        (
            "[market]\nnews_feeds = \"https://u:987654321098765432@feeds.example/\"\n",
            "market.news_feeds",
        ),
    ] {
        std::fs::write(&file, config).unwrap();
        let out = fortfolio(&["config", "check", "--config", file.to_str().unwrap()], &[]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(key) && !err.contains("987654321098765432"), "{err}");
    }
}

#[tokio::test]
async fn admin_commands_work_with_the_server_running_and_stopped() {
    let mut app = TestApp::spawn().await;
    let reg = app.register("jo@example.com").await;
    let access = token(&reg, "access_token");
    let dir = app.data_dir();
    let dir = dir.to_str().unwrap().to_string();

    // Running: over the admin socket.
    let d = dir.clone();
    let out =
        tokio::task::spawn_blocking(move || fortfolio(&["admin", "user", "list", "--json", "--data-dir", &d], &[]))
            .await
            .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let users: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users[0]["email"], "jo@example.com");
    assert_eq!(users[0]["disabled"], false);

    let d = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        fortfolio(&["admin", "user", "disable", "jo@example.com", "--data-dir", &d], &[])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        app.get("/me", Some(&access)).await.status(),
        401,
        "live token stops working"
    );
    problem(app.login("jo@example.com", PASSWORD).await, 403, "account_disabled").await;

    // Stopped: the data dir is opened directly.
    app.stop().await;
    let d = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        let out = fortfolio(&["admin", "user", "enable", "jo@example.com", "--data-dir", &d], &[]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let created = Command::new(env!("CARGO_BIN_EXE_fortfolio"))
            .args([
                "admin",
                "user",
                "create",
                "--email",
                "root@example.com",
                "--role",
                "admin",
                "--data-dir",
                &d,
            ])
            .output()
            .unwrap();
        assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
        assert!(String::from_utf8_lossy(&created.stdout).contains("password (shown once)"));
        fortfolio(&["admin", "user", "list", "--json", "--data-dir", &d], &[])
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let users: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 2);
    assert_eq!(users[0]["disabled"], false);
    assert_eq!(users[1]["role"], "admin");

    app.restart().await;
    assert_eq!(app.login("jo@example.com", PASSWORD).await.status(), 200);
    let r = app.login("jo@example.com", PASSWORD).await;
    let access: Value = r.json().await.unwrap();
    let access = token(&access, "access_token");
    let d = dir.clone();
    let out = tokio::task::spawn_blocking(move || {
        fortfolio(
            &["admin", "sessions", "revoke", "jo@example.com", "--data-dir", &d],
            &[],
        )
    })
    .await
    .unwrap();
    assert!(out.status.success());
    assert_eq!(app.get("/me", Some(&access)).await.status(), 401);
    let r = app.post("/auth/logout", json!({}), Some(&access)).await;
    assert_eq!(r.status(), 401);
}

/// Scaled mode refuses to start, in one line naming the problem and with
/// nothing written to the data dir: without the keys every instance must
/// share, and when the database cannot be reached.
#[test]
fn scaled_mode_refuses_to_start_without_shared_keys_or_a_database() {
    let shared_keys = [
        ("FORTFOLIO_AUTH__JWT_SECRET", "0123456789abcdef0123456789abcdef-shared"),
        (
            "FORTFOLIO_AUTH__TOTP_KEY",
            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ),
    ];
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[], "auth.jwt_secret"),
        (&shared_keys[..1], "auth.totp_key"),
        (&shared_keys, "storage: storage unavailable"),
    ];
    for (extra, named) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut env = vec![
            ("FORTFOLIO_STORAGE__BACKEND", "postgres"),
            // Nothing listens on port 1: refused at once.
            ("FORTFOLIO_STORAGE__POSTGRES_URL", "postgres://fortfolio@127.0.0.1:1/x"),
            ("FORTFOLIO_SERVER__BIND", "127.0.0.1:0"),
        ];
        env.extend_from_slice(extra);
        let out = fortfolio(&["serve", "--data-dir", dir.path().to_str().unwrap()], &env);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(named), "{err}");
        let created: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            created.is_empty(),
            "nothing is created, not even TLS files: {created:?}"
        );
    }
}

#[test]
fn version_names_the_commit_and_build_date() {
    let out = fortfolio(&["--version"], &[]);
    assert!(out.status.success());
    let text = stdout(&out);
    let re =
        regex::Regex::new(r"^fortfolio \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}|unknown), built \d{4}-\d{2}-\d{2}\)\n$")
            .unwrap();
    assert!(re.is_match(&text), "{text}");
}

#[test]
fn completions_are_valid_bash_and_name_every_command() {
    let out = fortfolio(&["completions", "bash"], &[]);
    assert!(out.status.success());
    let script = stdout(&out);
    for word in [
        "serve",
        "admin",
        "health",
        "completions",
        "reset-2fa",
        "--password-stdin",
    ] {
        assert!(script.contains(word), "{word}");
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("fortfolio.bash");
    std::fs::write(&file, &script).unwrap();
    let check = Command::new("bash").arg("-n").arg(&file).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    assert!(fortfolio(&["completions", "zsh"], &[]).status.success());
    assert!(!fortfolio(&["completions", "tcsh"], &[]).status.success());
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    // `fortfolio openapi | head -c 1`: the pipe closes after one byte.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fortfolio"))
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    std::io::Read::read_exact(child.stdout.as_mut().unwrap(), &mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(&first, b"{");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn health_exits_zero_while_the_server_is_ready_and_one_when_it_is_not() {
    let mut app = TestApp::spawn().await;
    let base = app.base.trim_end_matches("/api/v1").to_string();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            fortfolio(&args, &[])
        })
    };
    let out = run(vec!["health".into(), "--url".into(), base.clone()]).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout(&out);
    assert!(
        line.starts_with("healthy: fortfolio ") && line.contains("storage embedded"),
        "{line}"
    );

    let out = run(vec!["health".into(), "--url".into(), base.clone(), "--json".into()])
        .await
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["healthy"], true);
    assert_eq!(report["ready"][1]["status"], "ready");

    // From the configuration: bind and tls of the data dir's server.
    let dir = app.data_dir().to_string_lossy().into_owned();
    let bind = base
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .to_string();
    let tls = if base.starts_with("https") {
        "self-signed"
    } else {
        "off"
    };
    let out = tokio::task::spawn_blocking(move || {
        fortfolio(
            &["health", "--data-dir", &dir],
            &[("FORTFOLIO_SERVER__BIND", &bind), ("FORTFOLIO_SERVER__TLS", tls)],
        )
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        stdout(&out),
        String::from_utf8_lossy(&out.stderr)
    );

    app.stop().await;
    let out = run(vec![
        "health".into(),
        "--url".into(),
        base.clone(),
        "--timeout".into(),
        "2".into(),
    ])
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with(&format!("unhealthy: {base}: ")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn the_container_config_is_valid_and_serves_plain_http_for_a_proxy() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/container.toml");
    let out = fortfolio(&["config", "check", "--config", file], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = stdout(&out);
    for line in [
        "bind = \"0.0.0.0:8080\"",
        "tls = \"off\"",
        "data_dir = \"/var/lib/fortfolio\"",
    ] {
        assert!(text.contains(line), "{line}");
    }
    assert!(String::from_utf8_lossy(&out.stderr).contains("container.toml"));
}
