//! The security-event pipeline (SPEC §5.10): every security decision emits
//! one typed event, which goes to `<logging.dir>/security.log` (a text line),
//! `<logging.dir>/security.json` (a JSON line), the store (queryable by the
//! user and the admin) and — for the events that matter to the user — an
//! alert email in the outbox, written in the same transaction as the event.
//!
//! Events never carry passwords, tokens, codes or secrets: callers pass only
//! the fields below, and `details` holds reasons and ids.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use super::alerts::{self, AlertKind};
use super::audit::{self, AuditKey, Break, ChainReport};
use super::client::ClientInfo;
use crate::domain::{new_id, rfc3339};
use crate::store::{ChainCut, ChainLink, EventFilter, EventRecord, EventWrite, OutboxMessage, Store, UserRecord};

/// The event types of SPEC §5.10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Register,
    LoginSuccess,
    LoginFailure,
    TwoFactorChallenge,
    TwoFactorFailure,
    TwoFactorEnabled,
    TwoFactorDisabled,
    BackupCodeUsed,
    AccountLocked,
    AccountUnlocked,
    TokenRefreshed,
    RefreshTokenReused,
    Logout,
    SessionRevoked,
    PasswordChanged,
    NewDeviceLogin,
    RateLimited,
    CsrfFailed,
    DeviceRevoked,
    AccountDisabled,
    AccountEnabled,
    TwoFactorReset,
    RoleChanged,
    /// A signed-in user proved their password or code again (step-up).
    Reauthenticated,
    /// An admin acted on an account through the admin API; recorded on the
    /// admin's own account (the target's account gets the action's event).
    AdminAction,
    /// The shared state (Redis) stopped answering; serving from local state.
    StateDegraded,
    StateRecovered,
    /// A verification link was mailed (registration or resend).
    EmailVerificationSent,
    EmailVerified,
    /// A reset link was asked for (mailed when the account exists).
    PasswordResetRequested,
    /// The password was set from a reset link.
    PasswordReset,
    /// A change of address was asked for: a link to the new address, an
    /// alert with a cancel link to the old one.
    EmailChangeRequested,
    EmailChanged,
    EmailChangeCancelled,
    /// Opens each security log file; its `prev_hash` is where the file
    /// continues the chain from.
    LogFileStarted,
    /// A retention purge's signed record of where it cut the chain.
    AuditCheckpoint,
    /// A scheduled backup was written (details: file, bytes, records).
    BackupWritten,
    /// A scheduled backup failed (details: file, reason).
    BackupFailed,
}

impl EventType {
    pub const ALL: [EventType; 38] = [
        EventType::Register,
        EventType::LoginSuccess,
        EventType::LoginFailure,
        EventType::TwoFactorChallenge,
        EventType::TwoFactorFailure,
        EventType::TwoFactorEnabled,
        EventType::TwoFactorDisabled,
        EventType::BackupCodeUsed,
        EventType::AccountLocked,
        EventType::AccountUnlocked,
        EventType::TokenRefreshed,
        EventType::RefreshTokenReused,
        EventType::Logout,
        EventType::SessionRevoked,
        EventType::PasswordChanged,
        EventType::NewDeviceLogin,
        EventType::RateLimited,
        EventType::CsrfFailed,
        EventType::DeviceRevoked,
        EventType::AccountDisabled,
        EventType::AccountEnabled,
        EventType::TwoFactorReset,
        EventType::RoleChanged,
        EventType::Reauthenticated,
        EventType::AdminAction,
        EventType::StateDegraded,
        EventType::StateRecovered,
        EventType::EmailVerificationSent,
        EventType::EmailVerified,
        EventType::PasswordResetRequested,
        EventType::PasswordReset,
        EventType::EmailChangeRequested,
        EventType::EmailChanged,
        EventType::EmailChangeCancelled,
        EventType::LogFileStarted,
        EventType::AuditCheckpoint,
        EventType::BackupWritten,
        EventType::BackupFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Register => "register",
            EventType::LoginSuccess => "login_success",
            EventType::LoginFailure => "login_failure",
            EventType::TwoFactorChallenge => "two_factor_challenge",
            EventType::TwoFactorFailure => "two_factor_failure",
            EventType::TwoFactorEnabled => "two_factor_enabled",
            EventType::TwoFactorDisabled => "two_factor_disabled",
            EventType::BackupCodeUsed => "backup_code_used",
            EventType::AccountLocked => "account_locked",
            EventType::AccountUnlocked => "account_unlocked",
            EventType::TokenRefreshed => "token_refreshed",
            EventType::RefreshTokenReused => "refresh_token_reused",
            EventType::Logout => "logout",
            EventType::SessionRevoked => "session_revoked",
            EventType::PasswordChanged => "password_changed",
            EventType::NewDeviceLogin => "new_device_login",
            EventType::RateLimited => "rate_limited",
            EventType::CsrfFailed => "csrf_failed",
            EventType::DeviceRevoked => "device_revoked",
            EventType::AccountDisabled => "account_disabled",
            EventType::AccountEnabled => "account_enabled",
            EventType::TwoFactorReset => "two_factor_reset",
            EventType::RoleChanged => "role_changed",
            EventType::Reauthenticated => "reauthenticated",
            EventType::AdminAction => "admin_action",
            EventType::StateDegraded => "state_degraded",
            EventType::StateRecovered => "state_recovered",
            EventType::EmailVerificationSent => "email_verification_sent",
            EventType::EmailVerified => "email_verified",
            EventType::PasswordResetRequested => "password_reset_requested",
            EventType::PasswordReset => "password_reset",
            EventType::EmailChangeRequested => "email_change_requested",
            EventType::EmailChanged => "email_changed",
            EventType::EmailChangeCancelled => "email_change_cancelled",
            EventType::LogFileStarted => super::audit::LOG_FILE_STARTED,
            EventType::AuditCheckpoint => super::audit::CHECKPOINT,
            EventType::BackupWritten => "backup_written",
            EventType::BackupFailed => "backup_failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    fn index(self) -> usize {
        Self::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    /// The alert a user gets for this event, if any.
    fn alert(self) -> Option<AlertKind> {
        match self {
            EventType::AccountLocked => Some(AlertKind::AccountLocked),
            EventType::NewDeviceLogin => Some(AlertKind::NewDevice),
            EventType::TwoFactorEnabled => Some(AlertKind::TwoFactorEnabled),
            EventType::TwoFactorDisabled => Some(AlertKind::TwoFactorDisabled),
            EventType::PasswordChanged => Some(AlertKind::PasswordChanged),
            EventType::AccountDisabled => Some(AlertKind::AccountDisabled),
            EventType::TwoFactorReset => Some(AlertKind::TwoFactorReset),
            EventType::PasswordReset => Some(AlertKind::PasswordReset),
            EventType::EmailChanged => Some(AlertKind::EmailChanged),
            EventType::EmailChangeCancelled => Some(AlertKind::EmailChangeCancelled),
            _ => None,
        }
    }
}

/// An event being emitted.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub kind: EventType,
    pub success: bool,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub client: Option<ClientInfo>,
    pub details: Value,
    /// Mails that carry a token (verification, reset, email change), queued
    /// with the event.
    pub mails: Vec<TokenMail>,
}

