//! The composition root: opens the store and the shared state, loads keys,
//! and wires the services that handlers call.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Instant;

use crate::accounts::Accounts;
use crate::config::{Config, StateBackend, StorageBackend};
use crate::http::middleware::RequestQueue;
use crate::market::service::Market;
use crate::ml::serving::Predictor;
use crate::portfolio::service::Portfolio;
use crate::portfolio::valuations::Valuations;
use crate::security::audit::AuditKey;
use crate::security::events::{LogSetup, SecurityLog};
use crate::security::jwt::JwtKeys;
use crate::security::keyfile;
use crate::security::lockout::LoginThrottle;
use crate::security::password::PasswordHasher;
use crate::security::rate_limit::RateLimiter;
use crate::security::revocation::RevocationList;
use crate::security::totp::SecretBox;
use crate::state::fallback::FallbackState;
use crate::state::memory::MemoryState;
use crate::state::redis::RedisState;
use crate::state::{State, StateHealth};
use crate::store::postgres::PostgresStore;
use crate::store::redb::RedbStore;
use crate::store::Store;

pub struct Inner {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    /// Hot state shared by every instance.
    pub state: Arc<dyn State>,
    /// The embedded backend itself, for what only it can do (backups).
    pub embedded: Option<RedbStore>,
    /// When this server last wrote a backup (for `/metrics`).
    pub last_backup: Arc<crate::backup::schedule::LastBackup>,
    /// The account rules (they hold the keys, hasher, throttle and log).
    pub accounts: Accounts,
    pub events: Arc<SecurityLog>,
    pub market: Arc<Market>,
    pub portfolio: Portfolio,
    pub predictor: Predictor,
    pub metrics: crate::http::metrics::Metrics,
    /// Wakes the alert outbox worker (present when SMTP is configured).
    pub mail_wakeup: Option<Arc<tokio::sync::Notify>>,
    pub rate_limiter: RateLimiter,
    pub queue: RequestQueue,
    /// Signs session-bound CSRF tokens.
    pub csrf: crate::security::csrf::CsrfKey,
    pub started: Instant,
    /// Names this process when it claims background jobs.
    pub instance_id: String,
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
        let (store, embedded): (Arc<dyn Store>, Option<RedbStore>) = match config.storage.backend {
            StorageBackend::Embedded => {
                create_private_dir(&data_dir)?;
                let embedded = RedbStore::open(&data_dir)?;
                (Arc::new(embedded.clone()), Some(embedded))
            }
            StorageBackend::Postgres => {
                let pg =
                    PostgresStore::connect(config.storage.postgres_url.expose(), config.storage.postgres_pool_size)
                        .await
                        .map_err(|e| anyhow::anyhow!("storage: {e}"))?;
                // Still the home of the admin socket and TLS files.
                create_private_dir(&data_dir)?;
                (Arc::new(pg), None)
            }
        };
        // Scaled mode takes both keys from the configuration (validated);
        // embedded mode makes them once into the data dir.
        let secret = if config.auth.jwt_secret.is_empty() {
            keyfile::load_or_create(&data_dir.join("jwt.key"), 32)?
        } else {
            jwt_key(config.auth.jwt_secret.expose())
        };
        let totp_key = if config.auth.totp_key.is_empty() {
            keyfile::load_or_create(&data_dir.join("totp.key"), 32)?
        } else {
            hex::decode(config.auth.totp_key.expose()).map_err(|_| anyhow::anyhow!("auth.totp_key is not hex"))?
        };
        let jwt = JwtKeys::new(&secret, &config.auth.issuer);
        let csrf = crate::security::csrf::CsrfKey::derive(&secret);
        let hasher = PasswordHasher::new(
            config.auth.hash_priority,
            config.auth.hash_max_wait.0,
            config.pins_to_cores(),
        )?;
        let idle_bucket = RateLimiter::longest_period(&config.rate_limits);
        let mut health_changes = None;
        let state: Arc<dyn State> = match config.state.backend {
            StateBackend::Memory => {
                if config.is_scaled() {
                    tracing::warn!(
                        "state.backend = \"memory\" with a shared database: revocations, lockouts and rate \
                         limits stay per instance; run more than one instance only with state.backend = \"redis\""
                    );
                }
                Arc::new(MemoryState::new(store.clone(), idle_bucket))
            }
            StateBackend::Redis => {
                let remote = RedisState::new(config.state.redis_url.expose(), &config.state.redis_prefix)
                    .map_err(|e| anyhow::anyhow!("state: {e}"))?;
                let local = MemoryState::new(store.clone(), idle_bucket);
                let shared = FallbackState::start(remote, local, store.clone());
                health_changes = Some(shared.subscribe());
                shared
            }
        };
        let revocations = RevocationList::load(store.clone(), state.clone()).await?;
        let throttle = LoginThrottle::new(state.clone(), &config.auth);
        let totp_box = Arc::new(SecretBox::new(&totp_key)?);
        let mail_wakeup = (!config.smtp.host.is_empty()).then(|| Arc::new(tokio::sync::Notify::new()));
        let log = LogSetup {
            dir: config.logging.dir.clone(),
            retention_days: config.logging.retention_days,
            key: AuditKey::derive(&secret),
            chain: chain_name(&config, &data_dir)?,
        };
        let events = Arc::new(SecurityLog::open(log, store.clone(), mail_wakeup.clone()).await);
        if let Some(changes) = health_changes {
            tokio::spawn(log_state_health(changes, events.clone()));
        }
        let market = Arc::new(Market::load(&config.market, store.clone(), state.clone()).await?);
        let portfolio = Portfolio::new(store.clone(), market.clone(), Valuations::new(state.clone()));
        let rate_limiter = RateLimiter::new(state.clone(), config.rate_limits.clone());
        let queue = RequestQueue::new(&config.server);
        Ok(Self(Arc::new(Inner {
            csrf,
            rate_limiter,
            queue,
            accounts: Accounts {
                store: store.clone(),
                config: config.auth.clone(),
                jwt,
                hasher,
                throttle,
                revocations,
                events: events.clone(),
                totp_box,
                mail_enabled: mail_wakeup.is_some(),
                public_url: config.public_url(),
                verified: crate::accounts::verified::VerifiedTokens::new(100_000, config.auth.access_ttl.0),
            },
            events,
            mail_wakeup,
            market,
            predictor: Predictor::new(),
            portfolio,
            state,
            metrics: crate::http::metrics::Metrics::default(),
            config: Arc::new(config),
            store,
            embedded,
            last_backup: Arc::default(),
            started: Instant::now(),
            instance_id: uuid::Uuid::new_v4().to_string(),
        })))
    }
}

