//! The layering rules, checked by reading the source: imports run one way,
//! from the edge (server, CLI) through http and the services down to the
//! security primitives, the store and state traits, and the domain. Run by
//! `cargo test`; a lower layer naming a higher one fails it.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Top-level modules by layer, lowest first. A module may use its own
/// layer and those below it.
const LAYERS: &[(&str, &[&str])] = &[
    ("domain", &["domain"]),
    ("config", &["config"]),
    ("store and state traits", &["store", "state"]),
    ("security primitives", &["security"]),
    (
        "services",
        &["accounts", "portfolio", "market", "ml", "admin", "backup"],
    ),
    ("http", &["http"]),
    ("edge", &["server", "connections", "cli", "telemetry", "lib", "main"]),
];

/// Crates and names that belong to the http layer and above.
const HTTP_ONLY: &[&str] = &[
    "axum::",
    "axum_server",
    "tower_http",
    "hyper::",
    "StatusCode",
    "ApiError",
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, mods)| mods.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The non-test part of a file, without comments.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules a piece of code names through `crate::`.
fn crate_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::b, c};`: the first segment of each item.
            let inner = &group[..group.find("};").unwrap_or(group.len())];
            let mut depth = 0;
            let mut item_start = true;
            let mut word = String::new();
            for ch in inner.chars() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !word.is_empty() {
                            out.insert(std::mem::take(&mut word));
                        }
                        item_start = true;
                    }
                    c if item_start && (c.is_alphanumeric() || c == '_') => word.push(c),
                    _ if item_start && !word.is_empty() => {
                        out.insert(std::mem::take(&mut word));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !word.is_empty() {
                out.insert(word);
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            out.insert(name);
        }
    }
    out
}

fn src_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every source file with its top-level module.
fn files() -> Vec<(String, PathBuf, String)> {
    let mut paths = Vec::new();
    sources(&src_root(), &mut paths);
    paths
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(src_root()).unwrap().to_string_lossy().into_owned();
            let top = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
            let code = code_of(&std::fs::read_to_string(&p).unwrap());
            (top, p, code)
        })
        .collect()
}

#[test]
fn imports_run_one_way() {
    let mut wrong = Vec::new();
    for (top, path, code) in files() {
        if top == "architecture" || top == "test_support" {
            continue;
        }
        let Some(own) = layer_of(&top) else {
            panic!("{} is in no layer: add it to LAYERS", path.display());
        };
        for used in crate_modules(&code) {
            match layer_of(&used) {
                Some(l) if l > own => wrong.push(format!(
                    "{} ({}) uses crate::{used} ({})",
                    path.display(),
                    LAYERS[own].0,
                    LAYERS[l].0
                )),
                Some(_) => {}
                // Items of the crate root, below every layer.
                None if used == "install_crypto" || used == "VERSION" => {}
                None => panic!("{} uses crate::{used}, which is in no layer", path.display()),
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers:\n{}", wrong.join("\n"));
}

#[test]
fn nothing_below_http_speaks_http() {
    let http = layer_of("http").unwrap();
    let mut wrong = Vec::new();
    for (top, path, code) in files() {
        if top == "architecture" || layer_of(&top).is_some_and(|l| l >= http) {
            continue;
        }
        for name in HTTP_ONLY {
            if code.contains(name) {
                wrong.push(format!("{} mentions {name}", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "http below the http layer:\n{}", wrong.join("\n"));
}

/// The text of every `pub trait` block in a file.
fn trait_blocks(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(i) = rest.find("pub trait ") {
        let block = &rest[i..];
        let mut depth = 0;
        let mut end = block.len();
        for (j, ch) in block.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push(block[..end].to_string());
        rest = &block[end..];
    }
    out
}

#[test]
fn store_and_state_traits_are_backend_neutral() {
    let forbidden = [
        "serde_json",
        "Value",
        "Fn(",
        "FnOnce",
        "FnMut",
        "Path",
        "redb",
        "moka",
        "File",
    ];
    let mut wrong = Vec::new();
    for file in ["store/mod.rs", "state/mod.rs"] {
        let code = code_of(&std::fs::read_to_string(src_root().join(file)).unwrap());
        let blocks = trait_blocks(&code);
        assert!(blocks.len() >= 4, "{file}: expected its traits");
        for block in blocks {
            let name = block.split_whitespace().nth(2).unwrap_or("?").to_string();
            for f in forbidden {
                if block.contains(f) {
                    wrong.push(format!("{file}: trait {name} mentions {f}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "backend-specific shapes:\n{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_grouped_and_nested_imports() {
    let code = "use crate::{a::b, c, d::{e, f}};\nlet x = crate::g::h();";
    let found: Vec<_> = crate_modules(code).into_iter().collect();
    assert_eq!(found, ["a", "c", "d", "g"]);
    assert_eq!(
        code_of("x\n// crate::hidden\n#[cfg(test)]\nmod tests { crate::t }"),
        "x\n"
    );
}

/// The public router and the OpenAPI document come from one list: every
/// public route is registered with `utoipa_axum::routes!` from a handler
/// that carries `#[utoipa::path]`. A plain `.route(…)` would serve a route
/// the document does not describe. (`http/admin.rs` is the admin socket's
/// own router, not on the public listener.)
#[test]
fn public_routes_are_registered_with_their_documentation() {
    let mut wrong = Vec::new();
    for (top, path, code) in files() {
        if top != "http" || path.ends_with("admin.rs") {
            continue;
        }
        for call in [
            ".route(",
            ".route_service(",
            ".nest_service(",
            "routing::get(",
            "routing::post(",
        ] {
            if code.contains(call) {
                wrong.push(format!("{} calls {call}", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "routes outside the document:\n{}", wrong.join("\n"));
}
