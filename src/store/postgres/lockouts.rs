//! Failed logins and locks per throttle key (kept durable when the shared
//! state is in-process; with Redis the counters live there).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;

use super::{col, execute, pg, query, query_opt, PostgresStore};
use crate::store::{FailureStatus, LockoutPolicy, LockoutRecord, LockoutStore, StoreResult};

async fn read_lockout(c: &impl GenericClient, key: &str, lock: bool) -> StoreResult<Option<LockoutRecord>> {
    let sql = if lock {
        "SELECT user_id, failures, ips, locked_until FROM lockouts WHERE key = $1 FOR UPDATE"
    } else {
        "SELECT user_id, failures, ips, locked_until FROM lockouts WHERE key = $1"
    };
    let Some(row) = query_opt(c, sql, &[&key]).await? else {
        return Ok(None);
    };
    Ok(Some(LockoutRecord {
        user_id: col(&row, 0)?,
        failures: col(&row, 1)?,
        ips: col(&row, 2)?,
        locked_until: col(&row, 3)?,
    }))
}

pub(super) async fn write_lockout(c: &impl GenericClient, key: &str, r: &LockoutRecord) -> StoreResult<()> {
    execute(
        c,
        "INSERT INTO lockouts (key, user_id, failures, ips, locked_until) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (key) DO UPDATE SET user_id = excluded.user_id, failures = excluded.failures,
                                         ips = excluded.ips, locked_until = excluded.locked_until",
        &[&key, &r.user_id, &r.failures, &r.ips, &r.locked_until],
    )
    .await
    .map(drop)
}

#[async_trait]
impl LockoutStore for PostgresStore {
    async fn lockout(&self, key: &str) -> StoreResult<Option<LockoutRecord>> {
        let client = self.client().await?;
        read_lockout(&client, key, false).await
    }

    async fn record_failure(
        &self,
        key: &str,
        user_id: Option<String>,
        ip: &str,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
    ) -> StoreResult<FailureStatus> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        // The empty row makes the first failure of a key lockable too.
        execute(
            &tx,
            "INSERT INTO lockouts (key) VALUES ($1) ON CONFLICT (key) DO NOTHING",
            &[&key],
        )
        .await?;
        let mut rec = read_lockout(&tx, key, true).await?.unwrap_or_default();
        let status = rec.record_failure(user_id, ip.to_string(), now, policy);
        write_lockout(&tx, key, &rec).await?;
        tx.commit().await.map_err(pg)?;
        Ok(status)
    }

    async fn clear_lockout(&self, key: &str) -> StoreResult<()> {
        let client = self.client().await?;
        execute(&client, "DELETE FROM lockouts WHERE key = $1", &[&key])
            .await
            .map(drop)
    }

    async fn clear_user_lockouts(&self, user_id: &str, account_key: &str) -> StoreResult<Vec<String>> {
        let client = self.client().await?;
        query(
            &client,
            "DELETE FROM lockouts WHERE key = $2 OR user_id = $1 RETURNING key",
            &[&user_id, &account_key],
        )
        .await?
        .iter()
        .map(|row| col(row, 0))
        .collect()
    }
}
