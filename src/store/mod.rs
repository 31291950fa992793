//! Storage: one trait per concern, gathered in the [`Store`] supertrait.
//!
//! Every operation that must be atomic is a single trait method (rotating a
//! refresh token, revoking a user's sessions), so each backend — the embedded
//! redb file here, PostgreSQL for scaled deployments — implements it in one
//! transaction.

pub mod postgres;
pub mod redb;

#[cfg(test)]
pub mod contract;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::market::{NewsItem, Series};
use crate::domain::portfolio::{LedgerError, Order, Position, Transaction};

/// The underlying error of a backend, kept as the `source` of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a store, in terms every backend can use: callers can
/// retry `Conflict` (a concurrent transaction won) and report `Unavailable`
/// as a temporary outage; everything else is a fault.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A concurrent change won (serialization failure, deadlock); retrying may succeed.
    #[error("storage conflict: {0}")]
    Conflict(#[source] BoxError),
    /// The backend cannot be reached or is refusing work right now.
    #[error("storage unavailable: {0}")]
    Unavailable(#[source] BoxError),
    #[error("storage backend: {0}")]
    Backend(#[source] BoxError),
    #[error("corrupt record in {table}: {reason}")]
    Corrupt { table: &'static str, reason: String },
}

impl StoreError {
    /// A backend fault described in words (no underlying error value).
    pub fn backend(message: impl Into<String>) -> Self {
        StoreError::Backend(message.into().into())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

tokio::task_local! {
    /// Set inside [`sync_once`]: the embedded store commits that task's
    /// writes without waiting for the disk, and marks here that it did.
    static SYNC_DEFERRED: Arc<AtomicBool>;
}

/// Runs `work` with the disk waited for once, at its end, instead of after
/// each of its writes: a login's session, device and event were three
/// fsyncs, and are now one (README, Benchmarks).
///
/// Each write still commits whole and on its own, and is seen by readers
/// at once. The answer comes back only after every write `work` made is on
/// disk; a crash before then may keep some of them and lose others (each
/// whole), as a crash before the answer could always lose them. A failed
/// sync is the answer's error. Dropped before its end (the client went
/// away), the scope still has its writes synced, by a spawned task.
/// Backends whose every commit is durable anyway (PostgreSQL) are
/// unaffected.
pub async fn sync_once<F: std::future::Future>(store: &Arc<dyn Store>, work: F) -> StoreResult<F::Output> {
    let deferred = Arc::new(AtomicBool::new(false));
    let mut pending = SyncOnDrop {
        store: Some(store.clone()),
        deferred: deferred.clone(),
    };
    let out = SYNC_DEFERRED.scope(deferred.clone(), work).await;
    let synced = if deferred.load(Ordering::Acquire) {
        store.sync().await
    } else {
        Ok(())
    };
    pending.store = None;
    synced.map(|()| out)
}

/// Syncs a [`sync_once`] scope's writes when it is dropped before its end.
struct SyncOnDrop {
    /// None once the scope has synced (or had nothing to sync).
    store: Option<Arc<dyn Store>>,
    deferred: Arc<AtomicBool>,
}

impl Drop for SyncOnDrop {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        if !self.deferred.load(Ordering::Acquire) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.sync().await {
                    tracing::error!(error = %e, "cannot sync the writes of an abandoned request");
                }
            });
        }
    }
}

/// True inside [`sync_once`], where a write may leave the disk to its end
/// (and notes that it did).
pub(crate) fn defer_sync() -> bool {
    SYNC_DEFERRED.try_with(|d| d.store(true, Ordering::Release)).is_ok()
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

/// A user account as stored. No `Debug`: it holds the password hash.
#[derive(Clone, Serialize, Deserialize)]
pub struct UserRecord {
    pub id: String,
    /// As entered, normalised (domain lower-cased).
    pub email: String,
    /// Identity key: the whole address lower-cased.
    pub email_key: String,
    pub full_name: Option<String>,
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "chrono::serde::ts_microseconds_option")]
    pub last_login_at: Option<DateTime<Utc>>,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub password_changed_at: DateTime<Utc>,
    #[serde(default)]
    pub two_factor_enabled: bool,
    #[serde(default)]
    pub totp: Option<TotpRecord>,
    /// When the current address was proven (a verification, reset or
    /// email-change link); `None`: not yet.
    #[serde(default, with = "chrono::serde::ts_microseconds_option")]
    pub email_verified_at: Option<DateTime<Utc>>,
}