/// A mail carrying a single-use token: the stored bodies hold `{{token}}`
/// and the token waits sealed beside them (see `alerts`).
#[derive(Clone)]
pub struct TokenMail {
    pub kind: AlertKind,
    pub to: String,
    /// Sealed with the server key under the recipient address.
    pub sealed_token: String,
    /// The link, with `{{token}}` where the token goes.
    pub link: String,
}

impl std::fmt::Debug for TokenMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMail")
            .field("kind", &self.kind)
            .field("to", &self.to)
            .finish_non_exhaustive()
    }
}

impl NewEvent {
    pub fn success(kind: EventType) -> Self {
        Self::new(kind, true)
    }

    pub fn failure(kind: EventType) -> Self {
        Self::new(kind, false)
    }

    fn new(kind: EventType, success: bool) -> Self {
        Self {
            kind,
            success,
            user_id: None,
            email: None,
            client: None,
            details: json!({}),
            mails: Vec::new(),
        }
    }

    pub fn mail(mut self, m: TokenMail) -> Self {
        self.mails.push(m);
        self
    }

    pub fn user(mut self, u: &UserRecord) -> Self {
        self.user_id = Some(u.id.clone());
        self.email = Some(u.email.clone());
        self
    }

    /// The account when it exists, else the email as the client typed it
    /// (failures on unknown accounts).
    pub fn who(self, user: Option<&UserRecord>, typed_email: &str) -> Self {
        match user {
            Some(u) => self.user(u),
            None => self.email(typed_email),
        }
    }

    pub fn user_id(mut self, id: &str) -> Self {
        self.user_id = Some(id.to_string());
        self
    }

    /// The email as typed by the client (for failures on unknown accounts).
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.trim().chars().take(254).collect());
        self
    }

    pub fn client(mut self, c: &ClientInfo) -> Self {
        self.client = Some(c.clone());
        self
    }

    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(key.to_string(), value.into());
        }
        self
    }
}

/// Current and rotated log files; rotation happens at the first write of a
/// new UTC day, renaming `security.log` to `security.log.<day>`. Each new
/// `security.json` begins with a `log_file_started` link.
struct LogFiles {
    dir: PathBuf,
    day: NaiveDate,
    text: File,
    json: File,
    /// The next write opens the file's chain with a `log_file_started` link.
    needs_header: bool,
}

const TEXT: &str = "security.log";
const JSON: &str = "security.json";

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

