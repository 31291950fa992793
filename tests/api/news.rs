use std::time::Duration;

use serde_json::Value;

use crate::helpers::{token, TestApp};

const FEED: &str = r#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Local Wire</title>
<item><title>Apple shares soar on record profits</title><link>http://local.test/a</link>
<guid>local-a</guid><pubDate>Mon, 23 Nov 2026 10:00:00 GMT</pubDate>
<description>AAPL gains after a great quarter.</description></item>
<item><title>Exxon hit by terrible losses and a lawsuit</title><link>http://local.test/b</link>
<guid>local-b</guid><pubDate>Tue, 24 Nov 2026 10:00:00 GMT</pubDate>
<description>Shares fell sharply.</description></item>
</channel></rss>"#;

/// Serves a good feed at /good.rss and garbage at /bad.rss on loopback.
async fn feed_server() -> String {
    let app = axum::Router::new()
        .route("/good.rss", axum::routing::get(|| async { FEED }))
        .route("/bad.rss", axum::routing::get(|| async { "<<<this is not a feed" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

#[tokio::test]
async fn bundled_and_configured_feeds_are_served_with_sentiment() {
    let base = feed_server().await;
    let feeds = vec![format!("{base}/bad.rss"), format!("{base}/good.rss")];
    let app = TestApp::spawn_with(move |c| {
        c.market.news_feeds = feeds;
        c.market.news_refresh = fortfolio::config::Dur::secs(1);
    })
    .await;
    let access = token(&app.register("na@example.com").await, "access_token");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut items;
    loop {
        let r: Value = app.get("/news?limit=5", Some(&access)).await.json().await.unwrap();
        items = r["items"].as_array().unwrap().clone();
        if items.iter().any(|i| i["source"] == "Local Wire") || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Newest first: the local items (2026) come before the bundled ones (2014).
    assert_eq!(items[0]["title"], "Exxon hit by terrible losses and a lawsuit");
    assert_eq!(items[0]["sentiment"]["label"], "negative");
    assert_eq!(items[1]["sentiment"]["label"], "positive");
    assert_eq!(items[1]["symbols"], serde_json::json!(["AAPL"]));
    assert_eq!(items[0]["symbols"], serde_json::json!(["XOM"]));
    for i in &items {
        for k in [
            "id",
            "title",
            "summary",
            "url",
            "source",
            "published_at",
            "symbols",
            "sentiment",
        ] {
            assert!(i.get(k).is_some(), "{k}");
        }
        let score = i["sentiment"]["score"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&score));
    }
    // The bundled feed is there too, and refreshes do not duplicate.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let all: Value = app.get("/news?limit=500", Some(&access)).await.json().await.unwrap();
    let n = all["items"].as_array().unwrap().len();
    assert_eq!(n, 500);
    let page2: Value = app
        .get(
            &format!("/news?limit=500&cursor={}", all["next_cursor"].as_str().unwrap()),
            Some(&access),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(n + page2["items"].as_array().unwrap().len(), 503 + 2);
    let aapl: Value = app.get("/news?symbol=AAPL", Some(&access)).await.json().await.unwrap();
    assert!(aapl["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|i| i["symbols"].as_array().unwrap().contains(&"AAPL".into())));
    let since: Value = app
        .get("/news?since=2026-01-01", Some(&access))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(since["items"].as_array().unwrap().len(), 2);
    assert_eq!(app.get("/news?since=yesterday", Some(&access)).await.status(), 422);
}
