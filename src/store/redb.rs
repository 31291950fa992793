//! The embedded store: one redb file (`<data_dir>/fortfolio.redb`).
//!
//! Records are JSON values under string keys. Reads run inline (redb reads are
//! MVCC snapshots and cheap); writes, which fsync on commit, run on the
//! blocking pool so they never stall the async workers.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::market::{NewsItem, Series};
use crate::domain::portfolio::{apply_order, Order, Position, Transaction};

use super::{
    CreateUserError, DeviceRecord, DeviceStore, EventFilter, EventRecord, EventStore, FailureStatus, IdempotencyKey,
    LockoutPolicy, LockoutRecord, LockoutStore, MaintenanceStore, NewsFilter, NewsStore, OrderOutcome, OrderReceipt,
    OutboxMessage, OutboxStore, PortfolioStore, PriceStore, Purged, RefreshRecord, RevocationStore, Rotation,
    SessionRecord, SessionStore, Store, StoreError, StoreResult, TotpChange, TotpRecord, TwoFactorStore, UserRecord,
    UserStore, IDEMPOTENCY_TTL_HOURS,
};

type Table = TableDefinition<'static, &'static str, &'static [u8]>;

const USERS: Table = TableDefinition::new("users");
const USERS_BY_EMAIL: Table = TableDefinition::new("users_by_email");
const SESSIONS: Table = TableDefinition::new("sessions");
/// `<user_id>/<session_id>` → empty: a user's sessions by prefix scan.
const USER_SESSIONS: Table = TableDefinition::new("user_sessions");
const REFRESH_TOKENS: Table = TableDefinition::new("refresh_tokens");
const REVOKED_TOKENS: Table = TableDefinition::new("revoked_tokens");

const LOCKOUTS: Table = TableDefinition::new("lockouts");
/// `<user_id>/<lockout key>` → empty: the lockout keys of a user.
const USER_LOCKOUTS: Table = TableDefinition::new("user_lockouts");
const SPENT_CHALLENGES: Table = TableDefinition::new("spent_challenges");

const EVENTS: Table = TableDefinition::new("events");
/// `<user_id>/<event_id>` → empty.
const USER_EVENTS: Table = TableDefinition::new("user_events");
const OUTBOX: Table = TableDefinition::new("outbox");
/// `<user_id>/<device_id>` → DeviceRecord.
const DEVICES: Table = TableDefinition::new("devices");

/// `<user_id>/<symbol>` → Position.
const POSITIONS: Table = TableDefinition::new("positions");
/// `<user_id>/<transaction_id>` → Transaction.
const TRANSACTIONS: Table = TableDefinition::new("transactions");
/// `<user_id>/<key>` → StoredAnswer.
const IDEMPOTENCY: Table = TableDefinition::new("idempotency");
/// symbol → Series (imported rows only).
const PRICE_SERIES: Table = TableDefinition::new("price_series");

/// `<published_at µs, 20 digits>|<id>` → NewsItem: newest first by reverse scan.
const NEWS: Table = TableDefinition::new("news");
/// news id → its key in NEWS (de-duplication).
const NEWS_IDS: Table = TableDefinition::new("news_ids");
const FLAGS: Table = TableDefinition::new("flags");

const ALL_TABLES: [Table; 20] = [
    NEWS,
    NEWS_IDS,
    FLAGS,
    POSITIONS,
    TRANSACTIONS,
    IDEMPOTENCY,
    PRICE_SERIES,
    EVENTS,
    USER_EVENTS,
    OUTBOX,
    DEVICES,
    SPENT_CHALLENGES,
    LOCKOUTS,
    USER_LOCKOUTS,
    USERS,
    USERS_BY_EMAIL,
    SESSIONS,
    USER_SESSIONS,
    REFRESH_TOKENS,
    REVOKED_TOKENS,
];

pub const FILE_NAME: &str = "fortfolio.redb";

#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

fn backend(e: impl Into<super::BoxError>) -> StoreError {
    StoreError::Backend(e.into())
}

fn encode<T: Serialize>(v: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(backend)
}

fn decode<T: DeserializeOwned>(table: &'static str, bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        table,
        reason: e.to_string(),
    })
}

fn get<T: DeserializeOwned>(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    name: &'static str,
    key: &str,
) -> StoreResult<Option<T>> {
    match table.get(key).map_err(backend)? {
        Some(v) => decode(name, v.value()).map(Some),
        None => Ok(None),
    }
}

/// Keys in `[prefix, prefix + '\u{10FFFF}')`, i.e. all keys starting with it.
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

impl RedbStore {
    /// Opens (or creates) the database in `data_dir`. Fails if another
    /// process holds it.
    pub fn open(data_dir: &Path) -> StoreResult<Self> {
        std::fs::create_dir_all(data_dir).map_err(backend)?;
        let path = data_dir.join(FILE_NAME);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Unavailable(
                format!(
                    "{} is in use by another process (is `fortfolio serve` running?)",
                    path.display()
                )
                .into(),
            ),
            other => backend(other),
        })?;
        // Password hashes and sealed secrets live here: owner-only.
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(backend)?;
        }
        let tx = db.begin_write().map_err(backend)?;
        for t in ALL_TABLES {
            tx.open_table(t).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs a write transaction on the blocking pool and commits it if `f`
    /// succeeds; on error nothing is written.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    {
        self.write_with(Durability::Immediate, f).await
    }

    /// [`Self::write`] with a chosen durability. `Eventual` skips the fsync
    /// (the commit becomes durable with the next immediate one): only for
    /// writes whose loss in a crash is harmless, like outbox bookkeeping.
    async fn write_with<T, F>(&self, durability: Durability, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            let mut tx = db.begin_write().map_err(backend)?;
            tx.set_durability(durability);
            let out = f(&tx)?;
            tx.commit().map_err(backend)?;
            Ok(out)
        })
        .await
        .map_err(backend)?
    }

    fn read<T>(&self, table: Table, name: &'static str, key: &str) -> StoreResult<Option<T>>
    where
        T: DeserializeOwned,
    {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(table).map_err(backend)?;
        get(&t, name, key)
    }
}