impl LogFiles {
    /// Opens the current files; also returns the last link they hold.
    fn open(dir: &Path) -> std::io::Result<(Self, Option<ChainLink>)> {
        std::fs::create_dir_all(dir)?;
        let text_path = dir.join(TEXT);
        // A file left from an earlier day belongs to that day.
        let day = std::fs::metadata(&text_path)
            .and_then(|m| m.modified())
            .map(|t| DateTime::<Utc>::from(t).date_naive())
            .unwrap_or_else(|_| Utc::now().date_naive());
        let link_of = |line: String| parse_line(&line).ok().and_then(|e| e.link);
        let current = last_line_of(&dir.join(JSON)).and_then(link_of);
        // The chain opens the current file unless it already runs in it.
        let needs_header = current.is_none();
        // Else the chain continues from the newest file with a last line.
        let last = current.or_else(|| {
            json_files(dir)
                .iter()
                .rev()
                .find_map(|f| last_line_of(f))
                .and_then(link_of)
        });
        Ok((
            Self {
                dir: dir.to_path_buf(),
                day,
                text: open_append(&text_path)?,
                json: open_append(&dir.join(JSON))?,
                needs_header,
            },
            last,
        ))
    }

    fn rotate_if_needed(&mut self, today: NaiveDate) -> std::io::Result<()> {
        if today == self.day {
            return Ok(());
        }
        let empty = [TEXT, JSON]
            .iter()
            .all(|name| std::fs::metadata(self.dir.join(name)).is_ok_and(|m| m.len() == 0));
        if empty {
            // Nothing written yet: the files belong to the new day.
            self.day = today;
            return Ok(());
        }
        for name in [TEXT, JSON] {
            let from = self.dir.join(name);
            let to = self.dir.join(format!("{name}.{}", self.day));
            if from.exists() && !to.exists() {
                std::fs::rename(&from, &to)?;
            }
        }
        self.text = open_append(&self.dir.join(TEXT))?;
        self.json = open_append(&self.dir.join(JSON))?;
        self.day = today;
        self.needs_header = true;
        Ok(())
    }

    /// One `write` per line and file: `writeln!` on a `File` made two
    /// (the line, then the newline), and one append is never torn.
    fn write(&mut self, e: &EventRecord) -> std::io::Result<()> {
        for (file, mut line) in [(&mut self.text, text_line(e)), (&mut self.json, json_line(e))] {
            line.push('\n');
            file.write_all(line.as_bytes())?;
        }
        Ok(())
    }
}

/// The day of a rotated file `<base>.YYYY-MM-DD`.
fn file_day(name: &str, base: &str) -> Option<NaiveDate> {
    let day = name.strip_prefix(base)?.strip_prefix('.')?;
    NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()
}

/// The JSON log files oldest first: `security.json.<day>` by day, then
/// `security.json`.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(NaiveDate, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let day = file_day(&entry.file_name().to_string_lossy(), JSON)?;
            Some((day, entry.path()))
        })
        .collect();
    rotated.sort();
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    let current = dir.join(JSON);
    if current.exists() {
        out.push(current);
    }
    out
}

/// The last non-empty line of a file, reading only its tail (a day's log
/// can be large; one line is far below 64 KiB).
fn last_line_of(path: &Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    const TAIL: u64 = 64 * 1024;
    let mut f = File::open(path).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(TAIL))).ok()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string)
}

/// A `security.json` line as written by [`json_line`].
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    id: String,
    timestamp: String,
    event: String,
    outcome: String,
    user_id: Option<String>,
    email: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: Value,
    #[serde(default)]
    chain: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    #[serde(default)]
    prev_hash: Option<String>,
    #[serde(default)]
    hash: Option<String>,
}

/// Reads a `security.json` line back into the event it records.
fn parse_line(line: &str) -> Result<EventRecord, String> {
    let l: Line = serde_json::from_str(line).map_err(|e| format!("not an event line ({e})"))?;
    let timestamp = DateTime::parse_from_rfc3339(&l.timestamp)
        .map_err(|e| format!("bad timestamp ({e})"))?
        .with_timezone(&Utc);
    let link = match (l.chain, l.seq, l.prev_hash, l.hash) {
        (Some(chain), Some(seq), Some(prev_hash), Some(hash)) => Some(ChainLink {
            chain,
            seq,
            prev_hash,
            hash,
        }),
        (None, None, None, None) => None,
        _ => return Err("a partial chain link".into()),
    };
    Ok(EventRecord {
        id: l.id,
        timestamp,
        event: l.event,
        outcome: l.outcome,
        user_id: l.user_id,
        email: l.email,
        ip: l.ip,
        user_agent: l.user_agent,
        request_id: l.request_id,
        details: l.details,
        link,
    })
}

/// `s` with every control character (C0, DEL, C1), the Unicode line and
/// paragraph separators and the bidirectional overrides written as JSON
/// escapes (`\n`, `\u001b`, `\u2028`), so it can neither end a line, nor
/// drive a terminal, nor reorder what is shown. Compact JSON text (which has
/// such characters only inside strings) stays valid JSON.
pub fn escape_controls(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || matches!(c, '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}') => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out
}

/// A text-line value: `-` when absent, else a JSON string literal (quotes,
/// backslashes and control characters escaped), so a client-chosen value
/// cannot end the line or pose as another field.
fn text_value(v: Option<&str>) -> String {
    v.map_or_else(
        || "-".to_string(),
        |s| escape_controls(&serde_json::to_string(s).unwrap_or_default()),
    )
}

