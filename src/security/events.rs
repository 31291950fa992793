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
use super::client::ClientInfo;
use crate::domain::{new_id, rfc3339};
use crate::store::{EventRecord, OutboxMessage, Store, UserRecord};

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
}

impl EventType {
    pub const ALL: [EventType; 27] = [
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
        }
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
/// new UTC day, renaming `security.log` to `security.log.<day>`.
struct LogFiles {
    dir: PathBuf,
    day: NaiveDate,
    text: File,
    json: File,
}

const TEXT: &str = "security.log";
const JSON: &str = "security.json";

fn open_append(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

impl LogFiles {
    fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let text_path = dir.join(TEXT);
        // A file left from an earlier day belongs to that day.
        let day = std::fs::metadata(&text_path)
            .and_then(|m| m.modified())
            .map(|t| DateTime::<Utc>::from(t).date_naive())
            .unwrap_or_else(|_| Utc::now().date_naive());
        Ok(Self {
            dir: dir.to_path_buf(),
            day,
            text: open_append(&text_path)?,
            json: open_append(&dir.join(JSON))?,
        })
    }

    fn rotate_if_needed(&mut self, today: NaiveDate) -> std::io::Result<()> {
        if today == self.day {
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
        Ok(())
    }

    fn write(&mut self, e: &EventRecord) -> std::io::Result<()> {
        self.rotate_if_needed(e.timestamp.date_naive())?;
        writeln!(self.text, "{}", text_line(e))?;
        writeln!(self.json, "{}", json_line(e))?;
        Ok(())
    }
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

/// Deletes rotated files whose day is older than `retention_days`.
pub fn purge_files(dir: &Path, retention_days: u32, today: NaiveDate) -> std::io::Result<usize> {
    let cutoff = today - chrono::Duration::days(i64::from(retention_days));
    let mut removed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let day = [TEXT, JSON]
            .iter()
            .filter_map(|base| name.strip_prefix(&format!("{base}.")))
            .find_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        if day.is_some_and(|d| d < cutoff) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Where events go. Cheap to share.
pub struct SecurityLog {
    files: Mutex<Option<LogFiles>>,
    dir: PathBuf,
    retention_days: u32,
    store: Arc<dyn Store>,
    counters: Vec<AtomicU64>,
    /// Wakes the outbox worker; `None` without SMTP (alerts are logged as
    /// undelivered instead of queued).
    mail_wakeup: Option<Arc<tokio::sync::Notify>>,
}

impl SecurityLog {
    pub fn new(
        dir: &Path,
        retention_days: u32,
        store: Arc<dyn Store>,
        mail_wakeup: Option<Arc<tokio::sync::Notify>>,
    ) -> Self {
        let files = match LogFiles::open(dir) {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::error!(error = %e, dir = %dir.display(), "cannot open security log files; events go to the store and console only");
                None
            }
        };
        Self {
            files: Mutex::new(files),
            dir: dir.to_path_buf(),
            retention_days,
            store,
            counters: EventType::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            mail_wakeup,
        }
    }

    /// Records an event everywhere it belongs. Never fails the caller: a
    /// failing sink is logged, and the others still get the event.
    pub async fn emit(&self, ev: NewEvent) {
        let record = EventRecord {
            id: new_id(),
            timestamp: Utc::now(),
            event: ev.kind.as_str().to_string(),
            outcome: if ev.success { "success" } else { "failure" }.to_string(),
            user_id: ev.user_id.clone(),
            email: ev.email.clone(),
            ip: ev.client.as_ref().map(|c| c.ip.to_string()),
            user_agent: ev.client.as_ref().map(|c| c.user_agent.clone()),
            request_id: ev.client.as_ref().and_then(|c| c.request_id.clone()),
            details: ev.details.clone(),
        };
        if let Some(c) = self.counters.get(ev.kind.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        tracing::info!(target: "security", event = %record.event, outcome = %record.outcome, user_id = ?record.user_id, ip = ?record.ip, "security event");
        if let Ok(mut files) = self.files.lock() {
            if let Some(f) = files.as_mut() {
                if let Err(e) = f.write(&record) {
                    tracing::error!(error = %e, "cannot write the security log");
                }
            }
        }
        let alert = match (ev.kind.alert(), &record.email, &record.user_id) {
            (Some(kind), Some(to), Some(_)) => {
                if self.mail_wakeup.is_some() {
                    Some(alert_message(kind, to, &record))
                } else {
                    tracing::warn!(alert = kind.name(), user_id = ?record.user_id, "alert undelivered: no smtp.host configured");
                    None
                }
            }
            _ => None,
        };
        let queued = alert.is_some();
        if let Err(e) = self.store.record_event(record, alert).await {
            tracing::error!(error = %e, "cannot store a security event");
        }
        if queued {
            if let Some(n) = &self.mail_wakeup {
                n.notify_one();
            }
        }
    }

    /// Events emitted since start, per type (for metrics).
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        EventType::ALL
            .iter()
            .zip(&self.counters)
            .map(|(t, c)| (t.as_str(), c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Applies the retention to this instance's rotated log files.
    pub fn purge_log_files(&self) {
        let today = Utc::now().date_naive();
        match purge_files(&self.dir, self.retention_days, today) {
            Ok(n) if n > 0 => tracing::info!(removed = n, "old security log files deleted"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot apply log retention"),
        }
    }

    /// Applies the retention to the stored events (shared by instances).
    pub async fn purge_stored_events(&self) {
        let before = Utc::now() - chrono::Duration::days(i64::from(self.retention_days));
        match self.store.purge_events(before).await {
            Ok(n) if n > 0 => tracing::info!(removed = n, "old security events deleted"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "cannot purge old security events"),
        }
    }
}

fn alert_message(kind: AlertKind, to: &str, e: &EventRecord) -> OutboxMessage {
    let (subject, text, html) = alerts::render(kind, e);
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(purge_files(dir.path(), 90, today).unwrap(), 1);
        assert!(!dir.path().join("security.json.2026-08-01").exists());
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
