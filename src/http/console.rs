//! The web console (`/` and `/console/{file}`): plain ES modules and one
//! stylesheet, compiled into the binary, that drive the public JSON API in
//! cookie mode. No build step, no network: every file is listed here.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;

/// Scripts, styles, images and requests from this server only; no inline
/// code, no eval, no form submission (every form is handled by script, so
/// a password can never end up in a URL), never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

macro_rules! console_files {
    ($($name:literal),+ $(,)?) => {
        /// Every file of the console: name, bytes.
        const FILES: &[(&str, &[u8])] = &[
            $(($name, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $name)))),+
        ];
    };
}

console_files!(
    "index.html",
    "app.css",
    "app.js",
    "api.js",
    "ui.js",
    "charts.js",
    "page-auth.js",
    "page-portfolio.js",
    "page-asset.js",
    "page-news.js",
    "page-security.js",
    "page-admin.js",
    "page-links.js",
);

fn serve(name: &str) -> Response {
    let Some((_, body)) = FILES.iter().find(|(n, _)| *n == name) else {
        return ApiError::not_found("no such console file").into_response();
    };
    let content_type = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        _ => "text/javascript; charset=utf-8",
    };
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], *body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    resp
}

/// The web console
///
/// Sign in, portfolio, assets, news, security settings and (for admins)
/// administration, in the browser, over this API in cookie mode.
#[utoipa::path(
    get,
    path = "/",
    operation_id = "getConsole",
    tag = "operations",
    responses((status = 200, description = "The console's page", content_type = "text/html", body = String)),
)]
pub async fn index() -> Response {
    serve("index.html")
}

/// A file of the web console (scripts and its stylesheet)
#[utoipa::path(
    get,
    path = "/console/{file}",
    operation_id = "getConsoleAsset",
    tag = "operations",
    params(("file" = String, Path, description = "A file of the console", pattern = "^[a-z-]+\\.(js|css)$")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript"),
            (String = "text/css"),
        )),
        (status = 404, description = "A problem document; `code` is one of `not_found`.", content_type = "application/problem+json", body = crate::http::error::Problem),
    ),
)]
pub async fn asset(Path(file): Path<String>) -> Response {
    if file == "index.html" {
        return ApiError::not_found("no such console file").into_response();
    }
    serve(&file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_script_is_a_module_of_the_page_and_nothing_is_inline() {
        let text = |name: &str| String::from_utf8(FILES.iter().find(|(n, _)| *n == name).unwrap().1.to_vec()).unwrap();
        let html = text("index.html");
        for banned in ["<style", "style=", "onclick=", "onload=", "onsubmit=", "javascript:"] {
            assert!(!html.contains(banned), "index.html has {banned}");
        }
        assert!(html.contains("<script type=\"module\" src=\"/console/app.js\"></script>"));
        for (name, body) in FILES {
            let body = String::from_utf8(body.to_vec()).unwrap();
            if name.ends_with(".js") {
                for banned in [
                    "eval(",
                    "new Function",
                    "innerHTML",
                    "setAttribute('style'",
                    "document.write",
                ] {
                    assert!(!body.contains(banned), "{name} uses {banned}");
                }
                // Every import names a file the server has.
                for line in body.lines().filter(|l| l.starts_with("import ")) {
                    let target = line.rsplit("'./").next().unwrap().trim_end_matches("';");
                    assert!(FILES.iter().any(|(n, _)| *n == target), "{name}: {line}");
                }
            }
        }
    }
}