/// One event, one line: `<timestamp> <event> outcome=<outcome>` (server-made
/// words) then `key=value` pairs whose values are [`text_value`]s and
/// `details=` a JSON object.
fn text_line(e: &EventRecord) -> String {
    format!(
        "{} {} outcome={} user_id={} email={} ip={} request_id={} user_agent={} details={}",
        rfc3339(e.timestamp),
        e.event,
        e.outcome,
        text_value(e.user_id.as_deref()),
        text_value(e.email.as_deref()),
        text_value(e.ip.as_deref()),
        text_value(e.request_id.as_deref()),
        text_value(e.user_agent.as_deref()),
        escape_controls(&e.details.to_string())
    )
}

/// The SPEC fields, in SPEC order, as one JSON object.
/// An event as the API, the admin listing and the JSON log show it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SecurityEvent)]
pub struct EventView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = DateTime, example = "2026-11-28T09:30:00.123456Z")]
    pub timestamp: String,
    /// The event type (`login_success`, `login_failure`, `account_locked`, …).
    #[schema(example = "login_success")]
    pub event: String,
    #[schema(example = "success")]
    pub outcome: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// Event-specific facts (e.g. `reason`, `group`); never secrets.
    #[schema(value_type = Object)]
    pub details: Value,
    /// The tamper-evident chain this event belongs to (one per instance);
    /// absent on events written before the chain existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "main")]
    pub chain: Option<String>,
    /// Its place in the chain: 1, 2, 3 …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The previous event's `hash` (64 zeros before the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    /// HMAC-SHA-256 (hex) over this event, `seq` and `prev_hash`, under a
    /// key derived from the server secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

impl From<&EventRecord> for EventView {
    fn from(e: &EventRecord) -> Self {
        Self {
            id: e.id.clone(),
            timestamp: rfc3339(e.timestamp),
            event: e.event.clone(),
            outcome: e.outcome.clone(),
            user_id: e.user_id.clone(),
            email: e.email.clone(),
            ip: e.ip.clone(),
            user_agent: e.user_agent.clone(),
            request_id: e.request_id.clone(),
            details: e.details.clone(),
            chain: e.link.as_ref().map(|l| l.chain.clone()),
            seq: e.link.as_ref().map(|l| l.seq),
            prev_hash: e.link.as_ref().map(|l| l.prev_hash.clone()),
            hash: e.link.as_ref().map(|l| l.hash.clone()),
        }
    }
}

pub fn event_json(e: &EventRecord) -> Value {
    serde_json::to_value(EventView::from(e)).unwrap_or_default()
}

/// serde_json escapes C0 controls; DEL, C1 and U+2028/2029 are escaped too,
/// so line-splitting readers (Python's `splitlines`) see one line per event.
fn json_line(e: &EventRecord) -> String {
    escape_controls(&event_json(e).to_string())
}

/// Rotated files whose day is older than `retention_days`.
fn expired_files(dir: &Path, retention_days: u32, today: NaiveDate) -> Vec<PathBuf> {
    let cutoff = today - chrono::Duration::days(i64::from(retention_days));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            let day = [TEXT, JSON].iter().find_map(|base| file_day(&name, base));
            day.is_some_and(|d| d < cutoff)
        })
        .map(|entry| entry.path())
        .collect();
    out.sort();
    out
}

/// The current files, and the chain they continue.
struct Sink {
    files: Option<LogFiles>,
    /// The newest link written (files or store, whichever is further).
    head: Option<ChainLink>,
}

/// What `admin events verify` found.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    /// Every chain in the store, checked.
    pub store: Vec<ChainReport>,
    /// This instance's log files, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<FilesReport>,
    /// The first broken link, if any.
    pub broken: Option<Break>,
}

#[derive(Debug, Serialize)]
pub struct FilesReport {
    pub files: Vec<String>,
    pub chain: Option<ChainReport>,
}

/// Where events go. Cheap to share.
pub struct SecurityLog {
    sink: Mutex<Sink>,
    dir: PathBuf,
    retention_days: u32,
    store: Arc<dyn Store>,
    counters: Vec<AtomicU64>,
    /// Wakes the outbox worker; `None` without SMTP (alerts are logged as
    /// undelivered instead of queued).
    mail_wakeup: Option<Arc<tokio::sync::Notify>>,
    key: AuditKey,
    /// This instance's chain.
    chain: String,
}

/// Where the log lives and how its chain is signed.
pub struct LogSetup {
    pub dir: PathBuf,
    pub retention_days: u32,
    pub key: AuditKey,
    /// The chain's name: `main` embedded, the host name in scaled mode.
    pub chain: String,
}

