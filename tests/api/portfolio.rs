use serde_json::{json, Value};

use crate::helpers::{problem, token, TestApp};

async fn user(app: &TestApp, email: &str) -> String {
    token(&app.register(email).await, "access_token")
}

async fn order(app: &TestApp, side: &str, body: Value, access: &str, key: Option<&str>) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/portfolio/{side}")))
        .bearer_auth(access)
        .json(&body);
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn prices_are_bundled_and_served_with_history() {
    let app = TestApp::spawn().await;
    let access = user(&app, "pa@example.com").await;
    let list: Value = app.get("/prices", Some(&access)).await.json().await.unwrap();
    let symbols: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["symbol"].as_str().unwrap())
        .collect();
    for s in ["SPY", "AAPL", "WTI", "KO"] {
        assert!(symbols.contains(&s), "{s}");
    }
    let spy: Value = app
        .get("/prices/SPY?history=1y", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    let h = spy["history"].as_array().unwrap();
    assert!((245..=260).contains(&h.len()), "{}", h.len());
    assert!(
        h.first().unwrap()["date"].as_str() < h.last().unwrap()["date"].as_str(),
        "oldest first"
    );
    assert_eq!(h.last().unwrap()["date"], "2017-11-10");
    assert_eq!(spy["price"], h.last().unwrap()["close"]);
    assert!(spy["change"].is_string() && spy["change_pct"].is_string());
    assert_eq!(spy["name"], "SPDR S&P 500 ETF Trust");
    let plain: Value = app.get("/prices/spy", Some(&access)).await.json().await.unwrap();
    assert!(plain.get("history").is_none());
    problem(app.get("/prices/NOPE", Some(&access)).await, 404, "unknown_symbol").await;
    problem(
        app.get("/prices/SPY?history=2w", Some(&access)).await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(app.get("/prices", None).await.status(), 401);
}

#[tokio::test]
async fn exact_decimals_and_no_overselling() {
    let app = TestApp::spawn().await;
    let access = user(&app, "pb@example.com").await;
    for _ in 0..3 {
        let r = order(
            &app,
            "buy",
            json!({"symbol": "SPY", "quantity": "0.1", "price": 0.1}),
            &access,
            None,
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    let p: Value = app.get("/portfolio", Some(&access)).await.json().await.unwrap();
    let pos = &p["positions"][0];
    assert_eq!(pos["quantity"], "0.3");
    assert_eq!(pos["cost_basis"], "0.03");
    assert_eq!(pos["average_cost"], "0.1");
    let r = order(
        &app,
        "sell",
        json!({"symbol": "SPY", "quantity": "0.30000001", "price": "1"}),
        &access,
        None,
    )
    .await;
    problem(r, 422, "insufficient_quantity").await;
    let again: Value = app.get("/portfolio", Some(&access)).await.json().await.unwrap();
    assert_eq!(again["positions"], p["positions"], "nothing changed");
    let txs: Value = app
        .get("/portfolio/transactions", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(txs["items"].as_array().unwrap().len(), 3);

    // Validation.
    for (body, field) in [
        (json!({"symbol": "SP Y", "quantity": "1", "price": "1"}), "symbol"),
        (json!({"symbol": "SPY", "quantity": "0", "price": "1"}), "quantity"),
        (
            json!({"symbol": "SPY", "quantity": "0.000000001", "price": "1"}),
            "quantity",
        ),
        (json!({"symbol": "SPY", "quantity": "-1", "price": "1"}), "quantity"),
        (json!({"symbol": "SPY", "quantity": "1", "price": "-5"}), "price"),
        (
            json!({"symbol": "SPY", "quantity": "1", "price": "1", "fee": "-1"}),
            "fee",
        ),
        (json!({"symbol": "SPY", "quantity": "abc"}), "quantity"),
    ] {
        let body = problem(order(&app, "buy", body, &access, None).await, 422, "validation_failed").await;
        assert_eq!(body["field"], field);
    }
    // A manual asset needs a price.
    let r = order(
        &app,
        "buy",
        json!({"symbol": "MYHOUSE", "quantity": "1"}),
        &access,
        None,
    )
    .await;
    problem(r, 422, "price_unavailable").await;
    let r = order(
        &app,
        "buy",
        json!({"symbol": "MYHOUSE", "quantity": "1", "price": "250000"}),
        &access,
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
    // Default price: the last close.
    let r: Value = order(&app, "buy", json!({"symbol": "KO", "quantity": "1"}), &access, None)
        .await
        .json()
        .await
        .unwrap();
    let ko: Value = app.get("/prices/KO", Some(&access)).await.json().await.unwrap();
    assert_eq!(r["transaction"]["price"], ko["price"]);
}

#[tokio::test]
async fn concurrent_sells_never_oversell() {
    let app = TestApp::spawn().await;
    let access = user(&app, "pc@example.com").await;
    let r = order(
        &app,
        "buy",
        json!({"symbol": "AAPL", "quantity": 10, "price": "150"}),
        &access,
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let client = app.client.clone();
        let url = app.url("/portfolio/sell");
        let access = access.clone();
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(access)
                .json(&json!({"symbol": "AAPL", "quantity": "1", "price": "160"}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            201 => ok += 1,
            422 => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 10);
    let p: Value = app.get("/portfolio", Some(&access)).await.json().await.unwrap();
    assert_eq!(p["positions"][0]["quantity"], "0");
    assert_eq!(p["totals"]["realized_pnl"], "100");
    let txs: Value = app
        .get("/portfolio/transactions?symbol=AAPL&limit=500", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    let sells = txs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["side"] == "sell")
        .count();
    assert_eq!(sells, 10);
}

#[tokio::test]
async fn idempotency_keys_replay_or_conflict() {
    let app = TestApp::spawn().await;
    let access = user(&app, "pd@example.com").await;
    let body = json!({"symbol": "MSFT", "quantity": "2", "price": "50"});
    let first: Value = order(&app, "buy", body.clone(), &access, Some("k-1"))
        .await
        .json()
        .await
        .unwrap();
    let r = order(&app, "buy", body.clone(), &access, Some("k-1")).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let second: Value = r.json().await.unwrap();
    assert_eq!(first, second);
    let r = order(
        &app,
        "buy",
        json!({"symbol": "MSFT", "quantity": "3", "price": "50"}),
        &access,
        Some("k-1"),
    )
    .await;
    problem(r, 409, "idempotency_conflict").await;
    let p: Value = app.get("/portfolio", Some(&access)).await.json().await.unwrap();
    assert_eq!(p["positions"][0]["quantity"], "2", "executed once");
    // Keys are per user.
    let other = user(&app, "pe@example.com").await;
    let r = order(&app, "buy", body, &other, Some("k-1")).await;
    assert!(r.headers().get("idempotent-replayed").is_none());
    // Pagination of the ledger.
    let page: Value = app
        .get("/portfolio/transactions?limit=1", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    assert!(page["next_cursor"].is_null());
    assert_eq!(page["items"][0]["id"], first["transaction"]["id"]);
}

#[tokio::test]
async fn out_of_range_orders_are_refused_with_nothing_written() {
    let app = TestApp::spawn().await;
    let access = user(&app, "pf@example.com").await;
    // Once accepted (its fee lost in a 10^24 cost basis); selling half of
    // it later overflowed into a `500`.
    let r = order(
        &app,
        "buy",
        json!({"symbol": "SPY", "quantity": "1000000000000", "price": "1000000000000", "fee": "0.00000001"}),
        &access,
        None,
    )
    .await;
    let body = problem(r, 422, "amount_out_of_range").await;
    assert!(body["detail"].as_str().unwrap().contains("1000000000000"), "{body}");
    let p: Value = app.get("/portfolio", Some(&access)).await.json().await.unwrap();
    assert_eq!(p["positions"], json!([]));
    let txs: Value = app
        .get("/portfolio/transactions", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(txs["items"], json!([]));
    // The largest order is kept to the last digit.
    let r: Value = order(
        &app,
        "buy",
        json!({"symbol": "SPY", "quantity": "999999.99999999", "price": "999999.99999999", "fee": "0.00000001"}),
        &access,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["position"]["cost_basis"], "999999999999.98000001");
    let r = order(
        &app,
        "sell",
        json!({"symbol": "SPY", "quantity": "500000", "price": "1000000"}),
        &access,
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn amounts_are_kept_exact_and_rounded_only_for_display() {
    let app = TestApp::spawn().await;
    let access = user(&app, "pg@example.com").await;
    // 30 significant digits: once rounded to quantity "1" and accepted.
    for quantity in [
        r#""1.00000000000000000000000000001""#,
        "1.00000000000000000000000000001",
    ] {
        let r = app
            .client
            .post(app.url("/portfolio/buy"))
            .bearer_auth(&access)
            .header("content-type", "application/json")
            .body(format!(r#"{{"symbol": "SPY", "quantity": {quantity}, "price": "1"}}"#))
            .send()
            .await
            .unwrap();
        let body = problem(r, 422, "validation_failed").await;
        assert_eq!(body["field"], "quantity");
    }
    // The removed cost was rounded to 12 places: average cost 0.49999998.
    let r = order(
        &app,
        "buy",
        json!({"symbol": "SPY", "quantity": "0.00000003", "price": "0.49999999"}),
        &access,
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
    let r: Value = order(
        &app,
        "sell",
        json!({"symbol": "SPY", "quantity": "0.00000001", "price": "1"}),
        &access,
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(r["position"]["average_cost"], "0.49999999");
    // Shown half-even to 8 places: 0.0000000099999998 and 0.0000000050000001.
    assert_eq!(r["position"]["cost_basis"], "0.00000001");
    assert_eq!(r["position"]["realized_pnl"], "0.00000001");
}
