//! The PostgreSQL store (`storage.backend = "postgres"`, SPEC §10): one
//! database shared by every instance, one file here per concern.
//!
//! tokio-postgres with a deadpool pool: queries are plain SQL prepared at
//! run time (and cached per connection), so building needs no database.
//! Each atomic trait method is one transaction at READ COMMITTED that takes
//! the row locks it needs (`SELECT … FOR UPDATE`, `INSERT … ON CONFLICT` on
//! a primary key, `SKIP LOCKED` for the outbox), which serialises exactly
//! the writers that touch the same rows. The schema is a list of versioned
//! migrations embedded in the binary, applied at start under an advisory
//! lock so that instances starting together apply each one once.

mod devices;
mod events;
mod import;
mod lockouts;
mod market;
mod portfolio;
mod sessions;
mod tls;
mod users;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{LockoutPolicy, MaintenanceStore, Purged, Store, StoreError, StoreResult, IDEMPOTENCY_TTL_HOURS};

/// The schema, oldest first: (version, name, SQL). A released migration is
/// never edited; a change is a new one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "initial", include_str!("migrations/0001_initial.sql")),
    (
        2,
        "reauthentication",
        include_str!("migrations/0002_reauthentication.sql"),
    ),
    (
        3,
        "account_lifecycle",
        include_str!("migrations/0003_account_lifecycle.sql"),
    ),
];

/// The advisory lock held while migrating ("fortfoli" in ASCII).
const MIGRATION_LOCK: i64 = 0x666f_7274_666f_6c69;

/// How long a request waits for a pooled connection, or for a new one to
/// be made, before the database counts as unavailable.
const POOL_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL or key=value string), applies
    /// pending migrations and keeps a pool of `pool_size` connections.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        let (config, verification) = tls::parse(url)?;
        Self::connect_with(config, &verification, pool_size).await
    }

    /// As [`connect`](Self::connect), from a parsed configuration (tests set
    /// a `search_path` of their own through `options`).
    async fn connect_with(
        mut config: tokio_postgres::Config,
        verification: &tls::Verification,
        pool_size: usize,
    ) -> StoreResult<Self> {
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(POOL_WAIT);
        }
        if config.get_application_name().is_none() {
            config.application_name("fortfolio");
        }
        let manager = Manager::from_config(
            config,
            tls::connector(verification)?,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::backend(format!("postgres pool: {e}")))?;
        let store = Self { pool };
        store.migrate().await?;
        Ok(store)
    }

    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(pool_error)
    }

    /// Applies the migrations this database lacks, each in a transaction,
    /// under an advisory lock; refuses a database migrated by a newer
    /// fortfolio. Returns the schema version.
    pub async fn migrate(&self) -> StoreResult<i32> {
        let mut client = self.client().await?;
        client
            .batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
            .await
            .map_err(pg)?;
        let applied = apply_migrations(&mut client).await;
        let unlocked = client
            .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
            .await
            .map_err(pg);
        let version = applied?;
        unlocked?;
        Ok(version)
    }

    /// Rows in each table, for `admin migrate`'s final check and for tests.
    pub async fn count(&self, table: &str) -> StoreResult<u64> {
        if !TABLES.contains(&table) {
            return Err(StoreError::backend(format!("unknown table {table}")));
        }
        let client = self.client().await?;
        let row = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .map_err(pg)?;
        Ok(u64::try_from(row.try_get::<_, i64>(0).map_err(pg)?).unwrap_or(0))
    }
}

/// Every table of the schema, for counts and emptiness checks.
pub const TABLES: &[&str] = &[
    "users",
    "account_tokens",
    "sessions",
    "refresh_tokens",
    "revoked_tokens",
    "lockouts",
    "spent_challenges",
    "events",
    "outbox",
    "devices",
    "positions",
    "transactions",
    "idempotency",
    "price_series",
    "candles",
    "news",
    "flags",
];