impl SecurityLog {
    /// Opens the log files and picks up the chain where the files or the
    /// store (whichever is further) left it.
    pub async fn open(setup: LogSetup, store: Arc<dyn Store>, mail_wakeup: Option<Arc<tokio::sync::Notify>>) -> Self {
        let LogSetup {
            dir,
            retention_days,
            key,
            chain,
        } = setup;
        let (files, file_head) = match LogFiles::open(&dir) {
            Ok((f, head)) => (Some(f), head.filter(|l| l.chain == chain)),
            Err(e) => {
                tracing::error!(error = %e, dir = %dir.display(), "cannot open security log files; events go to the store and console only");
                (None, None)
            }
        };
        let store_head = match store.chain_head(&chain).await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the event chain's head from the store");
                None
            }
        };
        let head = match (file_head, store_head) {
            (Some(f), Some(s)) => Some(if s.seq > f.seq { s } else { f }),
            (f, s) => f.or(s),
        };
        Self {
            sink: Mutex::new(Sink { files, head }),
            dir,
            retention_days,
            store,
            counters: EventType::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            mail_wakeup,
            key,
            chain,
        }
    }

    /// Records an event everywhere it belongs. Never fails the caller: a
    /// failing sink is logged, and the others still get the event.
    pub async fn emit(&self, ev: NewEvent) {
        self.emit_at(ev, Utc::now()).await;
    }

    async fn emit_at(&self, ev: NewEvent, now: DateTime<Utc>) {
        let records = self.prepare_at(&ev, now);
        let queued = records.iter().any(|r| !r.mails.is_empty());
        for r in records {
            if let Err(e) = self.store.record_event(r.event, r.mails).await {
                tracing::error!(error = %e, "cannot store a security event");
            }
        }
        if queued {
            self.wake_mailer();
        }
    }

    /// Everything [`Self::emit`] does but the store's write, which is left
    /// to the caller (a sign-in stores its events in the transaction that
    /// opens its session): counted, logged, linked into the chain and
    /// written to the files. Returns what the store must get, in chain
    /// order; wake the mailer ([`Self::wake_mailer`]) once it holds them
    /// if any carries mail.
    pub fn prepare(&self, ev: &NewEvent) -> Vec<EventWrite> {
        self.prepare_at(ev, Utc::now())
    }

    fn prepare_at(&self, ev: &NewEvent, now: DateTime<Utc>) -> Vec<EventWrite> {
        if let Some(c) = self.counters.get(ev.kind.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let record = new_record(ev, now);
        tracing::info!(target: "security", event = %record.event, outcome = %record.outcome, user_id = ?record.user_id, ip = ?record.ip, "security event");
        self.append(record)
            .into_iter()
            .map(|event| {
                let mails = if event.event == ev.kind.as_str() {
                    self.mails_for(ev, &event)
                } else {
                    Vec::new()
                };
                EventWrite { event, mails }
            })
            .collect()
    }

    /// Tells the outbox worker that mail was stored (nothing without SMTP).
    pub fn wake_mailer(&self) {
        if let Some(n) = &self.mail_wakeup {
            n.notify_one();
        }
    }

    /// Links `record` into the chain and writes it to the files, opening a
    /// new file's chain with a `log_file_started` link first; returns what
    /// the store must get, in chain order.
    fn append(&self, record: EventRecord) -> Vec<EventRecord> {
        let mut sink = self.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Sink { files, head } = &mut *sink;
        let mut out = Vec::with_capacity(2);
        if let Some(f) = files.as_mut() {
            if let Err(e) = f.rotate_if_needed(record.timestamp.date_naive()) {
                tracing::error!(error = %e, "cannot rotate the security log");
            }
            if f.needs_header {
                let header = NewEvent::success(EventType::LogFileStarted)
                    .detail("file", JSON)
                    .detail("continues_from_seq", head.as_ref().map_or(0, |h| h.seq))
                    .detail(
                        "continues_from_hash",
                        head.as_ref().map_or(audit::GENESIS, |h| h.hash.as_str()),
                    );
                out.push(new_record(&header, record.timestamp));
            }
        }
        out.push(record);
        for r in &mut out {
            let link = self.key.link(r, &self.chain, head.as_ref());
            r.link = Some(link.clone());
            *head = Some(link);
            if let Some(f) = files.as_mut() {
                match f.write(r) {
                    Ok(()) => f.needs_header = false,
                    Err(e) => tracing::error!(error = %e, "cannot write the security log"),
                }
            }
        }
        out
    }

    /// The alert this event causes and the token mails it carries, unless
    /// no SMTP server is configured.
    fn mails_for(&self, ev: &NewEvent, r: &EventRecord) -> Vec<OutboxMessage> {
        let mut out = Vec::new();
        if let (Some(kind), Some(to), Some(_)) = (ev.kind.alert(), &r.email, &r.user_id) {
            out.push(alert_message(kind, to, r, None));
        }
        out.extend(ev.mails.iter().map(|m| alert_message(m.kind, &m.to, r, Some(m))));
        if !out.is_empty() && self.mail_wakeup.is_none() {
            tracing::warn!(event = %r.event, user_id = ?r.user_id, "alert undelivered: no smtp.host configured");
            out.clear();
        }
        out
    }

    /// Events emitted since start, per type (for metrics).
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        EventType::ALL
            .iter()
            .zip(&self.counters)
            .map(|(t, c)| (t.as_str(), c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Applies the retention to this instance's rotated log files: first a
    /// signed checkpoint naming the link the oldest kept file begins with,
    /// then the deletion.
    pub async fn purge_log_files(&self) {
        self.purge_log_files_at(Utc::now()).await;
    }

    async fn purge_log_files_at(&self, now: DateTime<Utc>) {
        let old = expired_files(&self.dir, self.retention_days, now.date_naive());
        if old.is_empty() {
            return;
        }
        let first_kept = json_files(&self.dir)
            .into_iter()
            .filter(|f| !old.contains(f))
            .find_map(|f| first_link(&f));
        let names: Vec<String> = old
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        let cuts: Vec<ChainCut> = first_kept
            .into_iter()
            .map(|l| ChainCut {
                chain: l.chain,
                first_kept_seq: l.seq,
                prev_hash: l.prev_hash,
            })
            .collect();
        self.emit_at(
            NewEvent::success(EventType::AuditCheckpoint)
                .detail("scope", "files")
                .detail("cuts", serde_json::to_value(&cuts).unwrap_or_default())
                .detail("files_removed", names),
            now,
        )
        .await;
        let mut removed = 0;
        for path in &old {
            match std::fs::remove_file(path) {
                Ok(()) => removed += 1,
                Err(e) => tracing::error!(error = %e, file = %path.display(), "cannot apply log retention"),
            }
        }
        tracing::info!(removed, "old security log files deleted");
    }

    /// Applies the retention to the stored events (shared by instances):
    /// first a signed checkpoint naming where each chain is cut, then the
    /// deletion.
    pub async fn purge_stored_events(&self) {
        let before = Utc::now() - chrono::Duration::days(i64::from(self.retention_days));
        self.purge_stored_events_before(before).await;
    }

    pub async fn purge_stored_events_before(&self, before: DateTime<Utc>) {
        let cuts = match self.store.purge_plan(before).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot plan the purge of old security events");
                return;
            }
        };
        if !cuts.is_empty() {
            self.emit(
                NewEvent::success(EventType::AuditCheckpoint)
                    .detail("scope", "store")
                    .detail("cuts", serde_json::to_value(&cuts).unwrap_or_default()),
            )
            .await;
        }
        match self.store.purge_events(before, &cuts).await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "old security events deleted"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot purge old security events"),
        }
    }

    /// Checks every chain in the store and, with `files`, this instance's
    /// log files; stops at the first broken link.
    pub async fn verify(&self, files: bool) -> StoreResultAudit {
        let mut events = self
            .store
            .events(EventFilter {
                limit: usize::MAX,
                ..EventFilter::default()
            })
            .await?;
        let anchors = audit::anchors(&self.key, events.iter(), "store");
        events.sort_by(|a, b| {
            let key = |e: &EventRecord| e.link.as_ref().map(|l| (l.chain.clone(), l.seq));
            key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
        });
        let mut report = AuditReport {
            store: Vec::new(),
            files: None,
            broken: None,
        };
        let mut by_chain: Vec<(Option<String>, Vec<audit::Entry>)> = Vec::new();
        for e in events {
            let chain = e.link.as_ref().map(|l| l.chain.clone());
            let entry = audit::Entry {
                position: format!("stored event {} ({})", e.id, e.event),
                event: e,
            };
            match by_chain.last_mut() {
                Some((c, list)) if *c == chain => list.push(entry),
                _ => by_chain.push((chain, vec![entry])),
            }
        }
        let unchained = by_chain
            .iter()
            .find(|(c, _)| c.is_none())
            .map_or(0, |(_, l)| l.len() as u64);
        for (chain, entries) in by_chain.iter().filter(|(c, _)| c.is_some()) {
            match audit::verify(&self.key, entries, &anchors) {
                Ok(Some(mut r)) => {
                    if chain.as_deref() == Some(self.chain.as_str()) {
                        r.unchained = unchained;
                    }
                    report.store.push(r);
                }
                Ok(None) => {}
                Err(b) => {
                    report.broken = Some(b);
                    return Ok(report);
                }
            }
        }
        if files {
            // Held while reading, so no line is half-written meanwhile.
            let _sink = self.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let (files_report, broken) = verify_files(&self.key, &self.dir);
            report.files = Some(files_report);
            report.broken = broken;
        }
        Ok(report)
    }
}