fn put<T: Serialize>(tx: &WriteTransaction, table: Table, key: &str, value: &T) -> StoreResult<()> {
    let bytes = encode(value)?;
    let mut t = tx.open_table(table).map_err(backend)?;
    t.insert(key, bytes.as_slice()).map_err(backend)?;
    Ok(())
}

fn end_session(tx: &WriteTransaction, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    let mut t = tx.open_table(SESSIONS).map_err(backend)?;
    let Some(mut s) = get::<SessionRecord>(&t, "sessions", id)? else {
        return Ok(false);
    };
    if !s.is_active(now) {
        return Ok(false);
    }
    s.revoked_at = Some(now);
    let bytes = encode(&s)?;
    t.insert(id, bytes.as_slice()).map_err(backend)?;
    Ok(true)
}

#[async_trait]
impl UserStore for RedbStore {
    async fn create_user(&self, user: UserRecord) -> Result<(), CreateUserError> {
        let out = self
            .write(move |tx| {
                let mut by_email = tx.open_table(USERS_BY_EMAIL).map_err(backend)?;
                if by_email.get(user.email_key.as_str()).map_err(backend)?.is_some() {
                    return Ok(false);
                }
                by_email
                    .insert(user.email_key.as_str(), user.id.as_bytes())
                    .map_err(backend)?;
                drop(by_email);
                put(tx, USERS, &user.id, &user)?;
                Ok(true)
            })
            .await?;
        if out {
            Ok(())
        } else {
            Err(CreateUserError::EmailTaken)
        }
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        self.read(USERS, "users", id)
    }

    async fn user_by_email(&self, email_key: &str) -> StoreResult<Option<UserRecord>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let by_email = tx.open_table(USERS_BY_EMAIL).map_err(backend)?;
        let Some(id) = by_email.get(email_key).map_err(backend)? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(id.value()).into_owned();
        let users = tx.open_table(USERS).map_err(backend)?;
        get(&users, "users", &id)
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        hash: String,
        changed_at: DateTime<Utc>,
    ) -> StoreResult<Option<UserRecord>> {
        self.update_user(user_id, move |u| {
            u.password_hash = hash;
            u.password_changed_at = changed_at;
        })
        .await
    }

    async fn set_full_name(&self, user_id: &str, full_name: Option<String>) -> StoreResult<Option<UserRecord>> {
        self.update_user(user_id, move |u| u.full_name = full_name).await
    }

    async fn set_disabled(&self, user_id: &str, disabled: bool) -> StoreResult<Option<UserRecord>> {
        self.update_user(user_id, move |u| u.disabled = disabled).await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(USERS).map_err(backend)?;
        let mut out = Vec::with_capacity(t.len().map_err(backend)? as usize);
        for row in t.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(decode("users", v.value())?);
        }
        Ok(out)
    }
}

#[async_trait]
impl SessionStore for RedbStore {
    async fn create_session(
        &self,
        session: SessionRecord,
        refresh_hash: String,
        refresh: RefreshRecord,
    ) -> StoreResult<Option<UserRecord>> {
        self.write(move |tx| {
            put(tx, SESSIONS, &session.id, &session)?;
            let key = format!("{}/{}", session.user_id, session.id);
            let mut us = tx.open_table(USER_SESSIONS).map_err(backend)?;
            us.insert(key.as_str(), [].as_slice()).map_err(backend)?;
            drop(us);
            put(tx, REFRESH_TOKENS, &refresh_hash, &refresh)?;
            let mut users = tx.open_table(USERS).map_err(backend)?;
            let Some(mut user) = get::<UserRecord>(&users, "users", &session.user_id)? else {
                return Ok(None);
            };
            user.last_login_at = Some(session.created_at);
            users
                .insert(user.id.as_str(), encode(&user)?.as_slice())
                .map_err(backend)?;
            Ok(Some(user))
        })
        .await
    }

