//! `/docs` in a real browser: Debian's Chromium, headless, driven over
//! WebDriver (chromedriver) with plain HTTP calls. Every host but the
//! server's resolves nowhere, so a page that reached for the network would
//! fail to load; the browser's console must show no error and no CSP
//! violation, and every operation must be on the page with its fields.

use serde_json::{json, Value};

use crate::browser::Driver;
use crate::helpers::TestApp;

/// The property names of a schema, following `$ref` and `allOf`.
fn properties(doc: &Value, schema: &Value, out: &mut Vec<String>) {
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap();
        return properties(doc, &doc["components"]["schemas"][name], out);
    }
    for part in schema["allOf"].as_array().into_iter().flatten() {
        properties(doc, part, out);
    }
    if let Some(props) = schema["properties"].as_object() {
        out.extend(props.keys().cloned());
    }
}

#[tokio::test]
async fn docs_render_every_operation_offline_under_the_csp() {
    let Some(chromedriver) = Driver::start("docs").await else {
        return;
    };
    let driver = chromedriver.open("docs", 1400, 1000).await;
    let app = TestApp::spawn().await;
    let root = app.base.trim_end_matches("/api/v1").to_string();
    let doc: Value = app.get("/openapi.json", None).await.json().await.unwrap();

    driver
        .call("POST", "/url", json!({"url": format!("{root}/docs")}))
        .await;
    let mut operations = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item[method].is_object() {
                operations.push((path.clone(), method, item[method].clone()));
            }
        }
    }
    let n = operations.len();
    driver
        .wait_for(
            &format!("return document.querySelectorAll('.opblock').length === {n};"),
            "every operation to be listed",
        )
        .await;
    // Open every operation, then read what each shows.
    driver
        .script("document.querySelectorAll('.opblock-summary-control').forEach(b => b.click()); return true;")
        .await;
    driver
        .wait_for(
            &format!("return document.querySelectorAll('.opblock .responses-wrapper').length === {n};"),
            "every operation to open",
        )
        .await;
    // Show each body's schema (its fields), not only its example.
    driver
        .script(
            "document.querySelectorAll('button.tablinks[data-name=\"model\"]').forEach(b => b.click()); return true;",
        )
        .await;
    driver
        .wait_for(
            "return document.querySelectorAll('.opblock .model-box').length > 0;",
            "the schemas to show",
        )
        .await;
    for (path, method, op) in &operations {
        let id = op["operationId"].as_str().unwrap();
        // Swagger UI gives each block the id `operations-<tag>-<operationId>`.
        let text = driver
            .script(&format!(
                "const b = document.querySelector('[id$=\"-{id}\"].opblock'); return b ? b.innerText : null;"
            ))
            .await;
        let text = text
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} ({id}) is not on the page"));
        assert!(text.contains(path.as_str()), "{id}: path missing");
        let mut fields = Vec::new();
        properties(
            &doc,
            &op["requestBody"]["content"]["application/json"]["schema"],
            &mut fields,
        );
        for (status, response) in op["responses"].as_object().unwrap() {
            assert!(text.contains(status.as_str()), "{id}: status {status} missing");
            if status.starts_with('2') {
                properties(&doc, &response["content"]["application/json"]["schema"], &mut fields);
            }
        }
        for field in fields {
            assert!(text.contains(&field), "{method} {path}: field `{field}` is not shown");
        }
    }
    // Nothing but this server was asked for anything.
    let resources = driver
        .script("return performance.getEntriesByType('resource').map(e => e.name);")
        .await;
    for url in resources.as_array().unwrap() {
        assert!(url.as_str().unwrap().starts_with(&root), "the page fetched {url}");
    }
    let problems = driver.console_problems(false).await;
    assert!(problems.is_empty(), "browser console: {problems:?}");
    driver.close().await;
}
