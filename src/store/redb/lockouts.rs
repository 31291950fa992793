//! Failed-login records, indexed per user.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, WriteTransaction};

use super::*;

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
            let status = rec.record_failure(user_id, ip, now, policy);
            t.insert(key.as_str(), encode(&rec)?.as_slice()).map_err(backend)?;
            drop(t);
            if let Some(uid) = &rec.user_id {
                let mut idx = tx.open_table(USER_LOCKOUTS).map_err(backend)?;
                idx.insert(format!("{uid}/{key}").as_str(), &[][..]).map_err(backend)?;
            }
            Ok(status)
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
