use std::process::Command;

use serde_json::{json, Value};

use crate::helpers::{problem, token, TestApp};

fn fortfolio(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fortfolio"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

async fn run(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || fortfolio(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

#[tokio::test]
async fn csv_import_keeps_good_rows_names_bad_lines_and_serves_at_once() {
    let mut app = TestApp::spawn().await;
    let access = token(&app.register("ma@example.com").await, "access_token");
    let csv = app.data_dir().join("acme.csv");
    std::fs::write(
        &csv,
        "Date,Open,High,Low,Close,Adj Close,Volume\n\
         2024-01-02,10,11,9,10.5,10.4,100\n\
         2024-01-03,oops,11,9,10.5,10.4,100\n\
         2024-01-04,10,11,9,10.75,10.4,100\n\
         not-a-date,10,11,9,10.5,10.4,100\n\
         2024-01-05,10,11,9,11.25,10.4,100\n",
    )
    .unwrap();
    let dir = app.data_dir().to_str().unwrap().to_string();
    let out = run(vec![
        "prices".into(),
        "import".into(),
        csv.to_str().unwrap().into(),
        "--data-dir".into(),
        dir.clone(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("acme.csv:3:") && err.contains("acme.csv:5:"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported 3 rows for ACME"));
    // Served at once by the running server.
    let r: Value = app
        .get("/prices/ACME?history=max", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["price"], "11.25");
    assert_eq!(r["history"].as_array().unwrap().len(), 3);

    // With the server stopped, an import lands at the next start.
    app.stop().await;
    let csv2 = app.data_dir().join("more.csv");
    std::fs::write(&csv2, "symbol,date,close\nacme,2024-01-08,12\nzeta,2024-01-08,3\n").unwrap();
    let out = run(vec![
        "prices".into(),
        "import".into(),
        csv2.to_str().unwrap().into(),
        "--data-dir".into(),
        dir.clone(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(vec![
        "prices".into(),
        "list".into(),
        "--json".into(),
        "--data-dir".into(),
        dir.clone(),
    ])
    .await;
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(list.as_array().unwrap().iter().any(|s| s["symbol"] == "ZETA"));
    app.restart().await;
    let r: Value = app.get("/prices/ACME", Some(&access)).await.json().await.unwrap();
    assert_eq!(r["price"], "12");
    let out = run(vec![
        "prices".into(),
        "import".into(),
        "/nonexistent.csv".into(),
        "--data-dir".into(),
        dir,
    ])
    .await;
    assert!(!out.status.success());
}

#[tokio::test]
async fn predictions_report_every_field_and_are_cached() {
    let app = TestApp::spawn().await;
    let access = token(&app.register("mb@example.com").await, "access_token");
    let r = app
        .post(
            "/predictions",
            json!({"symbol": "SPY", "horizon_days": 5}),
            Some(&access),
        )
        .await;
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    for k in [
        "symbol",
        "horizon_days",
        "as_of",
        "last_close",
        "predicted_close",
        "predicted_return",
        "direction",
        "probability_up",
        "interval",
        "model",
        "evaluation",
    ] {
        assert!(p.get(k).is_some(), "{k} missing");
    }
    let prob = p["probability_up"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&prob));
    let num = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
    assert!(num(&p["interval"]["low"]) < num(&p["predicted_close"]));
    assert!(num(&p["predicted_close"]) < num(&p["interval"]["high"]));
    assert_eq!(p["interval"]["level"], 0.9);
    assert_eq!(p["evaluation"]["method"], "walk_forward");
    assert!(p["evaluation"]["folds"].as_u64().unwrap() >= 5);
    for k in [
        "directional_accuracy",
        "baseline_directional_accuracy",
        "mae",
        "baseline_mae",
        "interval_coverage",
    ] {
        assert!(p["evaluation"][k].is_f64(), "{k}");
    }
    assert_eq!(p["evaluation"]["interval_level"], 0.9);
    let coverage = p["evaluation"]["interval_coverage"].as_f64().unwrap();
    assert!((0.85..=0.95).contains(&coverage), "coverage {coverage}");
    for f in p["evaluation"]["fold_details"].as_array().unwrap() {
        assert!(f["interval_coverage"].is_f64(), "{f}");
    }
    assert!(!p["model"]["features"].as_array().unwrap().is_empty());
    let again: Value = app
        .post(
            "/predictions",
            json!({"symbol": "SPY", "horizon_days": 5}),
            Some(&access),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p, again, "identical answers");
    let r = app
        .post(
            "/predictions",
            json!({"symbol": "SPY", "horizon_days": 31}),
            Some(&access),
        )
        .await;
    problem(r, 422, "validation_failed").await;
    let r = app.post("/predictions", json!({"symbol": "NOPE"}), Some(&access)).await;
    problem(r, 404, "unknown_symbol").await;
    // A short imported series has too little history.
    let mut rows = String::from("date,close\n");
    for d in 1..=28 {
        rows.push_str(&format!("2024-02-{d:02},{d}\n"));
    }
    let csv = app.data_dir().join("short.csv");
    std::fs::write(&csv, rows).unwrap();
    let dir = app.data_dir().to_str().unwrap().to_string();
    let out = run(vec![
        "prices".into(),
        "import".into(),
        csv.to_str().unwrap().into(),
        "--data-dir".into(),
        dir,
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = app
        .post("/predictions", json!({"symbol": "SHORT"}), Some(&access))
        .await;
    problem(r, 422, "insufficient_history").await;
}

#[tokio::test]
async fn model_evaluate_prints_folds_and_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();
    let out = run(vec![
        "model".into(),
        "evaluate".into(),
        "SPY".into(),
        "--horizon".into(),
        "5".into(),
        "--data-dir".into(),
        d.clone(),
    ])
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FOLD") && text.contains("BASE_ACC") && text.contains("COVERAGE") && text.contains("verdict:"),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.trim_start().starts_with(char::is_numeric))
            .count(),
        5
    );
    let out = run(vec![
        "model".into(),
        "evaluate".into(),
        "SPY".into(),
        "--json".into(),
        "--data-dir".into(),
        d,
    ])
    .await;
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["evaluation"]["folds"], 5);
    assert!(v["evaluation"]["interval_coverage"].is_f64());
}

#[tokio::test]
async fn price_list_pages_like_every_list() {
    let app = TestApp::spawn().await;
    let access = token(&app.register("mc@example.com").await, "access_token");
    let all: Value = app.get("/prices?limit=500", Some(&access)).await.json().await.unwrap();
    let all = all["items"].as_array().unwrap().clone();
    assert!(all.len() > 3);
    let mut seen = Vec::new();
    let mut path = "/prices?limit=3".to_string();
    loop {
        let page: Value = app.get(&path, Some(&access)).await.json().await.unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/prices?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, all);
    for query in ["limit=abc", "limit=0", "limit=501", "cursor=zzz"] {
        let r = app.get(&format!("/prices?{query}"), Some(&access)).await;
        let body = problem(r, 422, "validation_failed").await;
        assert_eq!(body["field"], query.split('=').next().unwrap());
    }
}