/// The 2FA rules, the same for every backend: each backend runs one of
/// these on a user read under its lock and saves the user when it answers
/// `Done` (or, for a backup code, `Some`).
impl UserRecord {
    pub fn set_pending_totp(&mut self, sealed_secret: String) -> TotpChange {
        if self.two_factor_enabled {
            return TotpChange::AlreadyEnabled;
        }
        self.totp = Some(TotpRecord {
            sealed_secret,
            enabled: false,
            last_step: None,
            backup_codes: vec![],
        });
        TotpChange::Done
    }

    pub fn activate_totp(&mut self, step: u64, backup_codes: Vec<String>) -> TotpChange {
        if self.two_factor_enabled {
            return TotpChange::AlreadyEnabled;
        }
        let Some(t) = self.totp.as_mut() else {
            return TotpChange::NotEnabled;
        };
        if t.last_step.is_some_and(|last| step <= last) {
            return TotpChange::Replayed;
        }
        t.enabled = true;
        t.last_step = Some(step);
        t.backup_codes = backup_codes;
        self.two_factor_enabled = true;
        TotpChange::Done
    }

    pub fn disable_totp(&mut self) -> TotpChange {
        if !self.two_factor_enabled && self.totp.is_none() {
            return TotpChange::NotEnabled;
        }
        self.two_factor_enabled = false;
        self.totp = None;
        TotpChange::Done
    }

    pub fn use_totp_step(&mut self, step: u64) -> TotpChange {
        let Some(t) = self.totp.as_mut().filter(|t| t.enabled) else {
            return TotpChange::NotEnabled;
        };
        if t.last_step.is_some_and(|last| step <= last) {
            return TotpChange::Replayed;
        }
        t.last_step = Some(step);
        TotpChange::Done
    }

    /// Spends a backup code given by hash (compared in constant time);
    /// returns how many remain, `None` when it was not one of them.
    pub fn use_backup_code(&mut self, code_hash: &str) -> Option<usize> {
        let t = self.totp.as_mut().filter(|t| t.enabled)?;
        let i = t
            .backup_codes
            .iter()
            .position(|h| bool::from(subtle::ConstantTimeEq::ct_eq(h.as_bytes(), code_hash.as_bytes())))?;
        t.backup_codes.remove(i);
        Some(t.backup_codes.len())
    }
}

/// A user's TOTP state: the secret sealed with the server key, pending until
/// the first code verifies.
#[derive(Clone, Serialize, Deserialize)]
pub struct TotpRecord {
    pub sealed_secret: String,
    pub enabled: bool,
    /// The last time step accepted; a code of this step or earlier is a replay.
    pub last_step: Option<u64>,
    /// SHA-256 of the unused backup codes.
    pub backup_codes: Vec<String>,
}

/// The result of an atomic 2FA change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpChange {
    Done,
    NoUser,
    AlreadyEnabled,
    NotEnabled,
    /// The step was already used (or an older one).
    Replayed,
}

/// A login session: one refresh-token chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    pub id: String,
    pub user_id: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub last_used_at: DateTime<Utc>,
    pub ip: String,
    pub user_agent: String,
    /// The session ends when its newest refresh token expires.
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub expires_at: DateTime<Utc>,
    #[serde(default, with = "chrono::serde::ts_microseconds_option")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// The last time the user proved a secret in this session after the
    /// login (`POST /auth/reauthenticate`); `None`: only at the login.
    #[serde(default, with = "chrono::serde::ts_microseconds_option")]
    pub reauthenticated_at: Option<DateTime<Utc>>,
}

impl SessionRecord {
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }

    /// When the user last proved a password or code in this session.
    pub fn authenticated_at(&self) -> DateTime<Utc> {
        self.reauthenticated_at.unwrap_or(self.created_at)
    }
}

/// A refresh token, stored under the SHA-256 of the token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshRecord {
    pub session_id: String,
    pub user_id: String,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub expires_at: DateTime<Utc>,
    /// Set once the token has been exchanged; presenting it again is theft.
    #[serde(default, with = "chrono::serde::ts_microseconds_option")]
    pub rotated_at: Option<DateTime<Utc>>,
}