async fn apply_migrations(client: &mut Object) -> StoreResult<i32> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg)?;
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])
        .await
        .map_err(pg)?;
    let found: i32 = row.try_get(0).map_err(pg)?;
    let mut current = found;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if found > known {
        return Err(StoreError::backend(format!(
            "the database schema is at version {found}, newer than this fortfolio knows ({known}); \
             run the newer fortfolio or restore a matching backup"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        let tx = client.transaction().await.map_err(pg)?;
        tx.batch_execute(sql).await.map_err(pg)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        tracing::info!(version, name, "applied a database migration");
        current = *version;
    }
    Ok(current)
}

/// Sorts a database error into the store's terms: a lost race is a
/// conflict, a lost connection an outage, anything else a fault.
fn pg(e: tokio_postgres::Error) -> StoreError {
    let unavailable = match e.code() {
        Some(code) => {
            if *code == SqlState::T_R_SERIALIZATION_FAILURE || *code == SqlState::T_R_DEADLOCK_DETECTED {
                return StoreError::Conflict(e.into());
            }
            code.code().starts_with("08")
                || [
                    SqlState::ADMIN_SHUTDOWN,
                    SqlState::CRASH_SHUTDOWN,
                    SqlState::CANNOT_CONNECT_NOW,
                    SqlState::TOO_MANY_CONNECTIONS,
                ]
                .contains(code)
        }
        // No SQLSTATE: the connection itself failed (or a value did not
        // convert, which is a fault).
        None => e.is_closed() || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>()),
    };
    if unavailable {
        StoreError::Unavailable(e.into())
    } else {
        StoreError::Backend(e.into())
    }
}

fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg(e),
        PoolError::Timeout(_) | PoolError::Closed | PoolError::NoRuntimeSpecified => {
            StoreError::Unavailable(e.to_string().into())
        }
        PoolError::PostCreateHook(_) => StoreError::Backend(e.to_string().into()),
    }
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

/// Runs a statement prepared once per connection.
async fn query(c: &impl GenericClient, sql: &str, params: &Params<'_>) -> StoreResult<Vec<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.query(&statement, params).await.map_err(pg)
}

async fn query_opt(c: &impl GenericClient, sql: &str, params: &Params<'_>) -> StoreResult<Option<Row>> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.query_opt(&statement, params).await.map_err(pg)
}

async fn execute(c: &impl GenericClient, sql: &str, params: &Params<'_>) -> StoreResult<u64> {
    let statement = c.prepare_cached(sql).await.map_err(pg)?;
    c.execute(&statement, params).await.map_err(pg)
}

/// The single `count(*)` a query answers, as a length of `table`.
async fn count(c: &impl GenericClient, table: &'static str, sql: &str, params: &Params<'_>) -> StoreResult<usize> {
    let row = query_opt(c, sql, params)
        .await?
        .ok_or_else(|| StoreError::backend("count returned no row"))?;
    unsigned(table, col::<i64>(&row, 0)?)
}

/// One column of a row.
fn col<'a, T: tokio_postgres::types::FromSql<'a>>(row: &'a Row, idx: usize) -> StoreResult<T> {
    row.try_get(idx).map_err(pg)
}

/// A count the database holds as `bigint`/`integer`, as the store's type.
fn unsigned<T: TryFrom<i64>>(table: &'static str, v: i64) -> StoreResult<T> {
    T::try_from(v).map_err(|_| StoreError::Corrupt {
        table,
        reason: format!("{v} is out of range"),
    })
}

fn signed(v: u64) -> StoreResult<i64> {
    i64::try_from(v).map_err(|_| StoreError::backend(format!("{v} does not fit a bigint")))
}

#[async_trait]
impl MaintenanceStore for PostgresStore {
    async fn purge_expired(&self, now: DateTime<Utc>, lockout: LockoutPolicy) -> StoreResult<Purged> {
        let answers_before = now - chrono::Duration::hours(IDEMPOTENCY_TTL_HOURS);
        let window_start = now - lockout.window;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let refresh_tokens = execute(&tx, "DELETE FROM refresh_tokens WHERE expires_at <= $1", &[&now]).await?;
        let idempotency_answers =
            execute(&tx, "DELETE FROM idempotency WHERE stored_at < $1", &[&answers_before]).await?;
        // The rule of `LockoutRecord::live_failures`: an expired lock counts
        // nothing; otherwise the failures inside the window count.
        let lockouts = execute(
            &tx,
            "DELETE FROM lockouts
              WHERE user_id IS NULL
                AND CASE WHEN locked_until IS NULL
                         THEN NOT EXISTS (SELECT 1 FROM unnest(failures) AS f WHERE f > $2)
                         ELSE locked_until <= $1 END",
            &[&now, &window_start],
        )
        .await?;
        let account_tokens = execute(&tx, "DELETE FROM account_tokens WHERE expires_at <= $1", &[&now]).await?;
        tx.commit().await.map_err(pg)?;
        Ok(Purged {
            refresh_tokens: refresh_tokens as usize,
            idempotency_answers: idempotency_answers as usize,
            lockouts: lockouts as usize,
            account_tokens: account_tokens as usize,
        })
    }

