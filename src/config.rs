//! Typed configuration (SPEC §8), layered: built-in defaults → `config.toml`
//! → `FORTFOLIO_<SECTION>__<KEY>` environment variables → CLI flags.
//!
//! Every layer is merged into one TOML table first and deserialised once, so
//! a bad value anywhere is reported with the full key that holds it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::Secret;

/// The commented example shipped at the top of the repository.
pub const EXAMPLE: &str = include_str!("../config.toml.example");

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub state: StateConfig,
    pub auth: AuthConfig,
    pub rate_limits: RateLimits,
    pub smtp: SmtpConfig,
    pub logging: LoggingConfig,
    pub market: MarketConfig,
    pub metrics: MetricsConfig,
    pub backup: BackupConfig,
}

/// Where a command looks for its configuration without `--config` (or
/// `FORTFOLIO_CONFIG`): the working directory, then the packaged install's
/// file, so `sudo fortfolio admin …` finds the service's configuration.
pub const DEFAULT_FILES: [&str; 2] = ["config.toml", "/etc/fortfolio/config.toml"];

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    Off,
    SelfSigned,
    Files,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    pub tls: TlsMode,
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    pub trusted_proxies: Vec<IpNet>,
    pub cors_allowed_origins: Vec<String>,
    pub max_concurrent_requests: usize,
    pub max_queued_requests: usize,
    pub queue_timeout: Dur,
    pub request_timeout: Dur,
    pub max_body_bytes: usize,
    /// A client must send a request's whole header block within this.
    pub header_read_timeout: Dur,
    /// A connection with no traffic either way for this long is closed.
    pub keep_alive_timeout: Dur,
    /// Open client connections at most; further ones are closed at once.
    pub max_connections: usize,
    /// The address users reach the server at, for the links in mails
    /// (verification, password reset, email change); empty: made from
    /// `bind` and `tls` (`https://127.0.0.1:8443`).
    pub public_url: String,
    /// Each async worker thread stays on a core of its own (Linux, the
    /// embedded store only), so two never queue on one core while another
    /// runs only password hashing; so does each hashing thread, which keeps
    /// its memory in one core's caches (README, Benchmarks).
    pub pin_workers: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls: TlsMode::SelfSigned,
            tls_cert: "cert.pem".into(),
            tls_key: "key.pem".into(),
            trusted_proxies: vec![],
            cors_allowed_origins: vec![],
            max_concurrent_requests: 100,
            max_queued_requests: 1000,
            queue_timeout: Dur::secs(30),
            request_timeout: Dur::secs(30),
            max_body_bytes: 10 * 1024 * 1024,
            header_read_timeout: Dur::secs(10),
            keep_alive_timeout: Dur::secs(60),
            max_connections: 10_000,
            public_url: String::new(),
            pin_workers: true,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    Embedded,
    Postgres,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    pub data_dir: PathBuf,
    #[serde(serialize_with = "redact_secret_url")]
    pub postgres_url: Secret,
    /// Reads `postgres_url` from this file instead (it holds a password).
    pub postgres_url_file: PathBuf,
    /// Connections each instance keeps to PostgreSQL.
    pub postgres_pool_size: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Embedded,
            data_dir: "./data".into(),
            postgres_url: Secret::default(),
            postgres_url_file: PathBuf::new(),
            postgres_pool_size: 10,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    pub backend: StateBackend,
    #[serde(serialize_with = "redact_secret_url")]
    pub redis_url: Secret,
    /// Reads `redis_url` from this file instead.
    pub redis_url_file: PathBuf,
    /// Namespace of every Redis key (several deployments can share a server).
    pub redis_prefix: String,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            backend: StateBackend::Memory,
            redis_url: Secret::default(),
            redis_url_file: PathBuf::new(),
            redis_prefix: "fortfolio:".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Signs access tokens; empty: generated into `<data_dir>/jwt.key`
    /// (embedded mode only).
    #[serde(serialize_with = "redact")]
    pub jwt_secret: Secret,
    /// Reads `jwt_secret` from this file instead (container secrets).
    pub jwt_secret_file: PathBuf,
    /// Seals TOTP secrets at rest: 64 hex digits (32 bytes); empty:
    /// generated into `<data_dir>/totp.key` (embedded mode only).
    #[serde(serialize_with = "redact")]
    pub totp_key: Secret,
    /// Reads `totp_key` from this file instead.
    pub totp_key_file: PathBuf,
    pub issuer: String,
    pub access_ttl: Dur,
    pub refresh_ttl: Dur,
    pub lockout_threshold: u32,
    pub lockout_window: Dur,
    pub lockout_duration: Dur,
    pub require_email_verification: bool,
    /// How recent a login or `POST /auth/reauthenticate` must be for an
    /// admin action (SPEC §11: 10 minutes).
    pub reauth_max_age: Dur,
    /// How the password hashing threads are scheduled against everything
    /// else the server does.
    pub hash_priority: HashPriority,
    /// The longest a password check or hash may wait for a hashing thread;
    /// one that would wait longer is answered `503 overloaded`.
    pub hash_max_wait: Dur,
}