/// What happened to a presented refresh token.
#[derive(Debug)]
pub enum Rotation {
    /// Exchanged: the old token is retired, the new one stored.
    Rotated(SessionRecord),
    /// Already exchanged before: the whole session has now been revoked.
    Reused { session_id: String, user_id: String },
    /// Unknown, expired, or its session has ended.
    Invalid,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("email already registered")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a single-use account token (sent by mail) is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
    /// Proves the new address of an email change.
    ChangeEmail,
    /// Sent to the old address: undoes the change it names.
    CancelEmailChange,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
            TokenPurpose::ChangeEmail => "change_email",
            TokenPurpose::CancelEmailChange => "cancel_email_change",
        }
    }
}

/// A mailed account token, stored under the SHA-256 of the token (never the
/// token itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccountToken {
    pub purpose: TokenPurpose,
    pub user_id: String,
    /// The address the token was mailed to.
    pub email: String,
    /// For an email change: the address on the other side (the old one for
    /// `ChangeEmail`, the new one for `CancelEmailChange`).
    #[serde(default)]
    pub other_email: Option<String>,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_microseconds")]
    pub expires_at: DateTime<Utc>,
}

/// How an email change went.
pub enum EmailChange {
    Changed(Box<UserRecord>),
    /// Another account has the new address.
    Taken,
    /// The user is gone, or their address is no longer the expected one.
    Stale,
}