    async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.read(SESSIONS, "sessions", id)
    }

    async fn session_with_user(&self, id: &str) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let sessions = tx.open_table(SESSIONS).map_err(backend)?;
        let Some(session) = get::<SessionRecord>(&sessions, "sessions", id)? else {
            return Ok(None);
        };
        let users = tx.open_table(USERS).map_err(backend)?;
        Ok(get::<UserRecord>(&users, "users", &session.user_id)?.map(|u| (session, u)))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: String,
        new_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        let old_hash = old_hash.to_string();
        self.write(move |tx| {
            let mut tokens = tx.open_table(REFRESH_TOKENS).map_err(backend)?;
            let Some(mut old) = get::<RefreshRecord>(&tokens, "refresh_tokens", &old_hash)? else {
                return Ok(Rotation::Invalid);
            };
            if old.rotated_at.is_some() {
                drop(tokens);
                end_session(tx, &old.session_id, now)?;
                return Ok(Rotation::Reused {
                    session_id: old.session_id,
                    user_id: old.user_id,
                });
            }
            if old.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            let mut sessions = tx.open_table(SESSIONS).map_err(backend)?;
            let Some(mut session) = get::<SessionRecord>(&sessions, "sessions", &old.session_id)? else {
                return Ok(Rotation::Invalid);
            };
            if !session.is_active(now) {
                return Ok(Rotation::Invalid);
            }
            old.rotated_at = Some(now);
            tokens
                .insert(old_hash.as_str(), encode(&old)?.as_slice())
                .map_err(backend)?;
            let new = RefreshRecord {
                session_id: session.id.clone(),
                user_id: session.user_id.clone(),
                expires_at: new_expires_at,
                rotated_at: None,
            };
            tokens
                .insert(new_hash.as_str(), encode(&new)?.as_slice())
                .map_err(backend)?;
            session.last_used_at = now;
            session.expires_at = new_expires_at;
            sessions
                .insert(session.id.as_str(), encode(&session)?.as_slice())
                .map_err(backend)?;
            Ok(Rotation::Rotated(session))
        })
        .await
    }

    async fn revoke_session(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |tx| end_session(tx, &id, now)).await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let prefix = format!("{user_id}/");
        let keep = keep.map(str::to_string);
        self.write(move |tx| {
            let ids: Vec<String> = {
                let us = tx.open_table(USER_SESSIONS).map_err(backend)?;
                let end = prefix_end(&prefix);
                let mut ids = Vec::new();
                for row in us.range(prefix.as_str()..end.as_str()).map_err(backend)? {
                    let (k, _) = row.map_err(backend)?;
                    ids.push(k.value()[prefix.len()..].to_string());
                }
                ids
            };
            let mut ended = Vec::new();
            for id in ids {
                if keep.as_deref() == Some(id.as_str()) {
                    continue;
                }
                if end_session(tx, &id, now)? {
                    ended.push(id);
                }
            }
            retire_device_tokens(tx, &prefix)?;
            Ok(ended)
        })
        .await
    }

    async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>> {
        let prefix = format!("{user_id}/");
        let end = prefix_end(&prefix);
        let tx = self.db.begin_read().map_err(backend)?;
        let us = tx.open_table(USER_SESSIONS).map_err(backend)?;
        let sessions = tx.open_table(SESSIONS).map_err(backend)?;
        let mut out = Vec::new();
        for row in us.range(prefix.as_str()..end.as_str()).map_err(backend)? {
            let (k, _) = row.map_err(backend)?;
            let id = &k.value()[prefix.len()..];
            if let Some(s) = get::<SessionRecord>(&sessions, "sessions", id)? {
                if s.is_active(now) {
                    out.push(s);
                }
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(out)
    }
}

#[async_trait]
impl RevocationStore for RedbStore {
    async fn revoke_token(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let key = token_hash.to_string();
        self.write(move |tx| put(tx, REVOKED_TOKENS, &key, &expires_at)).await
    }

    async fn live_revocations(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        self.write(move |tx| {
            let mut t = tx.open_table(REVOKED_TOKENS).map_err(backend)?;
            let mut live = Vec::new();
            let mut expired = Vec::new();
            for row in t.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let exp: DateTime<Utc> = decode("revoked_tokens", v.value())?;
                if exp > now {
                    live.push((k.value().to_string(), exp));
                } else {
                    expired.push(k.value().to_string());
                }
            }
            for k in expired {
                t.remove(k.as_str()).map_err(backend)?;
            }
            Ok(live)
        })
        .await
    }
}

#[async_trait]
impl LockoutStore for RedbStore {
    async fn lockout(&self, key: &str) -> StoreResult<Option<LockoutRecord>> {
        self.read(LOCKOUTS, "lockouts", key)
    }

    async fn record_failure(
        &self,
        key: &str,
        user_id: Option<String>,
        ip: &str,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
    ) -> StoreResult<FailureStatus> {
        let key = key.to_string();
        let ip = ip.to_string();
        self.write(move |tx| {
            let mut t = tx.open_table(LOCKOUTS).map_err(backend)?;
            let mut rec = get::<LockoutRecord>(&t, "lockouts", &key)?.unwrap_or_default();
            let was_locked = rec.locked_at(now).is_some();
            rec.apply_failure(user_id, ip, now, policy);
            t.insert(key.as_str(), encode(&rec)?.as_slice()).map_err(backend)?;
            drop(t);
            if let Some(uid) = &rec.user_id {
                let mut idx = tx.open_table(USER_LOCKOUTS).map_err(backend)?;
                idx.insert(format!("{uid}/{key}").as_str(), &[][..]).map_err(backend)?;
            }
            let locked_until = rec.locked_at(now);
            Ok(FailureStatus {
                locked_until,
                newly_locked: locked_until.is_some() && !was_locked,
                attempts_remaining: rec.attempts_remaining(policy),
            })
        })
        .await
    }

    async fn clear_lockout(&self, key: &str) -> StoreResult<()> {
        let key = key.to_string();
        self.write(move |tx| remove_lockout(tx, &key).map(drop)).await
    }

    async fn clear_user_lockouts(&self, user_id: &str, account_key: &str) -> StoreResult<Vec<String>> {
        let prefix = format!("{user_id}/");
        let account_key = account_key.to_string();
        self.write(move |tx| {
            let mut keys = vec![account_key];
            {
                let idx = tx.open_table(USER_LOCKOUTS).map_err(backend)?;
                for row in idx
                    .range(prefix.as_str()..prefix_end(&prefix).as_str())
                    .map_err(backend)?
                {
                    let (k, _) = row.map_err(backend)?;
                    let key = &k.value()[prefix.len()..];
                    if !keys.iter().any(|have| have == key) {
                        keys.push(key.to_string());
                    }
                }
            }
            let mut cleared = Vec::new();
            for key in keys {
                if remove_lockout(tx, &key)? {
                    cleared.push(key);
                }
            }
            Ok(cleared)
        })
        .await
    }
}