/// The OS scheduling of the password hashing threads (Linux; elsewhere they
/// run at the default priority).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum HashPriority {
    /// `SCHED_IDLE`: hashing runs only on cores nothing else wants.
    Idle,
    /// `nice 19` under the default policy.
    Low,
    /// The same as every other thread.
    Normal,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwt_secret: Secret::default(),
            jwt_secret_file: PathBuf::new(),
            totp_key: Secret::default(),
            totp_key_file: PathBuf::new(),
            issuer: "fortfolio".into(),
            access_ttl: Dur::secs(15 * 60),
            refresh_ttl: Dur::secs(7 * 86400),
            lockout_threshold: 5,
            lockout_window: Dur::secs(3600),
            lockout_duration: Dur::secs(3600),
            require_email_verification: false,
            reauth_max_age: Dur::secs(600),
            hash_priority: HashPriority::Idle,
            hash_max_wait: Dur::secs(2),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    pub register: Rate,
    pub login: Rate,
    pub two_factor: Rate,
    pub refresh: Rate,
    pub logout: Rate,
    pub password: Rate,
    pub account: Rate,
    pub portfolio: Rate,
    pub prices: Rate,
    pub news: Rate,
    pub predictions: Rate,
    /// `/api/v1/admin/*` (SPEC §11).
    pub admin: Rate,
    /// Email verification, password reset, email change (SPEC §12).
    pub recovery: Rate,
}

impl Default for RateLimits {
    fn default() -> Self {
        let m = Rate::per_minute;
        Self {
            register: m(3),
            login: m(5),
            two_factor: m(10),
            refresh: m(10),
            logout: m(10),
            password: m(5),
            account: m(60),
            portfolio: m(60),
            prices: m(60),
            news: m(30),
            predictions: m(20),
            admin: m(30),
            recovery: m(5),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    Starttls,
    Tls,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: String,
    #[serde(serialize_with = "redact")]
    pub password: Secret,
    pub from: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 587,
            security: SmtpSecurity::Starttls,
            username: String::new(),
            password: Secret::default(),
            from: "fortfolio <alerts@localhost>".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    pub dir: PathBuf,
    pub retention_days: u32,
    pub level: String,
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            dir: "./logs".into(),
            retention_days: 90,
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MarketConfig {
    #[serde(serialize_with = "redact_url_list")]
    pub news_feeds: Vec<String>,
    pub news_refresh: Dur,
    #[serde(serialize_with = "redact_url_str")]
    pub price_provider: String,
}

impl Default for MarketConfig {
    fn default() -> Self {
        Self {
            news_feeds: vec![],
            news_refresh: Dur::secs(15 * 60),
            price_provider: String::new(),
        }
    }
}

/// Feed and provider URLs may carry credentials: `Debug` redacts them too.
impl std::fmt::Debug for MarketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarketConfig")
            .field(
                "news_feeds",
                &self.news_feeds.iter().map(|u| redact_url(u)).collect::<Vec<_>>(),
            )
            .field("news_refresh", &self.news_refresh)
            .field("price_provider", &redact_url(&self.price_provider))
            .finish()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    #[serde(serialize_with = "redact")]
    pub token: Secret,
}

/// Scheduled backups: every `interval`, an age-encrypted snapshot into
/// `dir`, the newest `keep` kept.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Empty: no scheduled backups.
    pub dir: PathBuf,
    pub interval: Dur,
    pub keep: usize,
    /// An age public key (`age1…`); required with a dir.
    pub recipient: String,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            interval: Dur::secs(24 * 3600),
            keep: 7,
            recipient: String::new(),
        }
    }
}

impl BackupConfig {
    pub fn enabled(&self) -> bool {
        !self.dir.as_os_str().is_empty()
    }
}