/// Single-use tokens mailed for verification, reset and email change.
#[async_trait]
pub trait AccountTokenStore: Send + Sync {
    /// Stores a token; with `retire_others`, in the same transaction removes
    /// the user's other tokens of the same purpose (a newer reset link
    /// retires the older ones).
    async fn put_account_token(&self, hash: String, token: AccountToken, retire_others: bool) -> StoreResult<()>;
    /// Reads a token without spending it (`None`: unknown or spent).
    async fn account_token(&self, hash: &str) -> StoreResult<Option<AccountToken>>;
    /// Spends a token: removes it and returns it; `None` when it was not
    /// there (unknown, or a concurrent request spent it first).
    async fn take_account_token(&self, hash: &str) -> StoreResult<Option<AccountToken>>;
    /// Removes every token of a user with this purpose; returns how many.
    async fn retire_account_tokens(&self, user_id: &str, purpose: TokenPurpose) -> StoreResult<usize>;
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user; fails with `EmailTaken` if the email key exists.
    async fn create_user(&self, user: UserRecord) -> Result<(), CreateUserError>;
    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_email(&self, email_key: &str) -> StoreResult<Option<UserRecord>>;
    /// Sets a new password hash and its change time; returns the updated
    /// user (`None` if unknown). Like every targeted update below, it changes
    /// only its own fields, so it never undoes a concurrent change to others
    /// (a spent backup code, the TOTP replay guard, a disable).
    async fn set_password_hash(
        &self,
        user_id: &str,
        hash: String,
        changed_at: DateTime<Utc>,
    ) -> StoreResult<Option<UserRecord>>;
    async fn set_full_name(&self, user_id: &str, full_name: Option<String>) -> StoreResult<Option<UserRecord>>;
    async fn set_disabled(&self, user_id: &str, disabled: bool) -> StoreResult<Option<UserRecord>>;
    async fn set_role(&self, user_id: &str, role: Role) -> StoreResult<Option<UserRecord>>;
    /// Marks the address proven, if it is still the user's; false otherwise.
    async fn mark_email_verified(&self, user_id: &str, email_key: &str, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Moves the account from `from_key` to a new (proven) address, in one
    /// transaction with the email index.
    async fn change_email(
        &self,
        user_id: &str,
        from_key: &str,
        email: String,
        email_key: String,
        at: DateTime<Utc>,
    ) -> StoreResult<EmailChange>;
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session with its first refresh token and records the
    /// login time on the user, in one transaction; returns the updated user.
    async fn create_session(
        &self,
        session: SessionRecord,
        refresh_hash: String,
        refresh: RefreshRecord,
    ) -> StoreResult<Option<UserRecord>>;
    async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>>;
    /// A session and its user, read in one snapshot (every authenticated
    /// request does this).
    async fn session_with_user(&self, id: &str) -> StoreResult<Option<(SessionRecord, UserRecord)>>;
    /// Atomically exchanges `old_hash` for `new_hash`: retires the old token,
    /// stores the new one and touches the session; or, if the old token was
    /// already retired, revokes the whole session.
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: String,
        new_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation>;
    /// Ends one session; false if it was not active.
    async fn revoke_session(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// Ends every active session of a user except `keep` and retires all of
    /// the user's device tokens, in one transaction; returns the ids ended.
    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>>;
    /// Active sessions of a user, newest first.
    async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>>;
    /// Records a fresh proof of a secret in an active session; false when
    /// the session is not active.
    async fn mark_reauthenticated(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool>;
    /// How many sessions are active, over all users.
    async fn active_session_count(&self, now: DateTime<Utc>) -> StoreResult<usize>;
}

#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Puts a token hash on the revocation list until `expires_at`.
    async fn revoke_token(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()>;
    /// Unexpired revocations (expired ones are purged on the way).
    async fn live_revocations(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, DateTime<Utc>)>>;
}

/// Failed logins and the lock they lead to, per throttle key (an account's
/// email key, or one device token).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LockoutRecord {
    /// The account this key belongs to, when it exists.
    pub user_id: Option<String>,
    /// Failure times within the window, oldest first.
    pub failures: Vec<DateTime<Utc>>,
    /// IPs of the recent failures, for forensics (newest last, at most 50).
    pub ips: Vec<String>,
    pub locked_until: Option<DateTime<Utc>>,
}

impl LockoutRecord {
    /// The lock in force at `now`, if any.
    pub fn locked_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.locked_until.filter(|until| *until > now)
    }

    /// Adds one failure under `policy` (the same rule for every backend).
    pub fn apply_failure(&mut self, user_id: Option<String>, ip: String, now: DateTime<Utc>, policy: LockoutPolicy) {
        if self.locked_until.is_some_and(|u| u <= now) {
            // An expired lock starts a fresh count.
            self.locked_until = None;
            self.failures.clear();
        }
        self.failures.retain(|t| *t > now - policy.window);
        self.failures.push(now);
        // Only the latest `threshold` failures can matter: a flood of
        // attempts must not grow the record (it is rewritten each time).
        let keep = policy.threshold.max(1) as usize;
        if self.failures.len() > keep {
            let excess = self.failures.len() - keep;
            self.failures.drain(..excess);
        }
        self.ips.push(ip);
        if self.ips.len() > 50 {
            let excess = self.ips.len() - 50;
            self.ips.drain(..excess);
        }
        if user_id.is_some() {
            self.user_id = user_id;
        }
        if self.failures.len() as u32 >= policy.threshold && self.locked_until.is_none() {
            self.locked_until = Some(now + policy.duration);
        }
    }

    /// [`apply_failure`](Self::apply_failure), answered as a backend's
    /// `record_failure` answers.
    pub fn record_failure(
        &mut self,
        user_id: Option<String>,
        ip: String,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
    ) -> FailureStatus {
        let was_locked = self.locked_at(now).is_some();
        self.apply_failure(user_id, ip, now, policy);
        let locked_until = self.locked_at(now);
        FailureStatus {
            locked_until,
            newly_locked: locked_until.is_some() && !was_locked,
            attempts_remaining: self.attempts_remaining(policy),
        }
    }

    /// Failures that still count at `now` (none once a lock has expired:
    /// an expired lock starts a fresh count, as in `apply_failure`).
    pub fn live_failures(&self, now: DateTime<Utc>, policy: LockoutPolicy) -> u32 {
        if self.locked_until.is_some_and(|u| u <= now) {
            return 0;
        }
        self.failures.iter().filter(|t| **t > now - policy.window).count() as u32
    }

    pub fn attempts_remaining(&self, policy: LockoutPolicy) -> u32 {
        policy.threshold.saturating_sub(self.failures.len() as u32)
    }
}

/// What one recorded failure left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureStatus {
    /// The lock in force after this failure.
    pub locked_until: Option<DateTime<Utc>>,
    /// True when this failure is the one that locked the key.
    pub newly_locked: bool,
    pub attempts_remaining: u32,
}

/// The lockout policy a backend applies atomically.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub threshold: u32,
    pub window: chrono::Duration,
    pub duration: chrono::Duration,
}

