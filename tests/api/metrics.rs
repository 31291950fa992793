use rand::distributions::{Alphanumeric, DistString};
use reqwest::Method;

use crate::helpers::TestApp;

/// Made-up methods and paths are client input: they must not become label
/// values, or every request adds a series (20,000 once made `/metrics` 351 MB).
#[tokio::test]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = TestApp::spawn().await;
    let root = app.base.trim_end_matches("/api/v1").to_string();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (client, base, root) = (app.client.clone(), app.base.clone(), root.clone());
        workers.spawn(async move {
            for i in 0..1000 {
                let word = Alphanumeric.sample_string(&mut rand::thread_rng(), 12);
                let method = Method::from_bytes(word.to_uppercase().as_bytes()).unwrap();
                let url = match i % 3 {
                    0 => format!("{base}/health"),
                    1 => format!("{base}/{word}"),
                    _ => format!("{root}/{word}"),
                };
                client.request(method, url).send().await.unwrap();
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.unwrap();
    }
    let text = app.metrics().await;
    assert!(text.len() < 100 * 1024, "/metrics is {} bytes", text.len());
    assert!(
        text.contains("fortfolio_http_requests_total{method=\"other\",route=\"/api/v1/health\",status=\"405\"}"),
        "{text}"
    );
    assert!(text.contains("route=\"unmatched\""), "{text}");
}
