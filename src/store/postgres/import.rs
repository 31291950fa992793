//! Loading a whole [`Snapshot`] into an empty database (`admin migrate`).

use super::devices::insert_device;
use super::events::{insert_event, insert_mail};
use super::lockouts::write_lockout;
use super::market::{insert_news_items, write_series};
use super::portfolio::{insert_transaction, write_answer, write_position};
use super::sessions::{insert_refresh, insert_session};
use super::users::insert_user;
use super::{execute, pg, PostgresStore, TABLES};
use crate::store::{Snapshot, StoreError, StoreResult};

impl PostgresStore {
    /// Tables that hold rows, with their counts (empty: nothing stored).
    pub async fn non_empty_tables(&self) -> StoreResult<Vec<(&'static str, u64)>> {
        let mut out = Vec::new();
        for table in TABLES {
            let n = self.count(table).await?;
            if n > 0 {
                out.push((*table, n));
            }
        }
        Ok(out)
    }

    /// Copies `snap` into this database in one transaction, refusing a
    /// database that holds anything; `progress` hears each kind as it is
    /// written. Afterwards every table's count is compared with the
    /// snapshot's; returns those counts.
    pub async fn load_snapshot(
        &self,
        snap: &Snapshot,
        progress: &mut (dyn FnMut(&str, u64) + Send),
    ) -> StoreResult<Vec<(&'static str, u64)>> {
        let held = self.non_empty_tables().await?;
        if !held.is_empty() {
            let list: Vec<String> = held.iter().map(|(t, n)| format!("{t}: {n}")).collect();
            return Err(StoreError::backend(format!(
                "the target database is not empty ({}); migrate only into an empty database",
                list.join(", ")
            )));
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        for u in &snap.users {
            if !insert_user(&tx, u).await? {
                return Err(StoreError::backend(format!(
                    "two users share the email key of {}",
                    u.id
                )));
            }
        }
        progress("users", snap.users.len() as u64);
        for s in &snap.sessions {
            insert_session(&tx, s).await?;
        }
        progress("sessions", snap.sessions.len() as u64);
        for (hash, r) in &snap.refresh_tokens {
            insert_refresh(&tx, hash, r).await?;
        }
        progress("refresh tokens", snap.refresh_tokens.len() as u64);
        for (hash, expires_at) in &snap.revoked_tokens {
            execute(
                &tx,
                "INSERT INTO revoked_tokens (token_hash, expires_at) VALUES ($1, $2)",
                &[hash, expires_at],
            )
            .await?;
        }
        for (key, rec) in &snap.lockouts {
            write_lockout(&tx, key, rec).await?;
        }
        for (jti, expires_at) in &snap.spent_challenges {
            execute(
                &tx,
                "INSERT INTO spent_challenges (jti, expires_at) VALUES ($1, $2)",
                &[jti, expires_at],
            )
            .await?;
        }
        progress("revocations, lockouts, 2FA challenges", 0);
        for e in &snap.events {
            insert_event(&tx, e).await?;
        }
        progress("security events", snap.events.len() as u64);
        for m in &snap.outbox {
            insert_mail(&tx, m).await?;
        }
        for d in &snap.devices {
            insert_device(&tx, d).await?;
        }
        progress("outbox and devices", (snap.outbox.len() + snap.devices.len()) as u64);
        for (user, p) in &snap.positions {
            write_position(&tx, user, p).await?;
        }
        for (user, t) in &snap.transactions {
            insert_transaction(&tx, user, t).await?;
        }
        for a in &snap.idempotency {
            write_answer(&tx, &a.user_id, &a.key, &a.fingerprint, &a.receipt, a.stored_at).await?;
        }
        progress("portfolios", snap.transactions.len() as u64);
        for s in &snap.series {
            write_series(&tx, s).await?;
        }
        progress("imported prices", snap.series.len() as u64);
        insert_news_items(&tx, &snap.news).await?;
        for flag in &snap.flags {
            execute(&tx, "INSERT INTO flags (name) VALUES ($1)", &[flag]).await?;
        }
        progress("news", snap.news.len() as u64);
        tx.commit().await.map_err(pg)?;
        let mut counts = Vec::new();
        for (table, want) in snap.counts() {
            let got = self.count(table).await?;
            if got != want {
                return Err(StoreError::backend(format!(
                    "{table}: {got} rows arrived of {want}; the copy is incomplete"
                )));
            }
            counts.push((table, got));
        }
        Ok(counts)
    }
}