#[async_trait]
pub trait LockoutStore: Send + Sync {
    async fn lockout(&self, key: &str) -> StoreResult<Option<LockoutRecord>>;
    /// Atomically adds a failure (dropping those outside the window) and
    /// locks the key when the threshold is reached (see
    /// [`LockoutRecord::apply_failure`]); a key with a `user_id` is indexed
    /// under that user.
    async fn record_failure(
        &self,
        key: &str,
        user_id: Option<String>,
        ip: &str,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
    ) -> StoreResult<FailureStatus>;
    /// Forgets a key's failures and lock.
    async fn clear_lockout(&self, key: &str) -> StoreResult<()>;
    /// Clears `account_key` and every key indexed under the user (admin
    /// unlock), without scanning other users' keys; returns the keys cleared.
    async fn clear_user_lockouts(&self, user_id: &str, account_key: &str) -> StoreResult<Vec<String>>;
}

/// Two-factor state changes; each is one transaction.
#[async_trait]
pub trait TwoFactorStore: Send + Sync {
    /// Stores a new pending secret, unless 2FA is already enabled.
    async fn set_pending_totp(&self, user_id: &str, sealed_secret: String) -> StoreResult<TotpChange>;
    /// Enables the pending secret with the step that proved it and the
    /// backup-code hashes.
    async fn activate_totp(&self, user_id: &str, step: u64, backup_codes: Vec<String>) -> StoreResult<TotpChange>;
    async fn disable_totp(&self, user_id: &str) -> StoreResult<TotpChange>;
    /// Records `step` as used if it is newer than the last one (replay guard).
    async fn use_totp_step(&self, user_id: &str, step: u64) -> StoreResult<TotpChange>;
    /// Removes a backup code by hash; returns how many remain, or `None` if
    /// it was not one of them.
    async fn use_backup_code(&self, user_id: &str, code_hash: &str) -> StoreResult<Option<usize>>;
    async fn challenge_spent(&self, jti: &str) -> StoreResult<bool>;
    /// Marks a 2FA challenge as spent; false if it already was.
    async fn consume_challenge(&self, jti: &str, expires_at: DateTime<Utc>) -> StoreResult<bool>;
}

/// A security event as stored (SPEC §5.10 fields).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EventRecord {
    /// UUIDv7: ordered by time.
    pub id: String,
    pub timestamp: DateTime<Utc>,
    pub event: String,
    pub outcome: String,
    pub user_id: Option<String>,
    pub email: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub details: serde_json::Value,
    /// Its place in the tamper-evident chain (`None`: written before the
    /// chain existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<ChainLink>,
}

/// An event's link in its instance's HMAC chain (see `security::audit`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainLink {
    /// The chain: one per instance.
    pub chain: String,
    /// 1, 2, 3 … within the chain.
    pub seq: u64,
    /// The previous link's `hash` (64 zeros before the first).
    pub prev_hash: String,
    /// HMAC-SHA-256 over the canonical event, `seq` and `prev_hash`.
    pub hash: String,
}

impl ChainLink {
    /// The cut that keeps everything after this link.
    pub fn cut_after(self) -> ChainCut {
        ChainCut {
            first_kept_seq: self.seq + 1,
            prev_hash: self.hash,
            chain: self.chain,
        }
    }
}

impl EventRecord {
    /// Whether a purge with these cuts removes this event: a chained event
    /// before its chain's cut, or an unchained one older than `before`.
    pub fn is_before(&self, before: DateTime<Utc>, cuts: &[ChainCut]) -> bool {
        match &self.link {
            Some(l) => cuts.iter().any(|c| c.chain == l.chain && l.seq < c.first_kept_seq),
            None => self.timestamp < before,
        }
    }
}

/// Where a purge cuts a chain: every link before `first_kept_seq` goes, and
/// the first one kept must continue from `prev_hash`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChainCut {
    pub chain: String,
    pub first_kept_seq: u64,
    pub prev_hash: String,
}

/// An alert email waiting in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutboxMessage {
    pub id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub event_id: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// A mailed account token, sealed under the server key: the stored
    /// bodies hold `{{token}}`, filled in only when the mail is sent.
    #[serde(default)]
    pub sealed_token: Option<String>,
}

/// A security event with the mails it queues, as the store keeps them.
pub struct EventWrite {
    pub event: EventRecord,
    pub mails: Vec<OutboxMessage>,
}

/// The events a sign-in records once its session is open, from the updated
/// user and whether the device was new ([`Store::open_session`]).
pub type SignInEvents = Box<dyn FnOnce(&UserRecord, bool) -> Vec<EventWrite> + Send>;

