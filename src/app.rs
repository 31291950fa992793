//! The application: shared state and the router with the defensive layers
//! of SPEC §5 in request order.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;

use crate::api;
use crate::config::{Config, TlsMode};
use crate::error::ApiError;
use crate::security::jwt::JwtKeys;
use crate::security::keyfile;
use crate::security::lockout::LoginThrottle;
use crate::security::password::PasswordHasher;
use crate::security::revocation::RevocationList;
use crate::store::redb::RedbStore;
use crate::store::Store;

pub struct Inner {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub jwt: JwtKeys,
    pub hasher: PasswordHasher,
    pub revocations: RevocationList,
    pub throttle: LoginThrottle,
    pub started: Instant,
}

/// Cheap to clone; every handler gets one.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Opens storage and loads keys and hot state. Used by `serve` and by
    /// admin commands run while the server is stopped.
    pub async fn open(config: Config) -> anyhow::Result<Self> {
        let data_dir = config.data_dir().to_path_buf();
        create_private_dir(&data_dir)?;
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&data_dir)?);
        let secret = if config.auth.jwt_secret.is_empty() {
            keyfile::load_or_create(&data_dir.join("jwt.key"), 32)?
        } else {
            config.auth.jwt_secret.expose().as_bytes().to_vec()
        };
        let jwt = JwtKeys::new(&secret, &config.auth.issuer);
        let hasher = PasswordHasher::new()?;
        let revocations = RevocationList::load(store.clone()).await?;
        let throttle = LoginThrottle::new(store.clone(), &config.auth);
        Ok(Self(Arc::new(Inner {
            config: Arc::new(config),
            store,
            jwt,
            hasher,
            revocations,
            throttle,
            started: Instant::now(),
        })))
    }
}

/// The data directory holds keys and the database: owner-only.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// The public router with every layer.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.server.max_body_bytes;
    Router::new()
        .nest("/api/v1", api::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            request_timeout,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::internal("handler panicked").into_response()
        }))
        .layer(middleware::from_fn(crate::request_id::layer))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not support the request method",
    )
}

/// Refuses a declared body larger than `server.max_body_bytes` before reading
/// it; undeclared (chunked) bodies are cut by `DefaultBodyLimit`.
async fn body_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.config.server.max_body_bytes) {
        return api::extract::payload_too_large().into_response();
    }
    next.run(req).await
}

async fn request_timeout(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.server.request_timeout.0, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the request took longer than the server allows",
        )
        .with_header(header::RETRY_AFTER, "5")
        .into_response(),
    }
}

async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, name: &'static str, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(
        h,
        "content-security-policy",
        "default-src 'none'; frame-ancestors 'none'",
    );
    // Every response is per-user or security-relevant: never cache.
    set(h, "cache-control", "no-store");
    if state.config.server.tls != TlsMode::Off {
        set(
            h,
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        );
    }
    resp
}
