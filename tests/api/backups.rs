//! Backups as an operator meets them (issue 18): the binary writes,
//! verifies and restores; damaged files are refused in one line with
//! nothing left behind; encrypted files hide the keys; the schedule keeps
//! the newest few.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{token, TestApp, PASSWORD};

/// Runs the binary with `args`, feeding `stdin` when given.
fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fortfolio"));
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("binary runs");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// [`run`] off the async runtime (the server under test shares it).
async fn cli(args: &[&str], stdin: Option<&str>) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.map(str::to_string);
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, stdin.as_deref())
    })
    .await
    .unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file in a dir (recursively) with the SHA-256 of its bytes.
fn listing(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(listing(&path));
        } else {
            out.insert(path.clone(), hex::encode(Sha256::digest(std::fs::read(&path).unwrap())));
        }
    }
    out
}

/// A server with a user (2FA off), a position and a session; returns the
/// app, the access token and a plain backup of it.
async fn app_with_data(email: &str) -> (TestApp, String, PathBuf) {
    let app = TestApp::spawn().await;
    let reg = app.register(email).await;
    let access = token(&reg, "access_token");
    let r = app
        .post(
            "/portfolio/buy",
            json!({"symbol": "SPY", "quantity": "3", "price": "10"}),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), 201);
    let (backup, data_dir) = (app.data_dir().join("plain.backup"), app.data_dir());
    let out = cli(&["admin", "backup", s(&backup), "--data-dir", s(&data_dir)], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    (app, access, backup)
}

#[tokio::test]
async fn damaged_backups_are_refused_in_one_line_with_nothing_left_behind() {
    let (mut app, _, backup) = app_with_data("dmg@example.com").await;
    let good = std::fs::read(&backup).unwrap();
    let verify = cli(&["admin", "backup", "verify", s(&backup), "--json"], None).await;
    assert!(verify.status.success(), "{}", stderr(&verify));
    let manifest: Value = serde_json::from_slice(&verify.stdout).unwrap();
    assert_eq!(manifest["format"], 1);
    assert_eq!(manifest["encrypted"], false);
    assert_eq!(manifest["tables"]["users"], 1);
    assert_eq!(manifest["files"], json!(["jwt.key", "totp.key"]));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777, 0o600);
    let data_dir = app.data_dir();
    let out = cli(
        &[
            "admin",
            "events",
            "--event",
            "backup_written",
            "--json",
            "--data-dir",
            s(&data_dir),
        ],
        None,
    )
    .await;
    let events: Value = serde_json::from_slice(&out.stdout).unwrap();
    let events = events.get("items").unwrap_or(&events).as_array().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    let details = &events[0]["details"];
    assert_eq!(details["file"], s(&backup));
    assert_eq!(details["encrypted"], false);
    assert!(details["by"].as_str().unwrap().starts_with("cli:"), "{details}");
    let out = cli(&["admin", "restore", s(&backup), "--data-dir", s(&data_dir)], None).await;
    assert!(stderr(&out).contains("stop the server first"), "{}", stderr(&out));
    app.stop().await;

    // Kept outside the data dir, so the listing compares the data dir only.
    let outside = tempfile::tempdir().unwrap();
    let mut newer = good.clone();
    newer[16..20].copy_from_slice(&2u32.to_le_bytes());
    let mut flipped = good.clone();
    let middle = good.len() / 2;
    flipped[middle] ^= 0x40;
    let random: Vec<u8> = (0..good.len()).map(|i| (i * 7919 % 251) as u8).collect();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("truncated", good[..good.len() / 2].to_vec(), "cut short"),
        ("flipped", flipped, "damaged"),
        ("empty", Vec::new(), "empty"),
        ("random", random, "not a fortfolio backup"),
        ("newer", newer, "newer"),
    ];
    let before = listing(&app.data_dir());
    for (name, bytes, says) in cases {
        let file = outside.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        for verb in [vec!["admin", "restore"], vec!["admin", "backup", "verify"]] {
            let data_dir = app.data_dir();
            let mut args = verb.clone();
            args.extend([s(&file), "--data-dir", s(&data_dir)]);
            let out = cli(&args, None).await;
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(1), "{name} {verb:?}: {err}");
            assert_eq!(err.trim().lines().count(), 1, "{name} {verb:?}: {err}");
            assert!(err.contains(says) && err.contains(name), "{name} {verb:?}: {err}");
            assert!(!err.contains("panicked"), "{name}: {err}");
        }
        assert_eq!(listing(&app.data_dir()), before, "{name}: the data dir changed");
    }

    // The good one still restores over the data dir, keeping the old files.
    let out = cli(&["admin", "restore", s(&backup), "--data-dir", s(&data_dir)], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<String> = std::fs::read_dir(app.data_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("fortfolio.redb.before-restore-")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("jwt.key.before-restore-")),
        "{names:?}"
    );
    assert!(!names.iter().any(|n| n.ends_with(".restoring")), "{names:?}");
    app.restart().await;
    assert_eq!(app.login("dmg@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn an_encrypted_backup_hides_keys_and_emails_and_opens_with_its_passphrase_only() {
    let (mut app, access, _) = app_with_data("secret-owner@example.com").await;
    let file = app.data_dir().join("sealed.backup");
    let pass = "a long and quiet harbour 71";
    let data_dir = app.data_dir();
    let out = cli(
        &[
            "admin",
            "backup",
            s(&file),
            "--passphrase-stdin",
            "--data-dir",
            s(&data_dir),
        ],
        Some(&format!("{pass}\n")),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&file).unwrap();
    let jwt_key = std::fs::read(app.data_dir().join("jwt.key")).unwrap();
    let totp_key = std::fs::read(app.data_dir().join("totp.key")).unwrap();
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(b"secret-owner@example.com"));
    assert!(!contains(&jwt_key) && !contains(&totp_key));
    assert!(!contains(b"FORTFOLIO-BACKUP"));

    let wrong = cli(
        &["admin", "backup", "verify", s(&file), "--passphrase-stdin"],
        Some("not the passphrase\n"),
    )
    .await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("the passphrase is wrong"), "{}", stderr(&wrong));
    let none = cli(&["admin", "backup", "verify", s(&file)], None).await;
    assert_eq!(none.status.code(), Some(1));
    assert!(stderr(&none).contains("--passphrase-stdin"), "{}", stderr(&none));

    app.stop().await;
    let fresh = tempfile::tempdir().unwrap();
    let out = cli(
        &[
            "admin",
            "restore",
            s(&file),
            "--passphrase-stdin",
            "--data-dir",
            s(fresh.path()),
        ],
        Some(&format!("{pass}\n")),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(fresh.path().join("jwt.key")).unwrap(), jwt_key);
    let mut config = app.config.clone();
    config.storage.data_dir = fresh.path().to_path_buf();
    config.logging.dir = fresh.path().join("logs");
    let running = fortfolio::server::start(config).await.unwrap();
    let p: Value = app
        .client
        .get(format!("http://{}/api/v1/portfolio", running.addr))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["positions"][0]["quantity"], "3");
    running.shutdown().await;
}