/// Which events to list (admin view).
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub user_id: Option<String>,
    pub event: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only events older than this id (paging, newest first).
    pub before_id: Option<String>,
    pub limit: usize,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores an event and, in the same transaction, the mails it causes.
    async fn record_event(&self, event: EventRecord, mails: Vec<OutboxMessage>) -> StoreResult<()>;
    /// Events matching the filter, newest first.
    async fn events(&self, filter: EventFilter) -> StoreResult<Vec<EventRecord>>;
    /// Where a purge of the events older than `before` cuts each chain:
    /// after the newest link of each chain older than `before`.
    async fn purge_plan(&self, before: DateTime<Utc>) -> StoreResult<Vec<ChainCut>>;
    /// Deletes the chained events before the `cuts` and the unchained
    /// events older than `before`; returns how many.
    async fn purge_events(&self, before: DateTime<Utc>, cuts: &[ChainCut]) -> StoreResult<usize>;
    /// The newest stored link of a chain.
    async fn chain_head(&self, chain: &str) -> StoreResult<Option<ChainLink>>;
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Claims up to `limit` messages due at `now`, oldest first: each is
    /// hidden from other claims until `now + lease` (its `next_attempt_at`
    /// moves there), so with several workers each message goes to one. A
    /// worker that dies mid-send leaves the message to be claimed again
    /// when the lease runs out.
    async fn claim_due_mail(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: chrono::Duration,
    ) -> StoreResult<Vec<OutboxMessage>>;
    /// Removes a delivered message.
    async fn mail_sent(&self, id: &str) -> StoreResult<()>;
    /// Records a failed attempt and when to retry.
    async fn mail_failed(&self, id: &str, next_attempt_at: DateTime<Utc>, error: String) -> StoreResult<()>;
    async fn outbox_depth(&self) -> StoreResult<usize>;
    /// The earliest next attempt, if any message waits.
    async fn next_mail_due(&self) -> StoreResult<Option<DateTime<Utc>>>;
}

/// A device a user logged in from: a hash of User-Agent and IP network.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceRecord {
    pub id: String,
    pub user_id: String,
    pub user_agent: String,
    pub ip_network: String,
    pub last_ip: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The `jti`s of the device tokens that speak for this device (the
    /// latest [`DEVICE_TOKENS_KEPT`]); emptied when they are retired
    /// (password change, logout-all, admin revoke).
    #[serde(default)]
    pub token_jtis: Vec<String>,
}

/// Device tokens of one device that stay valid at once (one per sign-in).
pub const DEVICE_TOKENS_KEPT: usize = 5;

impl DeviceRecord {
    /// Binds one more token, forgetting the oldest beyond the limit.
    pub fn bind_token(&mut self, jti: String) {
        self.token_jtis.push(jti);
        let excess = self.token_jtis.len().saturating_sub(DEVICE_TOKENS_KEPT);
        self.token_jtis.drain(..excess);
    }

    pub fn speaks_for(&self, jti: &str) -> bool {
        self.token_jtis.iter().any(|t| t == jti)
    }
}

#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Records a sighting and binds the tokens of `device` to it; returns
    /// true when the device was new.
    async fn touch_device(&self, device: DeviceRecord) -> StoreResult<bool>;
    /// A user's devices, most recently seen first.
    async fn user_devices(&self, user_id: &str) -> StoreResult<Vec<DeviceRecord>>;
    async fn device(&self, user_id: &str, device_id: &str) -> StoreResult<Option<DeviceRecord>>;
    /// Forgets a device (its token stops working); false if unknown.
    async fn remove_device(&self, user_id: &str, device_id: &str) -> StoreResult<bool>;
}

/// A replayable order answer, keyed per user by `Idempotency-Key`.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    pub key: String,
    /// SHA-256 of the canonical order; the same key with another order is a conflict.
    pub fingerprint: String,
}

/// What an executed order produced, as stored for idempotent replays: the
/// answer is rendered from it, the same way the first time and every replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderReceipt {
    pub transaction: Transaction,
    /// The position right after the order.
    pub position: Position,
    /// The market price the position was valued at when the order ran
    /// (`None`: valued at the trade price).
    pub market_price: Option<rust_decimal::Decimal>,
}