impl Inner {
    /// The CSRF cookie's name (`__Host-` prefixed when TLS is on).
    pub fn csrf_cookie(&self) -> &'static str {
        crate::http::csrf::cookie_name(self.config.server.tls != crate::config::TlsMode::Off)
    }
}

/// The signing key a configured `auth.jwt_secret` stands for: 64 hex
/// digits are the 32 bytes they encode — the form of the generated
/// `jwt.key`, so an install moved to PostgreSQL keeps its tokens valid by
/// pointing `jwt_secret_file` at a copy — and any other text is used as is.
fn jwt_key(secret: &str) -> Vec<u8> {
    match hex::decode(secret) {
        Ok(bytes) if secret.len() == 64 => bytes,
        _ => secret.as_bytes().to_vec(),
    }
}

/// This instance's event chain: `main` on the embedded store; in scaled
/// mode the host name and an id made once into `<data_dir>/chain.id`, so
/// every instance — two on one host included — keeps a chain of its own in
/// the shared database, the same across restarts.
fn chain_name(config: &Config, data_dir: &std::path::Path) -> anyhow::Result<String> {
    if !config.is_scaled() {
        return Ok("main".into());
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "instance".into());
    let id = keyfile::load_or_create(&data_dir.join("chain.id"), 4)?;
    Ok(format!("{host}-{}", hex::encode(id)))
}

/// Writes a security event each time the shared state degrades or recovers.
async fn log_state_health(mut changes: tokio::sync::watch::Receiver<StateHealth>, events: Arc<SecurityLog>) {
    use crate::security::events::{EventType, NewEvent};
    while changes.changed().await.is_ok() {
        let health = changes.borrow_and_update().clone();
        let ev = match health {
            StateHealth::Degraded(reason) => NewEvent::failure(EventType::StateDegraded).detail("reason", reason),
            StateHealth::Ok => NewEvent::success(EventType::StateRecovered),
        };
        events.emit(ev).await;
    }
}

/// The data directory holds keys and the database: owner-only.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if !dir.exists() {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    let meta = std::fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}