/// Removes one lockout record and its entry in the user index; false if
/// there was none.
fn remove_lockout(tx: &WriteTransaction, key: &str) -> StoreResult<bool> {
    let mut t = tx.open_table(LOCKOUTS).map_err(backend)?;
    let Some(rec) = get::<LockoutRecord>(&t, "lockouts", key)? else {
        return Ok(false);
    };
    t.remove(key).map_err(backend)?;
    if let Some(uid) = rec.user_id {
        let mut idx = tx.open_table(USER_LOCKOUTS).map_err(backend)?;
        idx.remove(format!("{uid}/{key}").as_str()).map_err(backend)?;
    }
    Ok(true)
}

/// Read-modify-write of one user inside a write transaction; `f` returns
/// whether to save. `None` when the user does not exist.
fn modify_user<R>(
    tx: &WriteTransaction,
    id: &str,
    f: impl FnOnce(&mut UserRecord) -> (bool, R),
) -> StoreResult<Option<R>> {
    let mut users = tx.open_table(USERS).map_err(backend)?;
    let Some(mut user) = get::<UserRecord>(&users, "users", id)? else {
        return Ok(None);
    };
    let (save, out) = f(&mut user);
    if save {
        users.insert(id, encode(&user)?.as_slice()).map_err(backend)?;
    }
    Ok(Some(out))
}

impl RedbStore {
    /// Changes some fields of one user in one transaction; returns the
    /// updated record.
    async fn update_user(
        &self,
        user_id: &str,
        f: impl FnOnce(&mut UserRecord) + Send + 'static,
    ) -> StoreResult<Option<UserRecord>> {
        let id = user_id.to_string();
        self.write(move |tx| {
            modify_user(tx, &id, |u| {
                f(u);
                (true, u.clone())
            })
        })
        .await
    }

    async fn totp_change(
        &self,
        user_id: &str,
        f: impl FnOnce(&mut UserRecord) -> TotpChange + Send + 'static,
    ) -> StoreResult<TotpChange> {
        let id = user_id.to_string();
        self.write(move |tx| {
            Ok(modify_user(tx, &id, |u| {
                let c = f(u);
                (c == TotpChange::Done, c)
            })?
            .unwrap_or(TotpChange::NoUser))
        })
        .await
    }
}

#[async_trait]
impl TwoFactorStore for RedbStore {
    async fn set_pending_totp(&self, user_id: &str, sealed_secret: String) -> StoreResult<TotpChange> {
        self.totp_change(user_id, move |u| {
            if u.two_factor_enabled {
                return TotpChange::AlreadyEnabled;
            }
            u.totp = Some(TotpRecord {
                sealed_secret,
                enabled: false,
                last_step: None,
                backup_codes: vec![],
            });
            TotpChange::Done
        })
        .await
    }

    async fn activate_totp(&self, user_id: &str, step: u64, backup_codes: Vec<String>) -> StoreResult<TotpChange> {
        self.totp_change(user_id, move |u| {
            if u.two_factor_enabled {
                return TotpChange::AlreadyEnabled;
            }
            let Some(t) = u.totp.as_mut() else {
                return TotpChange::NotEnabled;
            };
            if t.last_step.is_some_and(|last| step <= last) {
                return TotpChange::Replayed;
            }
            t.enabled = true;
            t.last_step = Some(step);
            t.backup_codes = backup_codes;
            u.two_factor_enabled = true;
            TotpChange::Done
        })
        .await
    }

    async fn disable_totp(&self, user_id: &str) -> StoreResult<TotpChange> {
        self.totp_change(user_id, |u| {
            if !u.two_factor_enabled && u.totp.is_none() {
                return TotpChange::NotEnabled;
            }
            u.two_factor_enabled = false;
            u.totp = None;
            TotpChange::Done
        })
        .await
    }

    async fn use_totp_step(&self, user_id: &str, step: u64) -> StoreResult<TotpChange> {
        self.totp_change(user_id, move |u| {
            let Some(t) = u.totp.as_mut().filter(|t| t.enabled) else {
                return TotpChange::NotEnabled;
            };
            if t.last_step.is_some_and(|last| step <= last) {
                return TotpChange::Replayed;
            }
            t.last_step = Some(step);
            TotpChange::Done
        })
        .await
    }

    async fn use_backup_code(&self, user_id: &str, code_hash: &str) -> StoreResult<Option<usize>> {
        let id = user_id.to_string();
        let hash = code_hash.to_string();
        self.write(move |tx| {
            Ok(modify_user(tx, &id, |u| {
                let Some(t) = u.totp.as_mut().filter(|t| t.enabled) else {
                    return (false, None);
                };
                match t
                    .backup_codes
                    .iter()
                    .position(|h| bool::from(subtle::ConstantTimeEq::ct_eq(h.as_bytes(), hash.as_bytes())))
                {
                    Some(i) => {
                        t.backup_codes.remove(i);
                        (true, Some(t.backup_codes.len()))
                    }
                    None => (false, None),
                }
            })?
            .flatten())
        })
        .await
    }

    async fn challenge_spent(&self, jti: &str) -> StoreResult<bool> {
        Ok(self
            .read::<DateTime<Utc>>(SPENT_CHALLENGES, "spent_challenges", jti)?
            .is_some())
    }

    async fn consume_challenge(&self, jti: &str, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        let jti = jti.to_string();
        self.write(move |tx| {
            let mut t = tx.open_table(SPENT_CHALLENGES).map_err(backend)?;
            if t.get(jti.as_str()).map_err(backend)?.is_some() {
                return Ok(false);
            }
            // Opportunistic purge keeps the table small: challenges live 5 min.
            let now = Utc::now();
            let mut expired = Vec::new();
            for row in t.iter().map_err(backend)?.take(64) {
                let (k, v) = row.map_err(backend)?;
                let exp: DateTime<Utc> = decode("spent_challenges", v.value())?;
                if exp < now {
                    expired.push(k.value().to_string());
                }
            }
            for k in expired {
                t.remove(k.as_str()).map_err(backend)?;
            }
            t.insert(jti.as_str(), encode(&expires_at)?.as_slice())
                .map_err(backend)?;
            Ok(true)
        })
        .await
    }
}