/// What happened to an order.
#[derive(Debug)]
pub enum OrderOutcome {
    /// Executed now (the receipt is also stored for replays).
    Executed(OrderReceipt),
    /// The same key and order were seen before: the original receipt.
    Replayed(OrderReceipt),
    /// The key was used with a different order.
    IdempotencyConflict,
    Rejected(LedgerError),
}

#[async_trait]
pub trait PortfolioStore: Send + Sync {
    /// Executes an order atomically: idempotency check, ledger update,
    /// transaction record and stored answer in one transaction.
    async fn execute_order(
        &self,
        user_id: &str,
        order: Order,
        market_price: Option<rust_decimal::Decimal>,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<OrderOutcome>;
    async fn positions(&self, user_id: &str) -> StoreResult<Vec<Position>>;
    /// Newest first; `before_id` pages.
    async fn transactions(
        &self,
        user_id: &str,
        symbol: Option<&str>,
        before_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Transaction>>;
}

/// Price series imported by the admin (the bundled set is not stored).
#[async_trait]
pub trait PriceStore: Send + Sync {
    /// Replaces the stored imported series of a symbol.
    async fn put_imported_series(&self, series: Series) -> StoreResult<()>;
    async fn imported_series(&self) -> StoreResult<Vec<Series>>;
}

/// A position in the news list (newest first): the item last returned.
/// Backends order by `(published_at, id)`; how a cursor is written in a URL
/// is the http layer's business.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewsCursor {
    pub published_at: DateTime<Utc>,
    pub id: String,
}

impl NewsCursor {
    pub fn after(item: &NewsItem) -> Self {
        Self {
            published_at: item.published_at,
            id: item.id.clone(),
        }
    }
}

/// Which news to list.
#[derive(Debug, Clone, Default)]
pub struct NewsFilter {
    pub symbol: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Paging: only items older than this one.
    pub after: Option<NewsCursor>,
    pub limit: usize,
}

#[async_trait]
pub trait NewsStore: Send + Sync {
    /// Stores the items whose ids are new; returns how many were new.
    async fn insert_news(&self, items: Vec<NewsItem>) -> StoreResult<usize>;
    /// Newest first (by publication time, then id).
    async fn news(&self, filter: NewsFilter) -> StoreResult<Vec<NewsItem>>;
    /// A one-time flag (e.g. "the bundled feed was loaded").
    async fn flag(&self, name: &str) -> StoreResult<bool>;
    async fn set_flag(&self, name: &str) -> StoreResult<()>;
}

/// What [`MaintenanceStore::purge_expired`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Purged {
    pub refresh_tokens: usize,
    pub idempotency_answers: usize,
    pub lockouts: usize,
    pub account_tokens: usize,
}

/// How long an `Idempotency-Key` answer is replayed.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

#[async_trait]
pub trait MaintenanceStore: Send + Sync {
    /// Removes records that can no longer matter: refresh records past
    /// their token's expiry (rotated ones are kept until then, for reuse
    /// detection), idempotency answers older than [`IDEMPOTENCY_TTL_HOURS`],
    /// and lockout records of unknown emails with no lock in force and no
    /// failure left in the window (known accounts keep theirs for forensics),
    /// and expired account tokens.
    async fn purge_expired(&self, now: DateTime<Utc>, lockout: LockoutPolicy) -> StoreResult<Purged>;
    /// Claims a background job (`news_fetch`, `retention`) for `holder`
    /// until `now + lease`, so that of several instances one does it: true
    /// when the job is free, its lease has run out, or `holder` holds it.
    async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<bool>;
}

/// An idempotent order answer as stored, for copying between backends.
#[derive(Debug, Clone)]
pub struct StoredOrderAnswer {
    pub user_id: String,
    pub key: String,
    pub fingerprint: String,
    pub receipt: OrderReceipt,
    pub stored_at: DateTime<Utc>,
}

/// Everything a store holds, as records: what `admin migrate` copies from
/// the embedded file into PostgreSQL. Keyed records carry their key
/// (refresh tokens and revocations by token hash, lockouts by throttle
/// key, positions and transactions by user id).
#[derive(Default)]
pub struct Snapshot {
    pub users: Vec<UserRecord>,
    pub sessions: Vec<SessionRecord>,
    pub refresh_tokens: Vec<(String, RefreshRecord)>,
    pub revoked_tokens: Vec<(String, DateTime<Utc>)>,
    pub lockouts: Vec<(String, LockoutRecord)>,
    pub spent_challenges: Vec<(String, DateTime<Utc>)>,
    pub events: Vec<EventRecord>,
    pub outbox: Vec<OutboxMessage>,
    pub devices: Vec<DeviceRecord>,
    pub positions: Vec<(String, Position)>,
    pub transactions: Vec<(String, Transaction)>,
    pub idempotency: Vec<StoredOrderAnswer>,
    pub series: Vec<Series>,
    pub news: Vec<NewsItem>,
    pub flags: Vec<String>,
}

