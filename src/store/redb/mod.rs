//! The embedded store: one redb file (`<data_dir>/fortfolio.redb`), one
//! file here per concern.
//!
//! Records are JSON values under string keys. Reads run inline (redb reads are
//! MVCC snapshots and cheap); writes, which fsync on commit, run on the
//! blocking pool so they never stall the async workers.

mod backup;
mod devices;
mod events;
mod export;
mod lockouts;
mod maintenance;
mod market;
mod portfolio;
mod sessions;
mod tokens;
mod users;

pub use backup::{contents_of, Contents, Snapshot, StagedRestore};

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use redb::{Database, Durability, ReadableTable, TableDefinition, WriteTransaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::domain::market::{NewsItem, Series};
use crate::domain::portfolio::{Order, Position, Transaction};

use super::{
    ChainCut, ChainLink, CreateUserError, DeviceRecord, DeviceStore, EmailChange, EventFilter, EventRecord, EventStore,
    FailureStatus, IdempotencyKey, LockoutPolicy, LockoutRecord, LockoutStore, MaintenanceStore, NewsFilter, NewsStore,
    OrderOutcome, OrderReceipt, OutboxMessage, OutboxStore, PortfolioStore, PriceStore, Purged, RefreshRecord,
    RevocationStore, Rotation, SessionRecord, SessionStore, SignInEvents, Store, StoreError, StoreResult, TotpChange,
    TwoFactorStore, UserRecord, UserStore, IDEMPOTENCY_TTL_HOURS,
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
/// job name → JobLease.
const JOB_LEASES: Table = TableDefinition::new("job_leases");
/// Account token hash → `AccountToken`.
const ACCOUNT_TOKENS: Table = TableDefinition::new("account_tokens");
/// `<user>/<purpose>/<hash>` → empty.
const USER_ACCOUNT_TOKENS: Table = TableDefinition::new("user_account_tokens");
/// Chain name → its newest stored `ChainLink`.
const CHAIN_HEADS: Table = TableDefinition::new("chain_heads");

const ALL_TABLES: [Table; 24] = [
    JOB_LEASES,
    ACCOUNT_TOKENS,
    USER_ACCOUNT_TOKENS,
    CHAIN_HEADS,
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
    /// Counts write transactions (see `Store::write_epoch`); the database
    /// file is locked to this process, so no write escapes it.
    epoch: Arc<AtomicU64>,
    /// An epoch every write counted up to which is known to be on disk:
    /// the writes `store::sync_once` commits without an fsync wait for it
    /// to pass them, which any durable commit may do for them.
    durable: Arc<AtomicU64>,
    /// Writes no one waits on (a security event without mail), left by
    /// `store::sync_once` scopes to the durable commit that closes them.
    later: Arc<Mutex<Vec<LaterWrite>>>,
}

/// A write applied inside another transaction (see `RedbStore::write_later`).
type LaterWrite = Box<dyn FnOnce(&WriteTransaction) -> StoreResult<()> + Send>;

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
        Ok(Self {
            db: Arc::new(db),
            epoch: Arc::default(),
            durable: Arc::default(),
            later: Arc::default(),
        })
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

    /// [`Self::write`] with a chosen durability. `Eventual` is for writes
    /// whose loss in a crash is harmless, like outbox bookkeeping (redb
    /// still syncs it on Linux). Inside [`crate::store::sync_once`] an
    /// `Immediate` write commits without the fsync, which the scope's end
    /// makes instead ([`Self::sync_to_disk`]).
    async fn write_with<T, F>(&self, durability: Durability, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    {
        let durability = match durability {
            Durability::Immediate if crate::store::defer_sync() => Durability::None,
            other => other,
        };
        self.commit_as(durability, f).await
    }

    /// Runs `f` in a write transaction committed with `durability` as it
    /// is, even inside a [`crate::store::sync_once`] scope (which this
    /// write then leaves nothing to sync for).
    async fn commit_as<T, F>(&self, durability: Durability, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&WriteTransaction) -> StoreResult<T> + Send + 'static,
    {
        let (db, epoch, durable) = (self.db.clone(), self.epoch.clone(), self.durable.clone());
        tokio::task::spawn_blocking(move || {
            let mut tx = db.begin_write().map_err(backend)?;
            tx.set_durability(durability);
            let before = epoch.load(Ordering::Acquire);
            let out = f(&tx);
            // Counted whatever the outcome: a failed commit may still have
            // written, and a spurious count costs only a cache miss.
            let committed = out.and_then(|out| tx.commit().map(|()| out).map_err(backend));
            epoch.fetch_add(1, Ordering::Release);
            // Only `Immediate` promises the disk (`Eventual` does not, off Linux).
            if committed.is_ok() && matches!(durability, Durability::Immediate) {
                durable.fetch_max(before, Ordering::Release);
            }
            committed
        })
        .await
        .map_err(backend)?
    }

    /// Inside a [`crate::store::sync_once`] scope, leaves `f` (a write whose
    /// outcome no one waits on) to the durable commit closing the scope,
    /// which saves a commit of its own; elsewhere hands it back. Until then
    /// readers do not see it; if it fails there, it is logged and lost and
    /// the scope's other writes are synced all the same, as a failed event
    /// write always was only logged.
    fn write_later<F>(&self, f: F) -> Option<F>
    where
        F: FnOnce(&WriteTransaction) -> StoreResult<()> + Send + 'static,
    {
        if !crate::store::defer_sync() {
            return Some(f);
        }
        self.later
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(f));
        // Counted after it is queued: a durable commit that counts it
        // takes the queue after counting, so it holds it.
        self.epoch.fetch_add(1, Ordering::Release);
        None
    }

    /// Puts every write counted so far on disk, with one durable commit
    /// (carrying the writes left to it) unless another durable commit
    /// already did (concurrent logins share one). Every write counted when
    /// a durable commit begins (it holds the write lock) finished before
    /// it, so the commit covers it.
    pub(super) async fn sync_to_disk(&self) -> StoreResult<()> {
        let target = self.epoch.load(Ordering::Acquire);
        let queued = |later: &Mutex<Vec<LaterWrite>>| !later.lock().unwrap_or_else(PoisonError::into_inner).is_empty();
        if self.durable.load(Ordering::Acquire) >= target && !queued(&self.later) {
            return Ok(());
        }
        let (db, epoch, durable, later) = (
            self.db.clone(),
            self.epoch.clone(),
            self.durable.clone(),
            self.later.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let mut tx = db.begin_write().map_err(backend)?;
            // Counted first, taken after: whatever is counted is taken.
            let before = epoch.load(Ordering::Acquire);
            let writes = std::mem::take(&mut *later.lock().unwrap_or_else(PoisonError::into_inner));
            // The commit we waited behind may have been a durable one.
            if writes.is_empty() && durable.load(Ordering::Acquire) >= target {
                return tx.abort().map_err(backend);
            }
            tx.set_durability(Durability::Immediate);
            let mut applied = !writes.is_empty();
            if let Err(e) = writes.into_iter().try_for_each(|w| w(&tx)) {
                tracing::error!(error = %e, "cannot store the writes left to a closing commit (security events)");
                tx.abort().map_err(backend)?;
                tx = db.begin_write().map_err(backend)?;
                tx.set_durability(Durability::Immediate);
                applied = false;
            }
            let committed = tx.commit().map_err(backend);
            if applied {
                // What it applied is news to cached reads.
                epoch.fetch_add(1, Ordering::Release);
            }
            committed?;
            durable.fetch_max(before, Ordering::Release);
            Ok(())
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::portfolio::StoredAnswer;
    use super::*;
    use chrono::Utc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redb_meets_the_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        crate::store::contract::run_all(store).await;
    }

    /// Inside `sync_once` each write is seen at once but not yet synced;
    /// the scope's end syncs, and a write outside any scope syncs itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sync_once_scope_syncs_its_writes_once_at_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        let synced = |s: &RedbStore| s.durable.load(Ordering::Acquire) >= s.epoch.load(Ordering::Acquire);
        let inner = store.clone();
        let durable_before = store.durable.load(Ordering::Acquire);
        let dyn_store: Arc<dyn Store> = store.clone();
        crate::store::sync_once(&dyn_store, async move {
            for name in ["first", "second"] {
                inner.set_flag(name).await.unwrap();
                assert!(inner.flag(name).await.unwrap(), "seen before the sync");
            }
            // A durable commit of the first write would have moved it.
            assert_eq!(
                inner.durable.load(Ordering::Acquire),
                durable_before,
                "no write in the scope waited for the disk"
            );
            assert!(!synced(&inner));
        })
        .await
        .unwrap();
        assert!(synced(&store), "the scope's end synced both");
        store.set_flag("third").await.unwrap();
        store.set_flag("fourth").await.unwrap();
        assert!(
            !synced(&store),
            "an immediate commit covers the writes before it, not itself"
        );
        store.sync().await.unwrap();
        assert!(synced(&store));
        drop((store, dyn_store));
        let again = RedbStore::open(dir.path()).unwrap();
        for name in ["first", "second", "third", "fourth"] {
            assert!(again.flag(name).await.unwrap(), "{name} survived a reopen");
        }
    }

    /// A scope dropped before its end (its client went away) still has
    /// its writes synced.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_abandoned_sync_once_scope_is_synced_all_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        let (inner, dyn_store): (_, Arc<dyn Store>) = (store.clone(), store.clone());
        let abandoned = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            crate::store::sync_once(&dyn_store, async move {
                inner.set_flag("written").await.unwrap();
                std::future::pending::<()>().await;
            }),
        )
        .await;
        assert!(abandoned.is_err(), "the scope never ends on its own");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.durable.load(Ordering::Acquire) < store.epoch.load(Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the dropped scope's write was never synced"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// An event without mail recorded in a sync_once scope is written by
    /// the scope's closing durable commit, not a commit of its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_scopes_events_ride_its_closing_commit() {
        use crate::store::{EventFilter, EventRecord, EventStore};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(RedbStore::open(dir.path()).unwrap());
        let dyn_store: Arc<dyn Store> = store.clone();
        let event = |id: &str| EventRecord {
            id: id.into(),
            timestamp: crate::domain::now(),
            event: "login_success".into(),
            outcome: "success".into(),
            user_id: Some("u1".into()),
            email: None,
            ip: None,
            user_agent: None,
            request_id: None,
            details: serde_json::json!({}),
            link: None,
        };
        let listed = |s: Arc<RedbStore>| async move {
            s.events(EventFilter {
                user_id: Some("u1".into()),
                limit: 10,
                ..EventFilter::default()
            })
            .await
            .unwrap()
            .len()
        };
        let inner = store.clone();
        crate::store::sync_once(&dyn_store, async move {
            inner.record_event(event("e1"), vec![]).await.unwrap();
            assert_eq!(listed(inner.clone()).await, 0, "left to the closing commit");
            assert_eq!(inner.later.lock().unwrap().len(), 1);
        })
        .await
        .unwrap();
        assert!(store.later.lock().unwrap().is_empty());
        assert_eq!(listed(store.clone()).await, 1, "written when the scope ends");
        store.record_event(event("e2"), vec![]).await.unwrap();
        assert_eq!(listed(store.clone()).await, 2, "outside a scope, written at once");
        drop((store, dyn_store));
        let again = Arc::new(RedbStore::open(dir.path()).unwrap());
        assert_eq!(listed(again).await, 2, "both survived a reopen");
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
                lockouts: 1,
                account_tokens: 0,
            }
        );
        assert!(store.lockout("account:ghost@x").await.unwrap().is_none());
        assert!(store.lockout("account:fresh@x").await.unwrap().is_some());
        assert!(store.lockout("account:known@x").await.unwrap().is_some());
        assert_eq!(store.purge_expired(now, policy).await.unwrap(), Purged::default());
    }
}