/// The record of an event emitted at `now`, not yet linked.
fn new_record(ev: &NewEvent, now: DateTime<Utc>) -> EventRecord {
    EventRecord {
        id: new_id(),
        timestamp: now,
        event: ev.kind.as_str().to_string(),
        outcome: if ev.success { "success" } else { "failure" }.to_string(),
        user_id: ev.user_id.clone(),
        email: ev.email.clone(),
        ip: ev.client.as_ref().map(|c| c.ip.to_string()),
        user_agent: ev.client.as_ref().map(|c| c.user_agent.clone()),
        request_id: ev.client.as_ref().and_then(|c| c.request_id.clone()),
        details: ev.details.clone(),
        link: None,
    }
}

/// What [`SecurityLog::verify`] answers.
pub type StoreResultAudit = Result<AuditReport, crate::store::StoreError>;

/// The first link in a log file.
fn first_link(path: &Path) -> Option<ChainLink> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| parse_line(l).ok().and_then(|e| e.link))
}

/// Checks the log files in `dir` as one chain, each file opening with its
/// `log_file_started` link.
fn verify_files(key: &AuditKey, dir: &Path) -> (FilesReport, Option<Break>) {
    let paths = json_files(dir);
    let names: Vec<String> = paths
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let mut report = FilesReport {
        files: names.clone(),
        chain: None,
    };
    let mut entries = Vec::new();
    for (path, name) in paths.iter().zip(&names) {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                let broken = Break {
                    position: name.clone(),
                    seq: None,
                    problem: format!("cannot be read: {e}"),
                };
                return (report, Some(broken));
            }
        };
        let mut opened = false;
        for (i, line) in text.lines().enumerate() {
            let position = format!("{name} line {}", i + 1);
            if line.trim().is_empty() {
                continue;
            }
            let event = match parse_line(line) {
                Ok(e) => e,
                Err(problem) => {
                    let broken = Break {
                        position,
                        seq: None,
                        problem: format!("{problem}: the line was edited"),
                    };
                    return (report, Some(broken));
                }
            };
            if let Some(link) = &event.link {
                if !opened && event.event != audit::LOG_FILE_STARTED {
                    let broken = Break {
                        position,
                        seq: Some(link.seq),
                        problem: format!(
                            "{name} does not open with its log_file_started link: its first lines were deleted"
                        ),
                    };
                    return (report, Some(broken));
                }
                opened = true;
            }
            entries.push(audit::Entry { position, event });
        }
    }
    let anchors = audit::anchors(key, entries.iter().map(|e| &e.event), "files");
    match audit::verify(key, &entries, &anchors) {
        Ok(chain) => {
            report.chain = chain;
            (report, None)
        }
        Err(b) => (report, Some(b)),
    }
}