/// A duration written as `"30s"`, `"15m"`, `"1h"`, `"7d"` (or `"500ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Self {
        Self(Duration::from_secs(s))
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| format!("duration `{s}` needs a unit (ms, s, m, h, d)"))?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("duration `{s}` must start with a whole number"))?;
        let ms = match unit {
            "ms" => Some(n),
            "s" => n.checked_mul(1000),
            "m" | "min" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            _ => return Err(format!("duration `{s}` has unknown unit `{unit}` (ms, s, m, h, d)")),
        }
        .ok_or_else(|| format!("duration `{s}` is too large"))?;
        Ok(Self(Duration::from_millis(ms)))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        let (n, unit) = if ms.is_multiple_of(86_400_000) && ms > 0 {
            (ms / 86_400_000, "d")
        } else if ms.is_multiple_of(3_600_000) && ms > 0 {
            (ms / 3_600_000, "h")
        } else if ms.is_multiple_of(60_000) && ms > 0 {
            (ms / 60_000, "m")
        } else if ms.is_multiple_of(1000) {
            (ms / 1000, "s")
        } else {
            (ms, "ms")
        };
        write!(f, "{n}{unit}")
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A rate limit written as `"N/s"`, `"N/min"` or `"N/h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub const fn per_minute(count: u32) -> Self {
        Self {
            count,
            per: Duration::from_secs(60),
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let (n, unit) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("rate `{s}` must look like \"5/min\""))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("rate `{s}` must start with a whole number"))?;
        if count == 0 {
            return Err(format!("rate `{s}` must allow at least 1 request"));
        }
        let per = match unit.trim() {
            "s" | "sec" => Duration::from_secs(1),
            "m" | "min" => Duration::from_secs(60),
            "h" | "hour" => Duration::from_secs(3600),
            "d" | "day" => Duration::from_secs(86400),
            other => return Err(format!("rate `{s}` has unknown period `{other}` (s, min, h)")),
        };
        Ok(Self { count, per })
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "min",
            3600 => "h",
            _ => "d",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Rate::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn redact<S: Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if v.is_empty() { "" } else { "[redacted]" })
}

/// A URL-valued secret as `config check` shows it: [`redact_url`], or
/// `[redacted]` whole when it is not a URL (a key=value connection string).
fn redact_secret_url<S: Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
    let url = v.expose();
    if url.is_empty() || url.contains("://") {
        s.serialize_str(&redact_url(url))
    } else {
        redact(v, s)
    }
}

fn redact_url_str<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(v))
}

fn redact_url_list<S: Serializer>(v: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|u| redact_url(u)))
}

/// Name words that mark a query parameter (or a config key) as secret.
const SECRET_WORDS: [&str; 12] = [
    "password",
    "passwd",
    "pass",
    "pwd",
    "token",
    "key",
    "apikey",
    "secret",
    "auth",
    "authorization",
    "signature",
    "sig",
];

/// True for names like `password`, `api_key`, `X-Api-Key`, `accessToken`,
/// `client_secret`, `X-Amz-Signature`: a word of the name, or its end, says
/// secret.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| SECRET_WORDS.contains(&w))
        || ["password", "token", "key", "secret", "signature"]
            .iter()
            .any(|end| name.ends_with(end))
}

/// `url` safe to print or log: the password of its userinfo and the values
/// of query (and fragment) parameters with a secret name become `***`;
/// everything else is kept as written. Special characters in a password
/// must be percent-encoded, as in any URL, for the password to be found.
pub fn redact_url(url: &str) -> String {
    let (prefix, rest) = match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, rest) = rest.split_at(end);
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{host}"),
                    None => authority.to_string(),
                },
                None => authority.to_string(),
            };
            (format!("{scheme}://{authority}"), rest)
        }
        None => (String::new(), url),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (path, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let mut out = prefix + path;
    for (mark, params) in [('?', query), ('#', fragment)] {
        if let Some(params) = params {
            out.push(mark);
            out.push_str(&redact_params(params));
        }
    }
    out
}

fn redact_params(params: &str) -> String {
    params
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if is_secret_name(name) => format!("{name}=***"),
            _ => pair.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Keys whose values may be secrets or URLs carrying one.
fn may_hold_secret(key: &str) -> bool {
    let name = key.split_once('.').map_or(key, |(_, name)| name);
    let name = name.split('[').next().unwrap_or(name);
    is_secret_name(name) || name.ends_with("_url") || ["news_feeds", "price_provider"].contains(&name)
}

/// A type error quotes the value it got ("invalid type: integer `123…`,
/// expected a string"); for a key that may hold a secret only what was
/// expected is kept.
fn hide_value(key: &str, message: &str) -> String {
    if !may_hold_secret(key) {
        return message.to_string();
    }
    match message.rsplit_once(", expected ") {
        Some((_, expected)) => format!("expected {expected} (the value is not shown)"),
        None => "has an invalid value (not shown)".to_string(),
    }
}

/// Overrides given on the command line (the last layer).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub tls: Option<String>,
}

/// A configuration error: one line naming the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Whether `server.pin_workers` applies: the embedded store only (with
    /// PostgreSQL and Redis on the same cores, pinned workers starved the
    /// password hashing; README, Benchmarks).
    pub fn pins_to_cores(&self) -> bool {
        self.server.pin_workers && self.storage.backend == StorageBackend::Embedded
    }

    /// Loads all layers. `file`: an explicit `--config`; when absent,
    /// `./config.toml` is read if it exists.
    /// Loads `file`, else the first of [`DEFAULT_FILES`] that exists, then
    /// the environment and `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load_from(Self::file_to_read(file).as_deref(), &env, overrides)
    }

    /// The file `load` reads: the one given, else the first default that exists.
    pub fn file_to_read(given: Option<&Path>) -> Option<PathBuf> {
        match given {
            Some(p) => Some(p.to_path_buf()),
            None => DEFAULT_FILES.iter().map(PathBuf::from).find(|p| p.exists()),
        }
    }

    pub fn load_from(
        file: Option<&Path>,
        env: &[(String, String)],
        overrides: &Overrides,
    ) -> Result<Self, ConfigError> {
        let defaults = toml::Value::try_from(Config::default())
            .map_err(|e| ConfigError(format!("internal: defaults do not serialise: {e}")))?;
        let mut merged = defaults.clone();

        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ConfigError(format!("cannot read config file {}: {e}", path.display())))?;
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                ConfigError(format!(
                    "config file {} is not valid TOML: {}",
                    path.display(),
                    e.message()
                ))
            })?;
            merge_file(&mut merged, &defaults, table)?;
        }

        for (name, raw) in env {
            let Some(rest) = name.strip_prefix("FORTFOLIO_") else {
                continue;
            };
            let Some((section, key)) = rest.split_once("__") else {
                continue; // e.g. FORTFOLIO_TEST_POSTGRES_URL: not a config key
            };
            let (section, key) = (section.to_ascii_lowercase(), key.to_ascii_lowercase());
            set_typed(&mut merged, &defaults, &section, &key, raw)
                .map_err(|e| ConfigError(format!("{e} (from environment variable {name})")))?;
        }

        if let Some(b) = &overrides.bind {
            set_typed(&mut merged, &defaults, "server", "bind", b)?;
        }
        if let Some(d) = &overrides.data_dir {
            set_typed(&mut merged, &defaults, "storage", "data_dir", &d.to_string_lossy())?;
        }
        if let Some(t) = &overrides.tls {
            set_typed(&mut merged, &defaults, "server", "tls", t)?;
        }

        let mut config: Config = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            ConfigError(format!(
                "invalid config key {key}: {}",
                hide_value(&key, e.inner().message())
            ))
        })?;
        config.read_secret_files()?;
        config.validate()?;
        Ok(config)
    }

    /// Fills `auth.jwt_secret`, `auth.totp_key`, `storage.postgres_url` and
    /// `state.redis_url` from their `*_file` variants (the convention of
    /// container secrets; a trailing newline is dropped); setting both is
    /// an error.
    fn read_secret_files(&mut self) -> Result<(), ConfigError> {
        for (name, secret, file) in [
            ("auth.jwt_secret", &mut self.auth.jwt_secret, &self.auth.jwt_secret_file),
            ("auth.totp_key", &mut self.auth.totp_key, &self.auth.totp_key_file),
            (
                "storage.postgres_url",
                &mut self.storage.postgres_url,
                &self.storage.postgres_url_file,
            ),
            ("state.redis_url", &mut self.state.redis_url, &self.state.redis_url_file),
        ] {
            if file.as_os_str().is_empty() {
                continue;
            }
            if !secret.is_empty() {
                return Err(ConfigError(format!(
                    "invalid config key {name}_file: set {name} or {name}_file, not both"
                )));
            }
            let text = std::fs::read_to_string(file).map_err(|e| {
                ConfigError(format!(
                    "invalid config key {name}_file: cannot read {}: {e}",
                    file.display()
                ))
            })?;
            *secret = Secret::new(text.trim_end_matches(['\n', '\r']));
        }
        Ok(())
    }

    /// Several instances share one database: scaled mode (SPEC §10).
    /// Where mailed links point: `server.public_url`, else made from the
    /// listening address and TLS mode.
    pub fn public_url(&self) -> String {
        if !self.server.public_url.is_empty() {
            return self.server.public_url.trim_end_matches('/').to_string();
        }
        let scheme = if self.server.tls == TlsMode::Off {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}", self.server.bind)
    }

    pub fn is_scaled(&self) -> bool {
        self.storage.backend == StorageBackend::Postgres
    }

    /// Checks that go beyond the types.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &str, why: &str| Err(ConfigError(format!("invalid config key {key}: {why}")));
        let s = &self.server;
        if s.max_concurrent_requests == 0 {
            return bad("server.max_concurrent_requests", "must be at least 1");
        }
        if s.max_body_bytes < 1024 {
            return bad("server.max_body_bytes", "must be at least 1024");
        }
        if s.max_connections == 0 {
            return bad("server.max_connections", "must be at least 1");
        }
        if s.header_read_timeout.0.is_zero() || s.keep_alive_timeout.0.is_zero() {
            return bad("server.header_read_timeout", "timeouts must be positive");
        }
        if s.request_timeout.0.is_zero() {
            return bad("server.request_timeout", "must be positive");
        }
        if self.auth.hash_max_wait.0.is_zero() {
            return bad("auth.hash_max_wait", "must be positive");
        }
        self.validate_backup()?;
        if s.tls == TlsMode::Files {
            if s.tls_cert.as_os_str().is_empty() {
                return bad("server.tls_cert", "is required when server.tls = \"files\"");
            }
            if s.tls_key.as_os_str().is_empty() {
                return bad("server.tls_key", "is required when server.tls = \"files\"");
            }
        }
        let url = &s.public_url;
        if !(url.is_empty() || url.starts_with("https://") || url.starts_with("http://")) {
            return bad(
                "server.public_url",
                "must be a URL like https://fortfolio.example.com (or empty)",
            );
        }
        if self.auth.require_email_verification && self.smtp.host.is_empty() {
            return bad(
                "auth.require_email_verification",
                "needs smtp.host: without mail no account could ever be verified",
            );
        }
        for origin in &s.cors_allowed_origins {
            if origin == "*" {
                return bad(
                    "server.cors_allowed_origins",
                    "\"*\" is not allowed: credentials are allowed, so list origins explicitly",
                );
            }
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return bad(
                    "server.cors_allowed_origins",
                    &format!("`{origin}` must be an origin like https://app.example.com"),
                );
            }
        }
        if self.storage.data_dir.as_os_str().is_empty() {
            return bad("storage.data_dir", "must not be empty");
        }
        if self.storage.backend == StorageBackend::Postgres && self.storage.postgres_url.is_empty() {
            return bad(
                "storage.postgres_url",
                "is required when storage.backend = \"postgres\"",
            );
        }
        if !(1..=1000).contains(&self.storage.postgres_pool_size) {
            return bad("storage.postgres_pool_size", "must be between 1 and 1000");
        }
        if self.state.backend == StateBackend::Redis && self.state.redis_url.is_empty() {
            return bad("state.redis_url", "is required when state.backend = \"redis\"");
        }
        if self.state.redis_prefix.chars().any(char::is_whitespace) {
            return bad("state.redis_prefix", "must not contain spaces");
        }
        let a = &self.auth;
        if !a.jwt_secret.is_empty() && a.jwt_secret.expose().len() < 32 {
            return bad(
                "auth.jwt_secret",
                "must be at least 32 bytes (or empty to generate one)",
            );
        }
        let hex32 = |k: &str| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit());
        if !a.totp_key.is_empty() && !hex32(a.totp_key.expose()) {
            return bad(
                "auth.totp_key",
                "must be 64 hex digits (32 bytes), e.g. from `openssl rand -hex 32`",
            );
        }
        if self.is_scaled() {
            // Every instance must sign, verify and unseal alike: keys made
            // up per data dir would split the cluster.
            for (key, missing) in [
                ("auth.jwt_secret", a.jwt_secret.is_empty()),
                ("auth.totp_key", a.totp_key.is_empty()),
            ] {
                if missing {
                    return bad(
                        key,
                        "is required when storage.backend = \"postgres\": every instance needs the same key \
                         (set it, or the matching _file key)",
                    );
                }
            }
        }
        if a.issuer.trim().is_empty() {
            return bad("auth.issuer", "must not be empty");
        }
        if a.access_ttl.0 < Duration::from_secs(10) {
            return bad("auth.access_ttl", "must be at least 10s");
        }
        if a.refresh_ttl.0 <= a.access_ttl.0 {
            return bad("auth.refresh_ttl", "must be longer than auth.access_ttl");
        }
        if a.lockout_threshold == 0 {
            return bad("auth.lockout_threshold", "must be at least 1");
        }
        if a.reauth_max_age.0 < Duration::from_secs(1) || a.reauth_max_age.0 > Duration::from_secs(86400) {
            return bad("auth.reauth_max_age", "must be from 1s to 24h");
        }
        if self.smtp.security == SmtpSecurity::None && !self.smtp.host.is_empty() {
            let host = self.smtp.host.as_str();
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .map(|ip| ip.is_loopback())
                    .unwrap_or(false);
            if !loopback {
                return bad("smtp.security", "\"none\" is only allowed with a loopback smtp.host");
            }
        }
        if tracing_subscriber::EnvFilter::try_new(&self.logging.level).is_err() {
            return bad("logging.level", "must be a level such as info, debug or warn");
        }
        if self.logging.retention_days == 0 {
            return bad("logging.retention_days", "must be at least 1");
        }
        for feed in &self.market.news_feeds {
            if !(feed.starts_with("http://") || feed.starts_with("https://")) {
                return bad(
                    "market.news_feeds",
                    &format!("`{}` must be an http(s) URL", redact_url(feed)),
                );
            }
        }
        Ok(())
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
    }

    fn validate_backup(&self) -> Result<(), ConfigError> {
        let b = &self.backup;
        let bad = |key: &str, why: &str| Err(ConfigError(format!("invalid config key backup.{key}: {why}")));
        if !b.enabled() {
            return Ok(());
        }
        if self.is_scaled() {
            return bad(
                "dir",
                "scheduled backups are for the embedded backend; back up PostgreSQL with its own tools (pg_dump)",
            );
        }
        if b.interval.0 < Duration::from_secs(1) {
            return bad("interval", "must be at least 1s");
        }
        if b.keep == 0 {
            return bad("keep", "must be at least 1");
        }
        if b.recipient.trim().is_empty() {
            return bad(
                "recipient",
                "is required with backup.dir: snapshots hold the server keys and are always encrypted \
                 (make a key with `fortfolio admin backup keygen FILE`)",
            );
        }
        // Fully parsed when the server starts (the age crate is not a
        // config concern).
        if !b.recipient.trim().starts_with("age1") {
            return bad("recipient", "must be an age public key (age1…)");
        }
        Ok(())
    }

    pub fn data_dir(&self) -> &Path {
        &self.storage.data_dir
    }
}

