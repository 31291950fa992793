//! The web console in a real browser (Debian's Chromium over WebDriver),
//! against the real server binary with TLS, as new users and an admin
//! would use it. `FORTFOLIO_BIN` picks the binary (e.g. the release build);
//! by default it is the one `cargo test` built. On failure every window's
//! screenshot is saved in `target/browser-screenshots/`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::browser::{with_screenshots, Browser, Driver};
use crate::helpers::{free_port, PASSWORD};

/// `fortfolio serve` as a child process on a fresh data dir, with TLS
/// (self-signed) and rate limits a scripted user does not hit.
struct Server {
    child: Child,
    root: String,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

fn binary() -> String {
    std::env::var("FORTFOLIO_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_fortfolio").to_string())
}

impl Server {
    async fn start(reauth_max_age: &str, access_ttl: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let data = dir.path().join("data");
        let groups = [
            "register",
            "login",
            "two_factor",
            "refresh",
            "logout",
            "password",
            "account",
            "portfolio",
            "prices",
            "news",
            "predictions",
            "admin",
        ];
        let limits: String = groups.iter().map(|g| format!("{g} = \"10000/min\"\n")).collect();
        let config = format!(
            "[server]\nbind = \"127.0.0.1:{port}\"\ntls = \"self-signed\"\n\
             [storage]\ndata_dir = \"{}\"\n[logging]\ndir = \"{}\"\n\
             [auth]\nreauth_max_age = \"{reauth_max_age}\"\naccess_ttl = \"{access_ttl}\"\n[rate_limits]\n{limits}",
            data.display(),
            dir.path().join("logs").display(),
        );
        let file = dir.path().join("config.toml");
        std::fs::write(&file, config).unwrap();
        let child = Command::new(binary())
            .args(["serve", "--config"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let root = format!("https://127.0.0.1:{port}");
        let http = crate::helpers::client();
        let started = Instant::now();
        while http.get(format!("{root}/api/v1/ready")).send().await.is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "the server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Server {
            child,
            root,
            data,
            _dir: dir,
        }
    }

    /// `fortfolio admin ...` against this server (over its admin socket).
    fn admin(&self, args: &[&str], stdin: &str) {
        let mut child = Command::new(binary())
            .arg("admin")
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- TOTP, independently of the server: the secret comes from the QR image.

/// The text of the QR code in a `data:image/png;base64,...` URL.
fn read_qr(data_url: &str) -> String {
    use base64::Engine;
    let b64 = data_url.split_once(',').unwrap().1;
    let png = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let (w, h) = (info.width as usize, info.height as usize);
    let stride = info.line_size;
    let gray = |x: usize, y: usize| -> u8 {
        match info.bit_depth {
            png::BitDepth::Eight => buf[y * stride + x * channels],
            // 1-bit greyscale: one bit per pixel, most significant first.
            png::BitDepth::One => {
                if buf[y * stride + x / 8] & (0x80 >> (x % 8)) != 0 {
                    255
                } else {
                    0
                }
            }
            other => panic!("unexpected PNG depth {other:?}"),
        }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, gray);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

fn base32_decode(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut acc, mut out) = (0u32, 0u64, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|a| *a == c.to_ascii_uppercase()).unwrap() as u64;
        acc = (acc << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// RFC 6238 (SHA-1, 6 digits, 30 s) for time step `step`.
fn totp(secret: &[u8], step: u64) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = ring::hmac::sign(&key, &step.to_be_bytes());
    let d = mac.as_ref();
    let off = (d[19] & 0x0f) as usize;
    let n = u32::from_be_bytes([d[off] & 0x7f, d[off + 1], d[off + 2], d[off + 3]]) % 1_000_000;
    format!("{n:06}")
}

fn now_step() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 30
}

// --- Page helpers.

async fn title_is(b: &Browser, text: &str) {
    b.wait_for(
        &format!("const t = document.getElementById('page-title'); return !!t && t.textContent === {text:?};"),
        &format!("the page `{text}`"),
    )
    .await;
}

async fn open_page(b: &Browser, hash: &str, title: &str) {
    b.script(&format!("location.hash = {hash:?};")).await;
    title_is(b, title).await;
}

/// Signs in through the form with real key strokes (Enter submits).
async fn sign_in_form(b: &Browser, email: &str) {
    title_is(b, "Sign in").await;
    b.type_into("input[name=email]", email).await;
    b.type_into("input[name=password]", &format!("{PASSWORD}\u{E007}"))
        .await;
}

/// `fetch` from the page, in cookie mode, with the CSRF header the console
/// sends; answers `{status, body}`.
async fn page_fetch(b: &Browser, method: &str, path: &str, body: Value) -> Value {
    b.script_async(
        "const [method, path, body, done] = arguments;
         const csrf = (document.cookie.match(/(?:^|; )(?:__Host-)?fortfolio_csrf=([^;]*)/) || [])[1] || '';
         const init = { method, credentials: 'same-origin', headers: { 'X-CSRF-Token': csrf } };
         if (method !== 'GET' && body !== null) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
         fetch('/api/v1' + path, init).then(async (r) => done({ status: r.status, body: await r.json().catch(() => null) }));",
        json!([method, path, body]),
    )
    .await
}

/// Records every request the console sends (method, path, CSRF header).
async fn watch_requests(b: &Browser) {
    b.script(
        "if (!window.__sent) {
           window.__sent = [];
           const real = window.fetch;
           window.fetch = (url, init = {}) => {
             const h = init.headers || {};
             const entry = { method: init.method || 'GET', url: String(url), csrf: h['X-CSRF-Token'] || '', status: 0 };
             window.__sent.push(entry);
             return real(url, init).then((r) => { entry.status = r.status; return r; });
           };
         }",
    )
    .await;
}

/// axe-core (vendored) on the current page: serious and critical violations.
async fn audit(b: &Browser, page: &str) {
    let loaded = b.script("return typeof window.axe === 'object';").await;
    if loaded != json!(true) {
        let axe = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/axe-core/axe.min.js"
        ))
        .unwrap();
        b.script(&axe).await;
    }
    let found = b
        .script_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] }).then((r) => done(r.violations
               .filter((v) => v.impact === 'serious' || v.impact === 'critical')
               .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.html).slice(0, 3) }))));",
            json!([]),
        )
        .await;
    assert_eq!(found, json!([]), "{}: accessibility violations on {page}", b.name);
}