fn event_matches(e: &EventRecord, f: &EventFilter) -> bool {
    f.event.as_ref().is_none_or(|t| &e.event == t) && f.since.is_none_or(|s| e.timestamp >= s)
}

#[async_trait]
impl EventStore for RedbStore {
    async fn record_event(&self, event: EventRecord, alert: Option<OutboxMessage>) -> StoreResult<()> {
        self.write(move |tx| {
            put(tx, EVENTS, &event.id, &event)?;
            if let Some(uid) = &event.user_id {
                let mut ue = tx.open_table(USER_EVENTS).map_err(backend)?;
                let key = format!("{uid}/{}", event.id);
                ue.insert(key.as_str(), [].as_slice()).map_err(backend)?;
            }
            if let Some(mail) = alert {
                put(tx, OUTBOX, &mail.id, &mail)?;
            }
            Ok(())
        })
        .await
    }

    async fn events(&self, f: EventFilter) -> StoreResult<Vec<EventRecord>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let events = tx.open_table(EVENTS).map_err(backend)?;
        let mut out = Vec::new();
        let limit = f.limit.max(1);
        let consider = |e: EventRecord, out: &mut Vec<EventRecord>| -> bool {
            if f.since.is_some_and(|s| e.timestamp < s) {
                return false; // newest first: everything after is older still
            }
            if event_matches(&e, &f) {
                out.push(e);
            }
            out.len() < limit
        };
        match &f.user_id {
            Some(uid) => {
                let prefix = format!("{uid}/");
                let end = match &f.before_id {
                    Some(b) => format!("{prefix}{b}"),
                    None => prefix_end(&prefix),
                };
                let ue = tx.open_table(USER_EVENTS).map_err(backend)?;
                for row in ue.range(prefix.as_str()..end.as_str()).map_err(backend)?.rev() {
                    let (k, _) = row.map_err(backend)?;
                    let id = &k.value()[prefix.len()..];
                    if let Some(e) = get::<EventRecord>(&events, "events", id)? {
                        if !consider(e, &mut out) {
                            break;
                        }
                    }
                }
            }
            None => {
                let end = f.before_id.clone().unwrap_or_else(|| prefix_end(""));
                for row in events.range(""..end.as_str()).map_err(backend)?.rev() {
                    let (_, v) = row.map_err(backend)?;
                    if !consider(decode("events", v.value())?, &mut out) {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    async fn purge_events(&self, before: DateTime<Utc>) -> StoreResult<usize> {
        self.write(move |tx| {
            let mut events = tx.open_table(EVENTS).map_err(backend)?;
            let mut old = Vec::new();
            // Ids are UUIDv7, so the oldest come first.
            for row in events.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let e: EventRecord = decode("events", v.value())?;
                if e.timestamp >= before {
                    break;
                }
                old.push((k.value().to_string(), e.user_id));
            }
            let mut ue = tx.open_table(USER_EVENTS).map_err(backend)?;
            for (id, uid) in &old {
                events.remove(id.as_str()).map_err(backend)?;
                if let Some(uid) = uid {
                    ue.remove(format!("{uid}/{id}").as_str()).map_err(backend)?;
                }
            }
            Ok(old.len())
        })
        .await
    }
}

#[async_trait]
impl OutboxStore for RedbStore {
    async fn claim_due_mail(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: chrono::Duration,
    ) -> StoreResult<Vec<OutboxMessage>> {
        // A lost claim (no fsync) only lets the message be claimed again.
        self.write_with(Durability::Eventual, move |tx| {
            let mut t = tx.open_table(OUTBOX).map_err(backend)?;
            let mut due = Vec::new();
            for row in t.iter().map_err(backend)? {
                let (_, v) = row.map_err(backend)?;
                let m: OutboxMessage = decode("outbox", v.value())?;
                if m.next_attempt_at <= now {
                    due.push(m);
                    if due.len() >= limit {
                        break;
                    }
                }
            }
            for m in &due {
                let mut leased = m.clone();
                leased.next_attempt_at = now + lease;
                t.insert(m.id.as_str(), encode(&leased)?.as_slice()).map_err(backend)?;
            }
            Ok(due)
        })
        .await
    }

    async fn mail_sent(&self, id: &str) -> StoreResult<()> {
        let id = id.to_string();
        // A lost "sent" mark means one resend (at-least-once), never a lost alert.
        self.write_with(Durability::Eventual, move |tx| {
            let mut t = tx.open_table(OUTBOX).map_err(backend)?;
            t.remove(id.as_str()).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn mail_failed(&self, id: &str, next_attempt_at: DateTime<Utc>, error: String) -> StoreResult<()> {
        let id = id.to_string();
        self.write_with(Durability::Eventual, move |tx| {
            let mut t = tx.open_table(OUTBOX).map_err(backend)?;
            let Some(mut m) = get::<OutboxMessage>(&t, "outbox", &id)? else {
                return Ok(());
            };
            m.attempts += 1;
            m.next_attempt_at = next_attempt_at;
            m.last_error = Some(error);
            t.insert(id.as_str(), encode(&m)?.as_slice()).map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn outbox_depth(&self) -> StoreResult<usize> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(OUTBOX).map_err(backend)?;
        Ok(t.len().map_err(backend)? as usize)
    }

    async fn next_mail_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(OUTBOX).map_err(backend)?;
        let mut next: Option<DateTime<Utc>> = None;
        for row in t.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            let m: OutboxMessage = decode("outbox", v.value())?;
            next = Some(next.map_or(m.next_attempt_at, |n| n.min(m.next_attempt_at)));
        }
        Ok(next)
    }
}

#[async_trait]
impl DeviceStore for RedbStore {
    async fn touch_device(&self, device: DeviceRecord) -> StoreResult<bool> {
        self.write(move |tx| {
            let mut t = tx.open_table(DEVICES).map_err(backend)?;
            let key = format!("{}/{}", device.user_id, device.id);
            let (record, new) = match get::<DeviceRecord>(&t, "devices", &key)? {
                Some(mut known) => {
                    known.last_seen = device.last_seen;
                    known.last_ip = device.last_ip.clone();
                    for jti in &device.token_jtis {
                        known.bind_token(jti.clone());
                    }
                    (known, false)
                }
                None => (device, true),
            };
            t.insert(key.as_str(), encode(&record)?.as_slice()).map_err(backend)?;
            Ok(new)
        })
        .await
    }

    async fn user_devices(&self, user_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        let prefix = format!("{user_id}/");
        let end = prefix_end(&prefix);
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(DEVICES).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range(prefix.as_str()..end.as_str()).map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(decode::<DeviceRecord>("devices", v.value())?);
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.last_seen));
        Ok(out)
    }

    async fn device(&self, user_id: &str, device_id: &str) -> StoreResult<Option<DeviceRecord>> {
        self.read(DEVICES, "devices", &format!("{user_id}/{device_id}"))
    }

    async fn remove_device(&self, user_id: &str, device_id: &str) -> StoreResult<bool> {
        let key = format!("{user_id}/{device_id}");
        self.write(move |tx| {
            let mut t = tx.open_table(DEVICES).map_err(backend)?;
            let removed = t.remove(key.as_str()).map_err(backend)?.is_some();
            Ok(removed)
        })
        .await
    }
}

/// Unbinds every device token of the user whose keys start with `prefix`.
fn retire_device_tokens(tx: &WriteTransaction, prefix: &str) -> StoreResult<()> {
    let mut t = tx.open_table(DEVICES).map_err(backend)?;
    let end = prefix_end(prefix);
    let mut bound = Vec::new();
    for row in t.range(prefix..end.as_str()).map_err(backend)? {
        let (k, v) = row.map_err(backend)?;
        let device: DeviceRecord = decode("devices", v.value())?;
        if !device.token_jtis.is_empty() {
            bound.push((k.value().to_string(), device));
        }
    }
    for (key, mut device) in bound {
        device.token_jtis.clear();
        t.insert(key.as_str(), encode(&device)?.as_slice()).map_err(backend)?;
    }
    Ok(())
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredAnswer {
    fingerprint: String,
    /// Absent in answers stored before receipts were typed: such a key is
    /// treated as unused (they expired within a day of the upgrade).
    #[serde(default)]
    receipt: Option<OrderReceipt>,
    /// When the answer was stored (unix seconds); answers from before this
    /// field existed count as old.
    #[serde(default)]
    stored_at: i64,
}

#[async_trait]
impl PortfolioStore for RedbStore {
    async fn execute_order(
        &self,
        user_id: &str,
        order: Order,
        market_price: Option<rust_decimal::Decimal>,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<OrderOutcome> {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            let idem_key = idempotency.as_ref().map(|k| format!("{user_id}/{}", k.key));
            if let (Some(key), Some(idem)) = (&idem_key, &idempotency) {
                let t = tx.open_table(IDEMPOTENCY).map_err(backend)?;
                if let Some(stored) = get::<StoredAnswer>(&t, "idempotency", key)? {
                    if let Some(receipt) = stored.receipt {
                        return Ok(if stored.fingerprint == idem.fingerprint {
                            OrderOutcome::Replayed(receipt)
                        } else {
                            OrderOutcome::IdempotencyConflict
                        });
                    }
                }
            }
            let pos_key = format!("{user_id}/{}", order.symbol);
            let mut positions = tx.open_table(POSITIONS).map_err(backend)?;
            let current = get::<Position>(&positions, "positions", &pos_key)?;
            let (position, total, realized) = match apply_order(current.as_ref(), &order) {
                Ok(v) => v,
                Err(e) => return Ok(OrderOutcome::Rejected(e)),
            };
            let txn = Transaction {
                id: crate::domain::new_id(),
                side: order.side,
                symbol: order.symbol.clone(),
                quantity: order.quantity,
                price: order.price,
                fee: order.fee,
                total,
                realized_pnl: realized,
                executed_at: Utc::now(),
            };
            positions
                .insert(pos_key.as_str(), encode(&position)?.as_slice())
                .map_err(backend)?;
            drop(positions);
            put(tx, TRANSACTIONS, &format!("{user_id}/{}", txn.id), &txn)?;
            let receipt = OrderReceipt {
                transaction: txn,
                position,
                market_price,
            };
            if let (Some(key), Some(idem)) = (idem_key, idempotency) {
                let stored = StoredAnswer {
                    fingerprint: idem.fingerprint,
                    receipt: Some(receipt.clone()),
                    stored_at: receipt.transaction.executed_at.timestamp(),
                };
                put(tx, IDEMPOTENCY, &key, &stored)?;
            }
            Ok(OrderOutcome::Executed(receipt))
        })
        .await
    }

    async fn positions(&self, user_id: &str) -> StoreResult<Vec<Position>> {
        let prefix = format!("{user_id}/");
        let end = prefix_end(&prefix);
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(POSITIONS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range(prefix.as_str()..end.as_str()).map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(decode("positions", v.value())?);
        }
        Ok(out)
    }

    async fn transactions(
        &self,
        user_id: &str,
        symbol: Option<&str>,
        before_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Transaction>> {
        let prefix = format!("{user_id}/");
        let end = match before_id {
            Some(b) => format!("{prefix}{b}"),
            None => prefix_end(&prefix),
        };
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(TRANSACTIONS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range(prefix.as_str()..end.as_str()).map_err(backend)?.rev() {
            let (_, v) = row.map_err(backend)?;
            let txn: Transaction = decode("transactions", v.value())?;
            if symbol.is_none_or(|s| s == txn.symbol) {
                out.push(txn);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl PriceStore for RedbStore {
    async fn put_imported_series(&self, series: Series) -> StoreResult<()> {
        self.write(move |tx| put(tx, PRICE_SERIES, &series.symbol.clone(), &series))
            .await
    }

    async fn imported_series(&self) -> StoreResult<Vec<Series>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(PRICE_SERIES).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(decode("price_series", v.value())?);
        }
        Ok(out)
    }
}

fn news_key(published_at: DateTime<Utc>, id: &str) -> String {
    let micros = published_at.timestamp_micros().max(0);
    format!("{micros:020}|{id}")
}

#[async_trait]
impl NewsStore for RedbStore {
    async fn insert_news(&self, items: Vec<NewsItem>) -> StoreResult<usize> {
        self.write(move |tx| {
            let mut ids = tx.open_table(NEWS_IDS).map_err(backend)?;
            let mut news = tx.open_table(NEWS).map_err(backend)?;
            let mut added = 0;
            for item in items {
                if ids.get(item.id.as_str()).map_err(backend)?.is_some() {
                    continue;
                }
                let key = news_key(item.published_at, &item.id);
                ids.insert(item.id.as_str(), key.as_bytes()).map_err(backend)?;
                news.insert(key.as_str(), encode(&item)?.as_slice()).map_err(backend)?;
                added += 1;
            }
            Ok(added)
        })
        .await
    }

    async fn news(&self, f: NewsFilter) -> StoreResult<Vec<NewsItem>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(NEWS).map_err(backend)?;
        let end = match &f.after {
            Some(c) => news_key(c.published_at, &c.id),
            None => prefix_end(""),
        };
        let mut out = Vec::new();
        for row in t.range(""..end.as_str()).map_err(backend)?.rev() {
            let (_, v) = row.map_err(backend)?;
            let item: NewsItem = decode("news", v.value())?;
            if f.since.is_some_and(|s| item.published_at < s) {
                break;
            }
            if f.symbol.as_ref().is_some_and(|s| !item.symbols.contains(s)) {
                continue;
            }
            out.push(item);
            if out.len() >= f.limit.max(1) {
                break;
            }
        }
        Ok(out)
    }

    async fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(self.read::<bool>(FLAGS, "flags", name)?.unwrap_or(false))
    }

    async fn set_flag(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |tx| put(tx, FLAGS, &name, &true)).await
    }
}

/// Removes the rows of `table` whose value `expired` says can go; returns
/// how many went.
fn purge_table(
    tx: &WriteTransaction,
    table: Table,
    expired: impl Fn(&[u8]) -> StoreResult<bool>,
) -> StoreResult<usize> {
    let mut t = tx.open_table(table).map_err(backend)?;
    let mut gone = Vec::new();
    for row in t.iter().map_err(backend)? {
        let (k, v) = row.map_err(backend)?;
        if expired(v.value())? {
            gone.push(k.value().to_string());
        }
    }
    for key in &gone {
        t.remove(key.as_str()).map_err(backend)?;
    }
    Ok(gone.len())
}

#[async_trait]
impl MaintenanceStore for RedbStore {
    async fn purge_expired(&self, now: DateTime<Utc>, lockout: LockoutPolicy) -> StoreResult<Purged> {
        let answers_before = (now - chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS)).timestamp();
        self.write(move |tx| {
            Ok(Purged {
                refresh_tokens: purge_table(tx, REFRESH_TOKENS, |v| {
                    Ok(decode::<RefreshRecord>("refresh_tokens", v)?.expires_at <= now)
                })?,
                idempotency_answers: purge_table(tx, IDEMPOTENCY, |v| {
                    Ok(decode::<StoredAnswer>("idempotency", v)?.stored_at < answers_before)
                })?,
                lockouts: purge_table(tx, LOCKOUTS, |v| {
                    let r: LockoutRecord = decode("lockouts", v)?;
                    Ok(r.user_id.is_none() && r.locked_at(now).is_none() && r.live_failures(now, lockout) == 0)
                })?,
            })
        })
        .await
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn ping(&self) -> StoreResult<()> {
        self.db.begin_read().map(|_| ()).map_err(backend)
    }

    fn kind(&self) -> &'static str {
        "embedded"
    }
}

/// Backup and restore: capabilities of the embedded backend only (a
/// PostgreSQL deployment uses the database's own tools).
impl RedbStore {
    /// Writes a consistent snapshot of everything to a new file at `path`
    /// (mode 0600), with `extras` (e.g. key files) stored beside the data.
    /// Returns how many records were copied.
    pub async fn backup(&self, path: &Path, extras: Vec<(String, Vec<u8>)>) -> StoreResult<u64> {
        let db = self.db.clone();
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || snapshot(&db, &path, extras))
            .await
            .map_err(backend)?
    }
}

/// Key files and other non-table data carried by a backup.
const BACKUP_EXTRAS: Table = TableDefinition::new("backup_extras");

/// Copies every table from one read transaction (a consistent snapshot,
/// taken while writers go on) into a new database file.
fn snapshot(db: &Database, path: &Path, extras: Vec<(String, Vec<u8>)>) -> StoreResult<u64> {
    use std::os::unix::fs::OpenOptionsExt;
    // Created here first so the file is 0600 before any data reaches it.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::backend(format!("cannot create {}: {e}", path.display())))?;
    let out = Database::create(path).map_err(backend)?;
    let read = db.begin_read().map_err(backend)?;
    let write = out.begin_write().map_err(backend)?;
    let mut rows = 0u64;
    for def in ALL_TABLES {
        let src = read.open_table(def).map_err(backend)?;
        let mut dst = write.open_table(def).map_err(backend)?;
        for row in src.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            dst.insert(k.value(), v.value()).map_err(backend)?;
            rows += 1;
        }
    }
    {
        let mut t = write.open_table(BACKUP_EXTRAS).map_err(backend)?;
        for (name, bytes) in &extras {
            t.insert(name.as_str(), bytes.as_slice()).map_err(backend)?;
        }
    }
    write.commit().map_err(backend)?;
    Ok(rows)
}

/// A backup checked and copied next to the database, ready to replace it.
pub struct StagedRestore {
    data_dir: std::path::PathBuf,
    staged: std::path::PathBuf,
    /// Records in the backup.
    pub rows: u64,
    /// Files carried beside the data (key files), by plain file name; the
    /// caller writes them back before [`StagedRestore::commit`].
    pub extras: Vec<(String, Vec<u8>)>,
}

impl RedbStore {
    /// First half of a restore (the server must be stopped): checks that
    /// `backup` is a fortfolio snapshot, copies it beside the database, and
    /// refuses while a server holds the database.
    pub fn stage_restore(data_dir: &Path, backup: &Path) -> StoreResult<StagedRestore> {
        std::fs::create_dir_all(data_dir).map_err(backend)?;
        let staged = data_dir.join(format!("{FILE_NAME}.restoring"));
        let _ = std::fs::remove_file(&staged);
        std::fs::copy(backup, &staged)
            .map_err(|e| StoreError::backend(format!("cannot read {}: {e}", backup.display())))?;
        let not_a_backup = |e: &dyn std::fmt::Display| {
            StoreError::backend(format!("{} is not a fortfolio backup: {e}", backup.display()))
        };
        let (rows, extras) = {
            let db = Database::open(&staged).map_err(|e| not_a_backup(&e))?;
            let read = db.begin_read().map_err(backend)?;
            let mut rows = 0u64;
            for def in ALL_TABLES {
                let t = read.open_table(def).map_err(|e| not_a_backup(&e))?;
                rows += t.len().map_err(backend)?;
            }
            let mut extras = Vec::new();
            if let Ok(t) = read.open_table(BACKUP_EXTRAS) {
                for row in t.iter().map_err(backend)? {
                    let (k, v) = row.map_err(backend)?;
                    let name = k.value().to_string();
                    // Only plain file names, never paths, from a backup file.
                    if !name.contains('/') && !name.starts_with('.') {
                        extras.push((name, v.value().to_vec()));
                    }
                }
            }
            (rows, extras)
        };
        if data_dir.join(FILE_NAME).exists() {
            // Refuses while a server holds the database.
            drop(RedbStore::open(data_dir)?);
        }
        Ok(StagedRestore {
            data_dir: data_dir.to_path_buf(),
            staged,
            rows,
            extras,
        })
    }
}

impl StagedRestore {
    /// Second half: atomically renames the snapshot over the database; the
    /// previous database is kept as `fortfolio.redb.before-restore-<time>`.
    pub fn commit(self) -> StoreResult<u64> {
        let current = self.data_dir.join(FILE_NAME);
        if current.exists() {
            let keep = self.data_dir.join(format!(
                "{FILE_NAME}.before-restore-{}",
                Utc::now().format("%Y%m%dT%H%M%S")
            ));
            std::fs::rename(&current, &keep).map_err(backend)?;
        }
        std::fs::rename(&self.staged, &current).map_err(backend)?;
        Ok(self.rows)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redb_meets_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        crate::store::contract::run_all(store).await;
    }

    #[tokio::test]
    async fn purge_keeps_what_can_still_matter() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(dir.path()).unwrap();
        let now = Utc::now();
        let hour = chrono::Duration::hours(1);
        let policy = LockoutPolicy {
            threshold: 5,
            window: hour,
            duration: hour,
        };
        for (hash, expires_at) in [("old", now - hour), ("live", now + hour)] {
            let refresh = RefreshRecord {
                session_id: "s".into(),
                user_id: "u".into(),
                expires_at,
                rotated_at: Some(now - hour),
            };
            store
                .write(move |tx| put(tx, REFRESH_TOKENS, hash, &refresh))
                .await
                .unwrap();
        }
        for (key, at) in [("u/old", now - hour * 25), ("u/new", now - hour)] {
            let answer = StoredAnswer {
                fingerprint: "f".into(),
                receipt: None,
                stored_at: at.timestamp(),
            };
            store.write(move |tx| put(tx, IDEMPOTENCY, key, &answer)).await.unwrap();
        }
        let two_hours_ago = now - hour * 2;
        store
            .record_failure("account:ghost@x", None, "ip", two_hours_ago, policy)
            .await
            .unwrap();
        store
            .record_failure("account:fresh@x", None, "ip", now, policy)
            .await
            .unwrap();
        store
            .record_failure("account:known@x", Some("u".into()), "ip", two_hours_ago, policy)
            .await
            .unwrap();

        let purged = store.purge_expired(now, policy).await.unwrap();
        assert_eq!(
            purged,
            Purged {
                refresh_tokens: 1,
                idempotency_answers: 1,
                lockouts: 1
            }
        );
        assert!(store.lockout("account:ghost@x").await.unwrap().is_none());
        assert!(store.lockout("account:fresh@x").await.unwrap().is_some());
        assert!(store.lockout("account:known@x").await.unwrap().is_some());
        assert_eq!(store.purge_expired(now, policy).await.unwrap(), Purged::default());
    }
}