#[tokio::test]
async fn scheduled_backups_keep_the_newest_and_show_in_metrics() {
    let keys = tempfile::tempdir().unwrap();
    let identity = keys.path().join("backup.id");
    let out = cli(&["admin", "backup", "keygen", s(&identity)], None).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(public.starts_with("age1"), "{public}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&identity).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let dir = keys.path().join("backups");
    let (d, p) = (dir.clone(), public.clone());
    let app = TestApp::spawn_with(move |c| {
        c.backup.dir = d;
        c.backup.interval = fortfolio::config::Dur::parse("1s").unwrap();
        c.backup.keep = 2;
        c.backup.recipient = p;
    })
    .await;
    app.register("sched@example.com").await;
    let mut files = Vec::new();
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        files = std::fs::read_dir(&dir)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        if app
            .metrics()
            .await
            .contains("fortfolio_security_events_total{event=\"backup_written\"} 4")
        {
            break;
        }
    }
    let metrics = app.metrics().await;
    let stamp: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("fortfolio_last_backup_timestamp_seconds "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - stamp).abs() < 30, "{stamp}");
    assert!(
        metrics.contains("fortfolio_security_events_total{event=\"backup_written\"} 4"),
        "{metrics}"
    );
    files.retain(|f| !f.to_string_lossy().ends_with(".partial"));
    assert_eq!(files.len(), 2, "{files:?}");
    for f in &files {
        let out = cli(
            &["admin", "backup", "verify", s(f), "--identity", s(&identity), "--json"],
            None,
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let m: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            (m["encrypted"].clone(), m["tables"]["users"].clone()),
            (json!(true), json!(1))
        );
    }
}