/// Loads `hash` afresh and sums its layout shifts until its data is in.
async fn layout_shift(b: &Browser, root: &str, hash: &str, title: &str) {
    // A new document (a hash change alone would keep the old one).
    b.goto("about:blank").await;
    b.goto(&format!("{root}/{hash}")).await;
    title_is(b, title).await;
    b.wait_for("return !document.querySelector('main[aria-busy]');", "data")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cls = b
        .script_async(
            "const done = arguments[0]; let sum = 0; const moved = [];
             new PerformanceObserver((l) => { for (const e of l.getEntries()) if (!e.hadRecentInput) {
               sum += e.value;
               for (const s of e.sources || []) moved.push([e.value.toFixed(3), s.node ? (s.node.id || s.node.className || s.node.nodeName) : '?']);
             } }).observe({ type: 'layout-shift', buffered: true });
             setTimeout(() => done([sum, moved]), 100);",
            json!([]),
        )
        .await;
    assert!(cls[0].as_f64().unwrap() < 0.1, "{hash}: cumulative layout shift {cls}");
}

/// Every page at desktop width and at 375 px, light and dark: no serious
/// accessibility problem, nothing wider than the screen.
async fn audit_everywhere(b: &Browser, pages: &[(&str, &str)]) {
    for scheme in ["light", "dark"] {
        b.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
        for width in [1280, 375] {
            b.cdp(
                "Emulation.setDeviceMetricsOverride",
                json!({"width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 500}),
            )
            .await;
            for (hash, title) in pages {
                open_page(b, hash, title).await;
                // Let the page's data arrive before judging it.
                b.wait_for(
                    "return document.querySelectorAll('main[aria-busy]').length === 0;",
                    "data",
                )
                .await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                audit(b, &format!("{hash} at {width} px, {scheme}")).await;
                let wide = b.script("return document.documentElement.scrollWidth;").await;
                assert!(
                    wide.as_u64().unwrap() <= width,
                    "{hash} at {width} px is {wide} px wide"
                );
            }
        }
    }
    b.cdp("Emulation.clearDeviceMetricsOverride", json!({})).await;
    b.cdp("Emulation.setEmulatedMedia", json!({"features": []})).await;
}

/// A new user: register with live password advice, turn on 2FA by reading
/// the QR code, sign in with TOTP and with a backup code, trade, read the
/// asset page and the news; every page accessible at 375 and 1280 px.
#[tokio::test]
async fn a_new_user_registers_secures_the_account_and_trades_in_the_console() {
    let Some(chromedriver) = Driver::start("the console").await else {
        return;
    };
    let server = Server::start("10m", "15m").await;
    let window = chromedriver.open("ann", 1280, 900).await;
    let b = window.clone();
    let root = server.root.clone();
    with_screenshots("new-user", vec![window], async move {
        // The page itself: strict CSP, no inline code, embedded assets.
        let page = crate::helpers::client().get(format!("{root}/")).send().await.unwrap();
        let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe"), "{csp}");
        b.goto(&format!("{root}/")).await;
        title_is(&b, "Sign in").await;
        watch_requests(&b).await;

        // Keyboard: the first Tab lands on the skip link, visibly focused.
        b.keys(&["\u{E004}"]).await;
        let focus = b
            .script("const a = document.activeElement; return [a.className, getComputedStyle(a).outlineStyle];")
            .await;
        assert_eq!(focus, json!(["skip", "solid"]), "first tab stop");

        // Register, with the API's advice while typing.
        b.click("a[href='#/register']").await;
        title_is(&b, "Create an account").await;
        b.type_into("#reg-email", "ann@example.com").await;
        b.type_into("#reg-password", "password1234").await;
        b.wait_for(
            "return document.querySelector('.feedback').textContent.includes('too easy to guess');",
            "weak-password advice",
        )
        .await;
        b.type_into("#reg-password", PASSWORD).await;
        b.wait_for(
            "return document.querySelector('.feedback').textContent.startsWith('Strong enough');",
            "strong-password feedback",
        )
        .await;
        b.keys(&["\u{E007}"]).await;
        title_is(&b, "Portfolio").await;

        // 2FA: the secret is read from the QR image on the page.
        open_page(&b, "#/security", "Security").await;
        b.type_into("#enable-password", &format!("{PASSWORD}\u{E007}")).await;
        b.wait_for("const q = document.getElementById('qr'); return !!q && q.complete && q.naturalWidth > 0;", "the QR code")
            .await;
        let src = b.script("return document.getElementById('qr').src;").await;
        let uri = read_qr(src.as_str().unwrap());
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        let secret = uri
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("secret="))
            .unwrap()
            .to_string();
        let shown = b.script("return document.getElementById('secret').textContent;").await;
        assert_eq!(shown, json!(secret), "the key shown equals the QR's");
        let key = base32_decode(&secret);
        let enrolled_at = now_step();
        b.type_into("#verify-code", &format!("{}\u{E007}", totp(&key, enrolled_at))).await;
        b.wait_for("return document.querySelectorAll('#backup-codes li').length === 10;", "backup codes")
            .await;
        let codes: Vec<String> =
            serde_json::from_value(b.script("return [...document.querySelectorAll('#backup-codes li')].map(l => l.textContent);").await)
                .unwrap();
        let download = b
            .script("const a = document.getElementById('download-codes'); return [a.getAttribute('download'), a.href.startsWith('blob:')];")
            .await;
        assert_eq!(download, json!(["fortfolio-backup-codes.txt", true]));

        // Sign out, then in with a wrong code (the API's words shown), then
        // with the next step's code (the enrolment's is spent).
        b.click("#sign-out").await;
        sign_in_form(&b, "ann@example.com").await;
        b.wait_for("return !!document.getElementById('challenge-code');", "the 2FA challenge")
            .await;
        b.type_into("#challenge-code", &format!("{}\u{E007}", totp(&key, enrolled_at - 20)))
            .await;
        b.wait_for(
            "return document.querySelector('.error').textContent.startsWith('the two-factor code is wrong or already used');",
            "the API's message for a wrong code",
        )
        .await;
        while now_step() == enrolled_at {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        b.type_into("#challenge-code", &format!("{}\u{E007}", totp(&key, now_step()))).await;
        title_is(&b, "Portfolio").await;

        // And with a backup code.
        b.click("#sign-out").await;
        sign_in_form(&b, "ann@example.com").await;
        b.wait_for("return !!document.getElementById('use-backup');", "the 2FA challenge")
            .await;
        b.click("#use-backup").await;
        b.type_into("#challenge-code", &format!("{}\u{E007}", codes[0])).await;
        title_is(&b, "Portfolio").await;
        b.wait_for(
            "return document.getElementById('notice').textContent.includes('9 left');",
            "the backup codes left",
        )
        .await;

        // Buy three symbols (one by double click), sell part of one.
        for (symbol, quantity, double) in [("SPY", "3", false), ("AAPL", "2", true), ("MSFT", "5", false)] {
            b.type_into("#order-symbol", symbol).await;
            b.type_into("#order-quantity", quantity).await;
            if double {
                b.script("const s = document.getElementById('order-submit'); s.click(); s.click();")
                    .await;
            } else {
                b.click("#order-submit").await;
            }
            b.wait_for(
                &format!("return !!document.querySelector('#positions tr[data-symbol={symbol}]');"),
                "the position",
            )
            .await;
        }
        b.script("document.getElementById('order-side').value = 'sell';").await;
        b.type_into("#order-symbol", "SPY").await;
        b.type_into("#order-quantity", "1").await;
        b.click("#order-submit").await;
        b.wait_for("return document.querySelectorAll('#transactions tbody tr').length === 4;", "four orders")
            .await;
        b.wait_for(
            "return document.querySelector('#positions tr[data-symbol=SPY]').dataset.quantity === '2';",
            "the sale",
        )
        .await;
        let api = page_fetch(&b, "GET", "/portfolio", Value::Null).await;
        let portfolio = &api["body"];
        let shown = b
            .script(
                "const v = (k) => document.querySelector(`#totals [data-field=${k}]`).dataset.value;
                 return {
                   totals: { market_value: v('market_value'), cost_basis: v('cost_basis'), unrealized_pnl: v('unrealized_pnl'), realized_pnl: v('realized_pnl') },
                   rows: [...document.querySelectorAll('#positions tbody tr')].map(r => [r.dataset.symbol, r.dataset.quantity, r.dataset.marketValue]),
                   slices: [...document.querySelectorAll('#allocation path[data-symbol]')].map(p => [p.dataset.symbol, p.dataset.value]),
                 };",
            )
            .await;
        for k in ["market_value", "cost_basis", "unrealized_pnl", "realized_pnl"] {
            assert_eq!(shown["totals"][k], portfolio["totals"][k], "total {k}");
        }
        let rows: Vec<Value> = portfolio["positions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| json!([p["symbol"], p["quantity"], p["market_value"]]))
            .collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(shown["rows"], json!(rows), "the positions table");
        let slices: Vec<Value> = rows.iter().map(|r| json!([r[0], r[2]])).collect();
        assert_eq!(shown["slices"], json!(slices), "the allocation chart");
        let orders = page_fetch(&b, "GET", "/portfolio/transactions", Value::Null).await;
        assert_eq!(orders["body"]["items"].as_array().unwrap().len(), 4, "a double click is one order");

        // The asset page: history for every period, the prediction band, and
        // the evaluation as POST /predictions reports it.
        open_page(&b, "#/asset/SPY", "Asset SPY").await;
        b.wait_for("return !!document.querySelector('#price-chart path.band');", "the prediction band")
            .await;
        let mut points = Vec::new();
        for range in ["30d", "1y", "5y", "max"] {
            b.click(&format!("button[data-range='{range}']")).await;
            b.wait_for(
                &format!("return document.querySelector('button[data-range=\"{range}\"]').getAttribute('aria-pressed') === 'true' && !!document.querySelector('#price-chart path.band');"),
                range,
            )
            .await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            let n = b.script("return Number(document.querySelector('#price-chart path.line').dataset.points);").await;
            points.push(n.as_u64().unwrap());
        }
        assert!(points[0] >= 15 && points[0] < points[1] && points[1] < points[2] && points[2] <= points[3], "{points:?}");
        let prediction = page_fetch(&b, "POST", "/predictions", json!({"symbol": "SPY", "horizon_days": 5})).await;
        let p = &prediction["body"];
        assert_eq!(prediction["status"], 200, "{p}");
        let band = b
            .script("const b = document.querySelector('#price-chart path.band'); return [b.dataset.low, b.dataset.high];")
            .await;
        let as_num = |v: &Value| v.as_str().unwrap().parse::<f64>().unwrap();
        assert_eq!(as_num(&band[0]), as_num(&p["interval"]["low"]));
        assert_eq!(as_num(&band[1]), as_num(&p["interval"]["high"]));
        let evaluation = b
            .script("return Object.fromEntries([...document.querySelectorAll('#evaluation dd[data-field]')].map(d => [d.dataset.field, d.dataset.value]));")
            .await;
        for k in ["directional_accuracy", "baseline_directional_accuracy", "mae", "baseline_mae", "interval_coverage", "folds"] {
            let api = &p["evaluation"][k];
            let api = api.as_str().map(str::to_string).unwrap_or_else(|| api.to_string());
            assert_eq!(evaluation[k], json!(api), "evaluation {k}");
        }

        // News: a symbol filter and sentiment badges.
        open_page(&b, "#/news", "News").await;
        b.wait_for("return document.querySelectorAll('#news-items li[data-id]').length === 20;", "news")
            .await;
        let labels = b.script("return [...new Set([...document.querySelectorAll('#news-items .badge')].map(b => b.dataset.sentiment))];").await;
        assert!(!labels.as_array().unwrap().is_empty());
        b.type_into("#news-symbol", "JPM\u{E007}").await;
        title_is(&b, "News about JPM").await;
        b.wait_for("return document.querySelectorAll('#news-items li[data-id]').length >= 1;", "JPM news")
            .await;
        let symbols = b.script("return [...document.querySelectorAll('#news-items li[data-id] .meta')].every(m => m.textContent.includes('JPM'));").await;
        assert_eq!(symbols, json!(true));

        audit_everywhere(
            &b,
            &[("#/portfolio", "Portfolio"), ("#/asset/SPY", "Asset SPY"), ("#/news", "News"), ("#/security", "Security")],
        )
        .await;

        // No layout shift, a light first load, a clean console, and never a
        // state-changing request without the CSRF header.
        let weight = b
            .script("return performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).filter(e => !e.name.includes('/api/')).reduce((a, e) => a + e.encodedBodySize, 0);")
            .await;
        assert!(weight.as_u64().unwrap() < 300_000, "first load {weight} bytes");
        let sent = b.script("return window.__sent;").await;
        let changing: Vec<&Value> = sent.as_array().unwrap().iter().filter(|r| r["method"] != "GET").collect();
        assert!(changing.len() >= 10, "{sent}");
        for r in changing {
            assert!(r["csrf"].as_str().unwrap().len() > 20, "sent without CSRF: {r}");
        }
        let problems = b.console_problems(true).await;
        assert!(problems.is_empty(), "browser console: {problems:?}");
        for (hash, title) in [("#/portfolio", "Portfolio"), ("#/asset/SPY", "Asset SPY"), ("#/news", "News"), ("#/security", "Security")] {
            layout_shift(&b, &root, hash, title).await;
        }

        // Signing out in one tab signs out the other tabs of the browser.
        let first = b.tab().await;
        let second = b.new_tab().await;
        b.switch_to(&second).await;
        b.goto(&format!("{root}/#/news")).await;
        title_is(&b, "News").await;
        b.switch_to(&first).await;
        b.click("#sign-out").await;
        title_is(&b, "Sign in").await;
        b.switch_to(&second).await;
        title_is(&b, "Sign in").await;
        let nav = b.script("return document.getElementById('nav').hidden;").await;
        assert_eq!(nav, json!(true), "the other tab still shows the signed-in navigation");

        // The sign-in and register pages, signed out.
        audit_everywhere(&b, &[("#/signin", "Sign in"), ("#/register", "Create an account")]).await;
    })
    .await;
    drop(server);
}

/// Sessions, CSRF and the admin section: revoking a session signs the other
/// browser out; another origin cannot make the browser act; a user has no
/// admin API; an admin re-authenticates, then disables a user whose open
/// console is signed out, and the events name the admin.
#[tokio::test]
async fn sessions_csrf_and_admin_in_the_console() {
    let Some(chromedriver) = Driver::start("the console").await else {
        return;
    };
    // Access tokens of 10 s: the console must refresh them as it goes.
    let server = Server::start("4s", "10s").await;
    server.admin(
        &[
            "user",
            "create",
            "--email",
            "boss@example.com",
            "--role",
            "admin",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let http = crate::helpers::client();
    let registered = http
        .post(format!("{}/api/v1/auth/register", server.root))
        .json(&json!({"email": "vic@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), 201);
    let victim: Value = registered.json().await.unwrap();
    let victim_id = victim["user"]["id"].as_str().unwrap().to_string();
    // Only the browsers' sessions stay.
    let out = http
        .post(format!("{}/api/v1/auth/logout", server.root))
        .bearer_auth(victim["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);

    let one = chromedriver.open("vic-1", 1280, 900).await;
    let two = chromedriver.open("vic-2", 1280, 900).await;
    let boss = chromedriver.open("boss", 1280, 900).await;
    let (b1, b2, b3) = (one.clone(), two.clone(), boss.clone());
    let root = server.root.clone();
    let attacker = Attacker::serve(&root).await;
    with_screenshots("sessions-admin", vec![one, two, boss], async move {
        for b in [&b1, &b2] {
            b.goto(&format!("{root}/")).await;
            sign_in_form(b, "vic@example.com").await;
            title_is(b, "Portfolio").await;
            watch_requests(b).await;
        }

        // Window 1 revokes window 2's session; window 2's next request signs it out.
        open_page(&b1, "#/security", "Security").await;
        b1.wait_for("return document.querySelectorAll('#sessions tr[data-current=false] button').length === 1;", "the other session")
            .await;
        b1.click("#sessions tr[data-current=false] button").await;
        b1.wait_for("return document.querySelectorAll('#sessions tbody tr').length === 1;", "the revocation")
            .await;
        b2.click("#nav a[data-page=news]").await;
        title_is(&b2, "Sign in").await;
        b2.wait_for("return document.getElementById('notice').textContent.includes('session has ended');", "the notice")
            .await;

        // Another origin: a cross-site form post and credentialed fetches
        // from window 1, which holds a live session, change nothing.
        // A fresh 10-second access cookie for the attack to ride on.
        let fresh = page_fetch(&b1, "POST", "/auth/refresh", Value::Null).await;
        assert_eq!(fresh["status"], 200, "{fresh}");
        b1.goto(&attacker).await;
        b1.wait_for("return document.title.startsWith('done');", "the attack page").await;
        let fetches = b1.script("return document.title;").await;
        assert_eq!(fetches, json!("done: cors=blocked"), "a credentialed cross-origin fetch cannot read the answer");
        b1.script("document.getElementById('attack').submit();").await;
        b1.wait_for("return location.href.includes('/api/v1/portfolio/buy');", "the form post")
            .await;
        let answer = b1.script("return document.body.innerText;").await;
        let answer: Value = serde_json::from_str(answer.as_str().unwrap()).unwrap();
        assert_eq!(answer["status"], 403, "{answer}");
        assert_eq!(answer["code"], "csrf_failed", "{answer}");
        b1.goto(&format!("{root}/")).await;
        title_is(&b1, "Portfolio").await;
        watch_requests(&b1).await;
        // The attack page's own console (its CORS errors) is not the console's.
        let _ = b1.console_problems(true).await;
        let orders = page_fetch(&b1, "GET", "/portfolio/transactions", Value::Null).await;
        assert_eq!(orders["body"]["items"], json!([]), "the attacks bought nothing");

        // A user has no admin API, and no admin section.
        let hidden = b1.script("return document.getElementById('nav-admin').hidden;").await;
        assert_eq!(hidden, json!(true));
        for (method, path) in [
            ("GET", "/admin/users".to_string()),
            ("GET", "/admin/security-events".to_string()),
            ("GET", "/admin/status".to_string()),
            ("POST", format!("/admin/users/{victim_id}/disable")),
            ("POST", format!("/admin/users/{victim_id}/enable")),
            ("POST", format!("/admin/users/{victim_id}/unlock")),
            ("POST", format!("/admin/users/{victim_id}/reset-2fa")),
            ("POST", format!("/admin/users/{victim_id}/revoke-sessions")),
            ("POST", format!("/admin/users/{victim_id}/role")),
        ] {
            let body = if path.ends_with("/role") { json!({"role": "admin"}) } else { json!({}) };
            let r = page_fetch(&b1, method, &path, body).await;
            assert_eq!(r["status"], 403, "{method} {path}: {r}");
            assert_eq!(r["body"]["code"], "forbidden", "{method} {path}: {r}");
        }

        // The admin signs in, waits past the re-authentication window, and
        // disables the user: the console asks for the password first.
        b3.goto(&format!("{root}/")).await;
        sign_in_form(&b3, "boss@example.com").await;
        title_is(&b3, "Portfolio").await;
        watch_requests(&b3).await;
        b3.click("#nav a[data-page=admin]").await;
        title_is(&b3, "Administration").await;
        b3.wait_for("return !!document.querySelector('#admin-users tr[data-user=\"vic@example.com\"]');", "the user list")
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let stale = page_fetch(&b3, "POST", &format!("/admin/users/{victim_id}/unlock"), json!({})).await;
        assert_eq!(stale["status"], 403, "{stale}");
        assert_eq!(stale["body"]["code"], "reauthentication_required", "{stale}");
        b3.click("#admin-users tr[data-user=\"vic@example.com\"] button[data-action=disable]").await;
        b3.wait_for("return !!document.querySelector('dialog[open] button[value=ok]');", "the confirmation")
            .await;
        b3.click("dialog[open] button[value=ok]").await;
        b3.wait_for("return !!document.querySelector('dialog[open] #reauth-secret');", "the re-authentication dialog")
            .await;
        b3.type_into("#reauth-secret", &format!("{PASSWORD}\u{E007}")).await;
        b3.wait_for(
            "const r = document.querySelector('#admin-users tr[data-user=\"vic@example.com\"]'); return !!r && r.textContent.includes('disabled');",
            "the user disabled",
        )
        .await;

        // The disabled user's open console is signed out on its next request.
        b1.click("#nav a[data-page=news]").await;
        title_is(&b1, "Sign in").await;

        // The user's events and the admin's name the admin.
        b3.type_into("#ev-user", "vic@example.com").await;
        b3.type_into("#ev-type", "account_disabled\u{E007}").await;
        b3.wait_for("return document.querySelectorAll('#admin-events tr[data-event=account_disabled]').length === 1;", "the user's event")
            .await;
        let details = b3.script("return document.querySelector('#admin-events tr[data-event=account_disabled]').textContent;").await;
        assert!(details.as_str().unwrap().contains("boss@example.com"), "{details}");
        let own = page_fetch(&b3, "GET", "/admin/security-events?user=boss@example.com&event=admin_action", Value::Null).await;
        let own = own["body"]["items"].as_array().unwrap().clone();
        assert!(
            own.iter().any(|e| e["details"]["action"] == "disable" || e["details"].to_string().contains("disable")),
            "{own:?}"
        );
        audit_everywhere(&b3, &[("#/admin", "Administration")]).await;

        // The admin's console kept its session alive: it refreshed the
        // 10-second access token before it expired, and no request of the
        // last 15 s was turned away.
        tokio::time::sleep(Duration::from_secs(15)).await;
        open_page(&b3, "#/security", "Security").await;
        let sent = b3.script("return window.__sent;").await;
        let sent = sent.as_array().unwrap();
        let refreshes = sent.iter().filter(|r| r["url"].as_str().unwrap().ends_with("/auth/refresh") && r["status"] == 200).count();
        assert!(refreshes >= 2, "{refreshes} refreshes: {sent:?}");
        assert!(sent.iter().all(|r| r["status"] != 401), "{sent:?}");

        // Neither console sent a state-changing request without the header.
        for b in [&b1, &b3] {
            let sent = b.script("return window.__sent;").await;
            for r in sent.as_array().unwrap().iter().filter(|r| r["method"] != "GET") {
                assert!(r["csrf"].as_str().unwrap().len() > 20, "sent without CSRF: {r}");
            }
            let problems = b.console_problems(true).await;
            assert!(problems.is_empty(), "browser console: {problems:?}");
        }
    })
    .await;
    drop(server);
}

/// A page on another origin (HTTPS on another port of the same host, so
/// same-site: the browser sends the SameSite=Strict cookies with its
/// requests and only the CSRF check stands in the way) that tries to make
/// the browser buy: a credentialed JSON `fetch` (CORS must keep it from
/// being sent or read), a no-cors `fetch` and a form post (sent with the
/// session cookies, refused by the CSRF check).
struct Attacker;

impl Attacker {
    async fn serve(target: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = fortfolio::security::tls::ensure_self_signed(dir.path()).unwrap();
        let tls = axum_server::tls_rustls::RustlsConfig::from_config(
            fortfolio::security::tls::server_config(&cert, &key).unwrap(),
        );
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("https://127.0.0.1:{}/", listener.local_addr().unwrap().port());
        let buy = format!("{target}/api/v1/portfolio/buy");
        let page = format!(
            "<!doctype html><html><head><title>attack</title></head><body>\
             <form id=\"attack\" method=\"post\" action=\"{buy}\" enctype=\"text/plain\">\
             <input name='{{\"symbol\":\"SPY\",\"quantity\":\"1\",\"x\":\"' value='\"}}'></form>\
             <script>\
             (async () => {{\
               let cors = 'read';\
               try {{ await fetch('{buy}', {{ method: 'POST', credentials: 'include', headers: {{ 'Content-Type': 'application/json' }}, body: '{{\"symbol\":\"SPY\",\"quantity\":\"1\"}}' }}); }} catch (e) {{ cors = 'blocked'; }}\
               try {{ await fetch('{buy}', {{ method: 'POST', mode: 'no-cors', credentials: 'include', headers: {{ 'Content-Type': 'text/plain' }}, body: '{{\"symbol\":\"SPY\",\"quantity\":\"1\"}}' }}); }} catch (e) {{}}\
               document.title = 'done: cors=' + cors;\
             }})();\
             </script></body></html>"
        );
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || async move { axum::response::Html(page) }),
        );
        tokio::spawn(async move {
            let _dir = dir;
            let _ = axum_server::from_tcp_rustls(listener, tls)
                .serve(app.into_make_service())
                .await;
        });
        url
    }
}
