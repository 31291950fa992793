//! Purging what can no longer matter, and the store as a whole.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, WriteTransaction};

use super::portfolio::StoredAnswer;
use super::*;

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

#[derive(serde::Serialize, serde::Deserialize)]
struct JobLease {
    holder: String,
    until: DateTime<Utc>,
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
                account_tokens: super::tokens::purge_expired_tokens(tx, now)?,
            })
        })
        .await
    }

    async fn claim_job(
        &self,
        job: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease: chrono::Duration,
    ) -> StoreResult<bool> {
        let (job, holder) = (job.to_string(), holder.to_string());
        self.write_with(Durability::Eventual, move |tx| {
            let mut t = tx.open_table(JOB_LEASES).map_err(backend)?;
            if let Some(held) = get::<JobLease>(&t, "job_leases", &job)? {
                if held.until > now && held.holder != holder {
                    return Ok(false);
                }
            }
            let lease = JobLease {
                holder,
                until: now + lease,
            };
            t.insert(job.as_str(), encode(&lease)?.as_slice()).map_err(backend)?;
            Ok(true)
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

    fn write_epoch(&self) -> Option<u64> {
        Some(self.epoch.load(std::sync::atomic::Ordering::Acquire))
    }

    async fn sync(&self) -> StoreResult<()> {
        self.sync_to_disk().await
    }

    async fn open_session(
        &self,
        session: SessionRecord,
        refresh_hash: String,
        refresh: RefreshRecord,
        device: DeviceRecord,
        then: SignInEvents,
    ) -> StoreResult<Option<(UserRecord, bool)>> {
        // One durable commit for the whole sign-in: the session, the device
        // and the events, where a session in one commit and its events in
        // the scope's closing one were two (README, Benchmarks).
        self.commit_as(Durability::Immediate, move |tx| {
            let Some(user) = super::sessions::create_session_in(tx, &session, &refresh_hash, &refresh)? else {
                return Ok(None);
            };
            let new_device = super::devices::touch_device_in(tx, device)?;
            for w in then(&user, new_device) {
                super::events::record_event_in(tx, &w.event, &w.mails)?;
            }
            Ok(Some((user, new_device)))
        })
        .await
    }
}