fn merge_file(merged: &mut toml::Value, defaults: &toml::Value, table: toml::Table) -> Result<(), ConfigError> {
    for (section, value) in table {
        let toml::Value::Table(keys) = value else {
            return Err(ConfigError(format!(
                "invalid config key {section}: must be a [{section}] table"
            )));
        };
        for (key, value) in keys {
            let full = format!("{section}.{key}");
            if defaults.get(&section).and_then(|s| s.get(&key)).is_none() {
                return Err(ConfigError(format!("unknown config key {full}")));
            }
            if let Some(toml::Value::Table(sec)) = merged.get_mut(&section) {
                sec.insert(key, value);
            }
        }
    }
    Ok(())
}

/// Sets `section.key` from a raw string, typed like the default value.
fn set_typed(
    merged: &mut toml::Value,
    defaults: &toml::Value,
    section: &str,
    key: &str,
    raw: &str,
) -> Result<(), ConfigError> {
    let full = format!("{section}.{key}");
    let default = defaults
        .get(section)
        .and_then(|s| s.get(key))
        .ok_or_else(|| ConfigError(format!("unknown config key {full}")))?;
    let bad = |what: &str| ConfigError(format!("invalid config key {full}: expected {what}"));
    let value = match default {
        toml::Value::Integer(_) => toml::Value::Integer(raw.trim().parse().map_err(|_| bad("an integer"))?),
        toml::Value::Boolean(_) => toml::Value::Boolean(raw.trim().parse().map_err(|_| bad("true or false"))?),
        toml::Value::Array(_) => {
            let t = raw.trim();
            if t.starts_with('[') {
                let parsed: toml::Table = format!("v = {t}")
                    .parse()
                    .map_err(|_| bad("a TOML array like [\"a\", \"b\"]"))?;
                parsed.get("v").cloned().ok_or_else(|| bad("an array"))?
            } else {
                toml::Value::Array(
                    t.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_string()))
                        .collect(),
                )
            }
        }
        _ => toml::Value::String(raw.to_string()),
    };
    if let Some(toml::Value::Table(sec)) = merged.get_mut(section) {
        sec.insert(key.to_string(), value);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)], file: Option<&str>) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        Config::load_from(file.map(|_| path.as_path()), &env, &Overrides::default())
    }

    #[test]
    fn example_documents_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("example.toml");
        std::fs::write(&path, EXAMPLE).unwrap();
        let parsed = Config::load_from(Some(&path), &[], &Overrides::default()).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn layers_apply_in_order() {
        let c = load(
            &[
                ("FORTFOLIO_SERVER__MAX_CONCURRENT_REQUESTS", "7"),
                ("FORTFOLIO_AUTH__ISSUER", "env"),
            ],
            Some("[server]\nmax_concurrent_requests = 3\n[auth]\naccess_ttl = \"5m\"\n"),
        )
        .unwrap();
        assert_eq!(c.server.max_concurrent_requests, 7);
        assert_eq!(c.auth.issuer, "env");
        assert_eq!(c.auth.access_ttl, Dur::secs(300));
        let env = vec![("FORTFOLIO_SERVER__BIND".to_string(), "127.0.0.1:1".to_string())];
        let o = Overrides {
            bind: Some("127.0.0.1:2".into()),
            ..Default::default()
        };
        let c = Config::load_from(None, &env, &o).unwrap();
        assert_eq!(c.server.bind.port(), 2);
    }

    #[test]
    fn errors_name_the_key() {
        let e = load(&[], Some("[server]\ntls = \"maybe\"\n")).unwrap_err().0;
        assert!(e.contains("server.tls"), "{e}");
        let e = load(&[("FORTFOLIO_AUTH__ACCESS_TTL", "soon")], None).unwrap_err().0;
        assert!(e.contains("auth.access_ttl"), "{e}");
        let e = load(&[], Some("[server]\nbogus = 1\n")).unwrap_err().0;
        assert!(e.contains("server.bogus"), "{e}");
        let e = load(&[("FORTFOLIO_RATE_LIMITS__LOGIN", "5 per minute")], None)
            .unwrap_err()
            .0;
        assert!(e.contains("rate_limits.login"), "{e}");
        let e = load(&[("FORTFOLIO_SERVER__MAX_BODY_BYTES", "lots")], None)
            .unwrap_err()
            .0;
        assert!(e.contains("server.max_body_bytes"), "{e}");
    }

    #[test]
    fn scaled_mode_takes_shared_keys_from_values_or_files() {
        let key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let pg = [
            ("FORTFOLIO_STORAGE__BACKEND", "postgres"),
            ("FORTFOLIO_STORAGE__POSTGRES_URL", "postgres://db/f"),
        ];
        let e = load(&pg, None).unwrap_err().0;
        assert!(e.contains("auth.jwt_secret") && e.contains("every instance"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let (jwt, totp, url) = (dir.path().join("jwt"), dir.path().join("totp"), dir.path().join("url"));
        std::fs::write(&jwt, "0123456789abcdef0123456789abcdef-from-file\n").unwrap();
        std::fs::write(&totp, format!("{key}\n")).unwrap();
        std::fs::write(&url, "postgres://app:pw@db/f\n").unwrap();
        let (jwt, totp, url) = (jwt.to_str().unwrap(), totp.to_str().unwrap(), url.to_str().unwrap());
        let c = load(
            &[
                ("FORTFOLIO_STORAGE__BACKEND", "postgres"),
                ("FORTFOLIO_STORAGE__POSTGRES_URL_FILE", url),
                ("FORTFOLIO_AUTH__JWT_SECRET_FILE", jwt),
                ("FORTFOLIO_AUTH__TOTP_KEY_FILE", totp),
            ],
            None,
        )
        .unwrap();
        assert_eq!(c.auth.jwt_secret.expose(), "0123456789abcdef0123456789abcdef-from-file");
        assert_eq!(c.auth.totp_key.expose(), key);
        assert_eq!(c.storage.postgres_url.expose(), "postgres://app:pw@db/f");
        assert!(c.is_scaled());
        let e = load(
            &[
                ("FORTFOLIO_AUTH__JWT_SECRET_FILE", jwt),
                ("FORTFOLIO_AUTH__JWT_SECRET", "0123456789abcdef0123456789abcdef-x"),
            ],
            None,
        )
        .unwrap_err()
        .0;
        assert!(e.contains("auth.jwt_secret_file") && e.contains("not both"), "{e}");
        let e = load(&[("FORTFOLIO_AUTH__TOTP_KEY", "not-hex")], None).unwrap_err().0;
        assert!(e.contains("auth.totp_key") && !e.contains("not-hex"), "{e}");
        let e = load(&[("FORTFOLIO_AUTH__TOTP_KEY_FILE", "/nonexistent/totp")], None)
            .unwrap_err()
            .0;
        assert!(
            e.contains("auth.totp_key_file") && e.contains("/nonexistent/totp"),
            "{e}"
        );
    }

    #[test]
    fn redacts_secrets() {
        let c = load(
            &[
                (
                    "FORTFOLIO_AUTH__JWT_SECRET",
                    "0123456789abcdef0123456789abcdef-topsecret",
                ),
                ("FORTFOLIO_SMTP__PASSWORD", "smtp-pass-xyz"),
                ("FORTFOLIO_STATE__REDIS_URL", "redis://u:redispass@127.0.0.1:6379/0"),
                ("FORTFOLIO_STORAGE__POSTGRES_URL", "host=db password=pgpass"),
                ("FORTFOLIO_MARKET__NEWS_FEEDS", "https://r:feedpass@f.example/rss"),
                (
                    "FORTFOLIO_MARKET__PRICE_PROVIDER",
                    "https://q.example/{symbol}?apikey=provkey",
                ),
            ],
            None,
        )
        .unwrap();
        let out = c.redacted_toml();
        for secret in [
            "topsecret",
            "smtp-pass-xyz",
            "redispass",
            "pgpass",
            "feedpass",
            "provkey",
        ] {
            assert!(!out.contains(secret), "{secret} in {out}");
        }
        assert!(out.contains("https://r:***@f.example/rss"), "{out}");
        assert!(!format!("{c:?}").contains("feedpass") && !format!("{c:?}").contains("provkey"));
        assert!(out.contains("[redacted]"));
        assert!(!format!("{c:?}").contains("topsecret"));
    }

    #[test]
    fn redact_url_hides_passwords_and_secret_parameters() {
        for (url, shown) in [
            ("https://feeds.example/rss", "https://feeds.example/rss"),
            (
                "https://reader:s3cret@feeds.example/rss?page=2",
                "https://reader:***@feeds.example/rss?page=2",
            ),
            ("redis://:s3cret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
            ("https://token-only@host.example/", "https://token-only@host.example/"),
            (
                "postgres://app:pw%40x@db:5432/f?sslmode=require&password=s3cret",
                "postgres://app:***@db:5432/f?sslmode=require&password=***",
            ),
            (
                "https://q.example/v1/{symbol}?apikey=A1&api_key=A2&X-Api-Key=A3&accessToken=A4&format=json",
                "https://q.example/v1/{symbol}?apikey=***&api_key=***&X-Api-Key=***&accessToken=***&format=json",
            ),
            (
                "https://h.example/p?pass=1&pwd=2&token=3&key=4&secret=5&access_token=6&auth=7&signature=8#sig=9",
                "https://h.example/p?pass=***&pwd=***&token=***&key=***&secret=***&access_token=***&auth=***&signature=***#sig=***",
            ),
            ("https://u:p@h.example?key=k", "https://u:***@h.example?key=***"),
            ("not a url?token=t", "not a url?token=***"),
            ("", ""),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn type_errors_of_secret_keys_do_not_echo_the_value() {
        for (file, key) in [
            ("[auth]\njwt_secret = 1234567890123456789\n", "auth.jwt_secret"),
            ("[smtp]\npassword = 1234567890123456789\n", "smtp.password"),
            (
                "[market]\nnews_feeds = \"https://u:1234567890123456789@f.example\"\n",
                "market.news_feeds",
            ),
            ("[market]\nnews_feeds = [1234567890123456789]\n", "market.news_feeds[0]"),
            (
                "[market]\nnews_feeds = [\"ftp://u:1234567890123456789@f.example\"]\n",
                "market.news_feeds",
            ),
        ] {
            let e = load(&[], Some(file)).unwrap_err().0;
            assert!(e.contains(key) && !e.contains("1234567890123456789"), "{e}");
        }
        let e = load(&[], Some("[server]\nmax_body_bytes = \"lots\"\n")).unwrap_err().0;
        assert!(e.contains("\"lots\""), "other keys keep the value: {e}");
    }

    #[test]
    fn durations_and_rates_parse() {
        assert_eq!(Dur::parse("7d").unwrap(), Dur::secs(7 * 86400));
        assert_eq!(Dur::parse("500ms").unwrap().0, Duration::from_millis(500));
        assert!(Dur::parse("5").is_err());
        assert_eq!(Rate::parse("3/min").unwrap(), Rate::per_minute(3));
        assert!(Rate::parse("0/min").is_err());
        assert_eq!(Dur::secs(900).to_string(), "15m");
    }
}