    async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<bool> {
        let client = self.client().await?;
        let until = now + lease;
        let claimed = execute(
            &client,
            "INSERT INTO job_leases (job, holder, leased_until) VALUES ($1, $2, $3)
             ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, leased_until = excluded.leased_until
              WHERE job_leases.leased_until <= $4 OR job_leases.holder = excluded.holder",
            &[&job, &holder, &until, &now],
        )
        .await?;
        Ok(claimed == 1)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(pg).map(drop)
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A store in a schema of its own (dropped with the guard), or `None`
    /// when `FORTFOLIO_TEST_POSTGRES_URL` is not set — which fails under
    /// `CI=true`, so CI can never skip these silently.
    pub(crate) async fn scratch_store(test: &str) -> Option<(PostgresStore, SchemaGuard)> {
        let url = crate::test_support::service_url("FORTFOLIO_TEST_POSTGRES_URL", test)?;
        let schema = format!("fortfolio_test_{}", uuid::Uuid::new_v4().simple());
        let (admin, verification) = tls::parse(&url).unwrap();
        let (client, conn) = admin.connect(tls::connector(&verification).unwrap()).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
        let mut config = admin.clone();
        config.options(format!("-c search_path={schema}"));
        let store = PostgresStore::connect_with(config, &verification, 8).await.unwrap();
        Some((store, SchemaGuard { client, schema }))
    }

    /// Drops the scratch schema when the test ends.
    pub(crate) struct SchemaGuard {
        client: tokio_postgres::Client,
        schema: String,
    }

    impl SchemaGuard {
        pub(crate) async fn drop_schema(self) {
            self.client
                .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
                .await
                .unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_meets_the_store_contract() {
        let Some((store, guard)) = scratch_store("postgres_meets_the_store_contract").await else {
            return;
        };
        crate::store::contract::run_all(std::sync::Arc::new(store.clone())).await;
        guard.drop_schema().await;
    }

    /// `admin migrate`'s core: what the embedded file holds arrives whole,
    /// with the same ids, secrets and amounts; a second copy is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_embedded_snapshot_loads_whole_and_only_once() {
        use crate::domain::portfolio::{Order, Side};
        use crate::store::*;
        let Some((pg, guard)) = scratch_store("an_embedded_snapshot_loads_whole_and_only_once").await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let redb = crate::store::redb::RedbStore::open(dir.path()).unwrap();
        let now = crate::domain::now();
        let user = UserRecord {
            id: crate::domain::new_id(),
            email: "m@example.com".into(),
            email_key: "m@example.com".into(),
            full_name: Some("M".into()),
            role: Role::Admin,
            password_hash: "$argon2id$hash".into(),
            disabled: false,
            created_at: now,
            last_login_at: None,
            password_changed_at: now,
            two_factor_enabled: false,
            totp: None,
            email_verified_at: Some(now),
        };
        redb.create_user(user.clone()).await.unwrap();
        redb.set_pending_totp(&user.id, "sealed".into()).await.unwrap();
        redb.activate_totp(&user.id, 7, vec!["c1".into(), "c2".into()])
            .await
            .unwrap();
        for (side, qty) in [(Side::Buy, "2.5"), (Side::Sell, "1")] {
            let order = Order {
                side,
                symbol: "AAPL".into(),
                quantity: qty.parse().unwrap(),
                price: "187.25".parse().unwrap(),
                fee: "0.10".parse().unwrap(),
            };
            let key = IdempotencyKey {
                key: format!("k-{qty}"),
                fingerprint: "f".into(),
            };
            redb.execute_order(&user.id, order, None, Some(key)).await.unwrap();
        }
        let snap = redb.snapshot().unwrap();
        let mut heard = Vec::new();
        let counts = pg
            .load_snapshot(&snap, &mut |what: &str, _| heard.push(what.to_string()))
            .await
            .unwrap();
        assert!(counts.contains(&("transactions", 2)) && counts.contains(&("idempotency", 2)));
        assert!(!heard.is_empty(), "progress is reported");
        let moved = pg.user_by_email("m@example.com").await.unwrap().unwrap();
        let totp = moved.totp.clone().unwrap();
        assert_eq!(
            (
                moved.id.as_str(),
                moved.role,
                moved.password_hash.as_str(),
                moved.two_factor_enabled
            ),
            (user.id.as_str(), Role::Admin, "$argon2id$hash", true)
        );
        assert_eq!(
            (totp.sealed_secret.as_str(), totp.last_step, totp.backup_codes.len()),
            ("sealed", Some(7), 2)
        );
        assert_eq!(
            pg.positions(&user.id).await.unwrap(),
            redb.positions(&user.id).await.unwrap()
        );
        assert_eq!(
            pg.transactions(&user.id, None, None, 10).await.unwrap(),
            redb.transactions(&user.id, None, None, 10).await.unwrap()
        );
        let again = pg
            .load_snapshot(&snap, &mut |_: &str, _| {})
            .await
            .unwrap_err()
            .to_string();
        assert!(again.contains("not empty"), "{again}");
        guard.drop_schema().await;
    }

    /// The rules of `RedbStore`'s purge test, on rows written with past
    /// times straight into a schema of its own (so the counts are exact).
    #[tokio::test]
    async fn purge_keeps_what_can_still_matter() {
        let Some((store, guard)) = scratch_store("postgres purge_keeps_what_can_still_matter").await else {
            return;
        };
        let now = crate::domain::now();
        let hour = chrono::Duration::hours(1);
        let policy = LockoutPolicy {
            threshold: 5,
            window: hour,
            duration: hour,
        };
        let client = store.client().await.unwrap();
        client
            .batch_execute(
                "INSERT INTO users (id, email, email_key, role, password_hash, created_at, password_changed_at)
                 VALUES ('u', 'u@x', 'u@x', 'user', 'h', now(), now());
                 INSERT INTO sessions (id, user_id, created_at, last_used_at, ip, user_agent, expires_at)
                 VALUES ('s', 'u', now(), now(), 'ip', 'ua', now() + interval '1 hour')",
            )
            .await
            .unwrap();
        for (hash, expires_at) in [("old", now - hour), ("live", now + hour)] {
            client
                .execute(
                    "INSERT INTO refresh_tokens (token_hash, session_id, user_id, expires_at, rotated_at)
                     VALUES ($1, 's', 'u', $2, $3)",
                    &[&hash, &expires_at, &(now - hour)],
                )
                .await
                .unwrap();
        }
        for (key, at) in [("old", now - hour * 25), ("new", now - hour)] {
            client
                .execute(
                    "INSERT INTO idempotency (user_id, key, fingerprint, stored_at) VALUES ('u', $1, 'f', $2)",
                    &[&key, &at],
                )
                .await
                .unwrap();
        }
        let two_hours_ago = now - hour * 2;
        for (key, user, at) in [
            ("account:ghost@x", None, two_hours_ago),
            ("account:fresh@x", None, now),
            ("account:known@x", Some("u".to_string()), two_hours_ago),
        ] {
            store.record_failure(key, user, "ip", at, policy).await.unwrap();
        }
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
        use crate::store::LockoutStore;
        assert!(store.lockout("account:ghost@x").await.unwrap().is_none());
        assert!(store.lockout("account:fresh@x").await.unwrap().is_some());
        assert!(store.lockout("account:known@x").await.unwrap().is_some());
        assert_eq!(store.purge_expired(now, policy).await.unwrap(), Purged::default());
        guard.drop_schema().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_apply_once_and_refuse_a_newer_schema() {
        let Some((store, guard)) = scratch_store("migrations_apply_once_and_refuse_a_newer_schema").await else {
            return;
        };
        // Two more starts at once: each finds the schema current.
        let (a, b) = tokio::join!(store.migrate(), store.migrate());
        let latest = MIGRATIONS.len() as i32;
        assert_eq!((a.unwrap(), b.unwrap()), (latest, latest));
        let client = store.client().await.unwrap();
        client
            .batch_execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'from the future')")
            .await
            .unwrap();
        let err = store.migrate().await.unwrap_err().to_string();
        assert!(err.contains("version 99, newer"), "{err}");
        guard.drop_schema().await;
    }
}