impl Snapshot {
    /// Records per kind, named as PostgreSQL's tables are.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        let n = |len: usize| len as u64;
        vec![
            ("users", n(self.users.len())),
            ("sessions", n(self.sessions.len())),
            ("refresh_tokens", n(self.refresh_tokens.len())),
            ("revoked_tokens", n(self.revoked_tokens.len())),
            ("lockouts", n(self.lockouts.len())),
            ("spent_challenges", n(self.spent_challenges.len())),
            ("events", n(self.events.len())),
            ("outbox", n(self.outbox.len())),
            ("devices", n(self.devices.len())),
            ("positions", n(self.positions.len())),
            ("transactions", n(self.transactions.len())),
            ("idempotency", n(self.idempotency.len())),
            ("price_series", n(self.series.len())),
            ("candles", n(self.series.iter().map(|s| s.candles.len()).sum())),
            ("news", n(self.news.len())),
            ("flags", n(self.flags.len())),
        ]
    }
}

/// Everything the application stores.
#[async_trait]
pub trait Store:
    UserStore
    + AccountTokenStore
    + SessionStore
    + RevocationStore
    + LockoutStore
    + TwoFactorStore
    + EventStore
    + OutboxStore
    + DeviceStore
    + PortfolioStore
    + PriceStore
    + NewsStore
    + MaintenanceStore
{
    /// Answers when the backend is usable (for `/ready`).
    async fn ping(&self) -> StoreResult<()>;
    /// "embedded" or "postgres", as `/health` reports it.
    fn kind(&self) -> &'static str;
    /// A number that changes with every committed write, where every write
    /// goes through this process (the embedded store); `None` where other
    /// processes write too. What is derived from reads that began at one
    /// epoch is current while the epoch is unchanged.
    fn write_epoch(&self) -> Option<u64> {
        None
    }
    /// Makes every write committed so far durable (see [`sync_once`]);
    /// nothing to do where each commit already is.
    async fn sync(&self) -> StoreResult<()> {
        Ok(())
    }
    /// A sign-in's writes: [`SessionStore::create_session`] and, if the
    /// user still exists, [`DeviceStore::touch_device`] and the events
    /// `then` gives for the updated user and whether the device was new.
    /// Returns those two. In one durable transaction where the backend
    /// overrides this (the embedded store, where each commit costs; a
    /// [`sync_once`] scope it runs in has nothing left to sync for it), in
    /// one write each otherwise, an event that cannot be stored logged as
    /// [`EventStore::record_event`]'s callers do.
    async fn open_session(
        &self,
        session: SessionRecord,
        refresh_hash: String,
        refresh: RefreshRecord,
        device: DeviceRecord,
        then: SignInEvents,
    ) -> StoreResult<Option<(UserRecord, bool)>> {
        let Some(user) = self.create_session(session, refresh_hash, refresh).await? else {
            return Ok(None);
        };
        let new_device = self.touch_device(device).await?;
        for w in then(&user, new_device) {
            if let Err(e) = self.record_event(w.event, w.mails).await {
                tracing::error!(error = %e, "cannot store a security event");
            }
        }
        Ok(Some((user, new_device)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockout_records_stay_small_under_a_flood() {
        let policy = LockoutPolicy {
            threshold: 5,
            window: chrono::Duration::hours(1),
            duration: chrono::Duration::hours(1),
        };
        let mut rec = LockoutRecord::default();
        let now = Utc::now();
        for i in 0..10_000 {
            rec.apply_failure(None, format!("10.0.{}.{}", i / 256 % 256, i % 256), now, policy);
        }
        assert_eq!(rec.failures.len(), 5);
        assert_eq!(rec.ips.len(), 50);
        assert!(rec.locked_at(now).is_some());
        assert_eq!(rec.attempts_remaining(policy), 0);
    }
}