fn alert_message(kind: AlertKind, to: &str, e: &EventRecord, token: Option<&TokenMail>) -> OutboxMessage {
    let (subject, text, html) = alerts::render(kind, e, token.map(|t| t.link.as_str()));
    OutboxMessage {
        id: new_id(),
        to: to.to_string(),
        subject,
        text,
        html,
        event_id: e.id.clone(),
        created_at: e.timestamp,
        attempts: 0,
        next_attempt_at: e.timestamp,
        last_error: None,
        sealed_token: token.map(|t| t.sealed_token.clone()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::store::redb::RedbStore;

    async fn log_in(dir: &Path, retention_days: u32) -> SecurityLog {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(&dir.join("data")).unwrap());
        let setup = LogSetup {
            dir: dir.join("logs"),
            retention_days,
            key: AuditKey::derive(b"server secret"),
            chain: "main".into(),
        };
        SecurityLog::open(setup, store, None).await
    }

    fn login(n: usize) -> NewEvent {
        NewEvent::success(EventType::LoginSuccess)
            .email(&format!("user{n}@example.com"))
            .detail("n", n)
    }

    fn broken_at(report: &AuditReport) -> (String, String) {
        let b = report.broken.as_ref().expect("a broken link");
        (b.position.clone(), b.problem.clone())
    }

    /// Rewrites line `n` (1-based) of the current security.json.
    fn edit_json(dir: &Path, f: impl FnOnce(&mut Vec<String>)) {
        let path = dir.join("logs").join(JSON);
        let mut lines: Vec<String> = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        f(&mut lines);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    }

    #[tokio::test]
    async fn the_files_and_the_store_carry_one_chain_and_edits_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), 90).await;
        for n in 0..6 {
            log.emit(login(n)).await;
        }
        let ok = log.verify(true).await.unwrap();
        assert!(ok.broken.is_none(), "{:?}", ok.broken);
        assert_eq!(ok.store[0].last_seq, 7, "a log_file_started link and six events");
        assert_eq!(ok.files.as_ref().unwrap().chain.as_ref().unwrap().last_seq, 7);
        let first = std::fs::read_to_string(dir.path().join("logs").join(JSON)).unwrap();
        assert!(first.lines().next().unwrap().contains("\"event\":\"log_file_started\""));

        // One byte of one line's details.
        edit_json(dir.path(), |l| l[3] = l[3].replace("\"n\":2", "\"n\":3"));
        let (at, why) = broken_at(&log.verify(true).await.unwrap());
        assert_eq!(at, "security.json line 4");
        assert!(why.contains("edited"), "{why}");
        edit_json(dir.path(), |l| l[3] = l[3].replace("\"n\":3", "\"n\":2"));
        assert!(log.verify(true).await.unwrap().broken.is_none());

        // A line deleted.
        let saved = std::fs::read_to_string(dir.path().join("logs").join(JSON)).unwrap();
        edit_json(dir.path(), |l| {
            l.remove(4);
        });
        let (at, why) = broken_at(&log.verify(true).await.unwrap());
        assert_eq!(at, "security.json line 5");
        assert!(why.contains("1 event(s) deleted (seq 5)"), "{why}");
        std::fs::write(dir.path().join("logs").join(JSON), &saved).unwrap();

        // Two lines swapped.
        edit_json(dir.path(), |l| l.swap(2, 3));
        let (at, why) = broken_at(&log.verify(true).await.unwrap());
        assert_eq!(at, "security.json line 3");
        assert!(why.contains("reordered"), "{why}");
        std::fs::write(dir.path().join("logs").join(JSON), &saved).unwrap();

        // A stored event edited.
        let mut events = log
            .store
            .events(EventFilter {
                limit: 100,
                ..EventFilter::default()
            })
            .await
            .unwrap();
        let mut e = events.remove(2);
        e.details = json!({"n": 99});
        let id = e.id.clone();
        log.store.record_event(e, vec![]).await.unwrap();
        let (at, why) = broken_at(&log.verify(false).await.unwrap());
        assert!(at.contains(&id), "{at}");
        assert!(why.contains("edited"), "{why}");
    }

    #[tokio::test]
    async fn a_log_rotated_over_days_and_purged_by_retention_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_in(dir.path(), 1).await;
        let day = |d: i64| Utc::now() - chrono::Duration::days(d);
        for (n, ago) in [(0, 3), (1, 3), (2, 2), (3, 2), (4, 0)].into_iter() {
            log.emit_at(login(n), day(ago)).await;
        }
        let files = json_files(&dir.path().join("logs"));
        assert_eq!(files.len(), 3, "{files:?}");
        let report = log.verify(true).await.unwrap();
        assert!(report.broken.is_none(), "{:?}", report.broken);
        // Each file opens with its own log_file_started link.
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            assert!(
                text.lines().next().unwrap().contains("log_file_started"),
                "{}",
                f.display()
            );
        }

        // Retention (1 day): the two dated files go, behind a checkpoint.
        log.purge_log_files_at(Utc::now()).await;
        assert_eq!(json_files(&dir.path().join("logs")).len(), 1);
        log.purge_stored_events_before(day(1)).await;
        let report = log.verify(true).await.unwrap();
        assert!(report.broken.is_none(), "{:?}", report.broken);
        let store = &report.store[0];
        assert!(store.first_seq > 1, "the store was purged too: {store:?}");

        // Deleting the first lines of the kept file is not retention.
        edit_json(dir.path(), |l| {
            l.drain(..1);
        });
        let (_, why) = broken_at(&log.verify(true).await.unwrap());
        assert!(
            why.contains("log_file_started") || why.contains("no retention checkpoint"),
            "{why}"
        );
    }

    #[tokio::test]
    async fn a_restart_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = log_in(dir.path(), 90).await;
            log.emit(login(1)).await;
        }
        let log = log_in(dir.path(), 90).await;
        log.emit(login(2)).await;
        let report = log.verify(true).await.unwrap();
        assert!(report.broken.is_none(), "{:?}", report.broken);
        assert_eq!(report.store[0].last_seq, 3);
    }

    #[test]
    fn every_type_round_trips() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
    }

    #[test]
    fn retention_removes_only_old_dated_files() {
        let dir = tempfile::tempdir().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        for name in [
            "security.log",
            "security.json",
            "security.log.2026-11-27",
            "security.json.2026-08-01",
            "security.log.2026-08-30",
            "other.log.2020-01-01",
        ] {
            std::fs::write(dir.path().join(name), "x").unwrap();
        }
        let old = expired_files(dir.path(), 90, today);
        assert_eq!(old, vec![dir.path().join("security.json.2026-08-01")]);
        assert!(dir.path().join("security.log.2026-08-30").exists());
        assert!(dir.path().join("security.log").exists());
        assert!(dir.path().join("other.log.2020-01-01").exists());
    }

    #[test]
    fn client_text_stays_inside_one_quoted_field() {
        let forged = "x@example.com\n2026-01-01T00:00:00Z login_success outcome=success email=\"a\"\r\u{1b}[2J\u{85}\u{2028}\u{202e}";
        let e = EventRecord {
            id: "e1".into(),
            timestamp: Utc::now(),
            event: "login_failure".into(),
            outcome: "failure".into(),
            user_id: None,
            email: Some(forged.into()),
            ip: Some("203.0.113.9".into()),
            user_agent: None,
            request_id: None,
            details: json!({"reason": "unknown\u{9b}account"}),
            link: None,
        };
        for line in [text_line(&e), json_line(&e)] {
            assert!(
                !line
                    .chars()
                    .any(|c| c.is_control() || ('\u{2028}'..='\u{202e}').contains(&c)),
                "{line}"
            );
        }
        let text = text_line(&e);
        assert!(text.contains(
            r#" login_failure outcome=failure user_id=- email="x@example.com\n2026-01-01T00:00:00Z login_success outcome=success email=\"a\"\r\u001b[2J\u0085\u2028\u202e" "#
        ), "{text}");
        assert!(
            text.contains(r#" ip="203.0.113.9" request_id=- user_agent=- details={"reason":"unknown\u009baccount"}"#),
            "{text}"
        );
        let back: Value = serde_json::from_str(&json_line(&e)).unwrap();
        assert_eq!(back["email"], forged);
        assert_eq!(back["details"]["reason"], "unknown\u{9b}account");
    }
}
