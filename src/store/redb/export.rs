//! Reading the whole file out as records, for `admin migrate`.

use chrono::{DateTime, TimeZone, Utc};
use redb::{ReadTransaction, ReadableTable};
use serde::de::DeserializeOwned;

use super::portfolio::StoredAnswer;
use super::*;
use crate::store::{Snapshot, StoredOrderAnswer};

/// Every row of a table, decoded, with its key.
fn rows<T: DeserializeOwned>(tx: &ReadTransaction, table: Table, name: &'static str) -> StoreResult<Vec<(String, T)>> {
    let t = tx.open_table(table).map_err(backend)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(backend)? {
        let (k, v) = row.map_err(backend)?;
        out.push((k.value().to_string(), decode(name, v.value())?));
    }
    Ok(out)
}

/// `<user id>/<rest>` keys, split at the first slash (user ids have none).
fn split_user(table: &'static str, key: String) -> StoreResult<(String, String)> {
    match key.split_once('/') {
        Some((user, rest)) => Ok((user.to_string(), rest.to_string())),
        None => Err(StoreError::Corrupt {
            table,
            reason: format!("key {key:?} has no user part"),
        }),
    }
}

/// Rows keyed `<user id>/…`, with the user id.
fn by_user<T: DeserializeOwned>(
    tx: &ReadTransaction,
    table: Table,
    name: &'static str,
) -> StoreResult<Vec<(String, T)>> {
    rows(tx, table, name)?
        .into_iter()
        .map(|(k, v)| Ok((split_user(name, k)?.0, v)))
        .collect()
}

fn values<T>(rows: Vec<(String, T)>) -> Vec<T> {
    rows.into_iter().map(|(_, v)| v).collect()
}

impl RedbStore {
    /// Everything in the file, read in one snapshot.
    pub fn snapshot(&self) -> StoreResult<Snapshot> {
        let tx = self.db.begin_read().map_err(backend)?;
        let mut idempotency = Vec::new();
        for (key, answer) in rows::<StoredAnswer>(&tx, IDEMPOTENCY, "idempotency")? {
            // Answers stored before receipts existed cannot be replayed.
            let Some(receipt) = answer.receipt else { continue };
            let (user_id, key) = split_user("idempotency", key)?;
            idempotency.push(StoredOrderAnswer {
                user_id,
                key,
                fingerprint: answer.fingerprint,
                receipt,
                stored_at: Utc.timestamp_opt(answer.stored_at, 0).single().unwrap_or_else(Utc::now),
            });
        }
        Ok(Snapshot {
            users: values(rows(&tx, USERS, "users")?),
            sessions: values(rows(&tx, SESSIONS, "sessions")?),
            refresh_tokens: rows(&tx, REFRESH_TOKENS, "refresh_tokens")?,
            revoked_tokens: rows::<DateTime<Utc>>(&tx, REVOKED_TOKENS, "revoked_tokens")?,
            lockouts: rows(&tx, LOCKOUTS, "lockouts")?,
            spent_challenges: rows(&tx, SPENT_CHALLENGES, "spent_challenges")?,
            events: values(rows(&tx, EVENTS, "events")?),
            outbox: values(rows(&tx, OUTBOX, "outbox")?),
            devices: values(rows(&tx, DEVICES, "devices")?),
            positions: by_user(&tx, POSITIONS, "positions")?,
            transactions: by_user(&tx, TRANSACTIONS, "transactions")?,
            idempotency,
            series: values(rows(&tx, PRICE_SERIES, "price_series")?),
            news: values(rows(&tx, NEWS, "news")?),
            flags: rows::<bool>(&tx, FLAGS, "flags")?
                .into_iter()
                .filter_map(|(name, set)| set.then_some(name))
                .collect(),
        })
    }
}
