//! Security events and the alert outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{col, count, execute, pg, query, query_opt, signed, unsigned, PostgresStore};
use crate::store::{
    ChainCut, ChainLink, EventFilter, EventRecord, EventStore, OutboxMessage, OutboxStore, StoreResult,
};

const EVENT_COLUMNS: &str =
    "id, at, event, outcome, user_id, email, ip, user_agent, request_id, details, chain, seq, prev_hash, hash";

fn event_from_row(row: &Row) -> StoreResult<EventRecord> {
    let chain: Option<String> = col(row, 10)?;
    let link = match chain {
        Some(chain) => Some(ChainLink {
            chain,
            seq: unsigned("events", col::<i64>(row, 11)?)?,
            prev_hash: col(row, 12)?,
            hash: col(row, 13)?,
        }),
        None => None,
    };
    Ok(EventRecord {
        link,
        id: col(row, 0)?,
        timestamp: col(row, 1)?,
        event: col(row, 2)?,
        outcome: col(row, 3)?,
        user_id: col(row, 4)?,
        email: col(row, 5)?,
        ip: col(row, 6)?,
        user_agent: col(row, 7)?,
        request_id: col(row, 8)?,
        details: col(row, 9)?,
    })
}

pub(super) async fn insert_event(c: &impl GenericClient, e: &EventRecord) -> StoreResult<()> {
    let link = e.link.as_ref();
    let seq = link.map(|l| signed(l.seq)).transpose()?;
    execute(
        c,
        "INSERT INTO events (id, at, event, outcome, user_id, email, ip, user_agent, request_id, details,
                             chain, seq, prev_hash, hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        &[
            &e.id,
            &e.timestamp,
            &e.event,
            &e.outcome,
            &e.user_id,
            &e.email,
            &e.ip,
            &e.user_agent,
            &e.request_id,
            &e.details,
            &link.map(|l| &l.chain),
            &seq,
            &link.map(|l| &l.prev_hash),
            &link.map(|l| &l.hash),
        ],
    )
    .await
    .map(drop)
}

const OUTBOX_COLUMNS: &str = "id, to_address, subject, text_body, html_body, event_id, created_at, attempts, \
     next_attempt_at, last_error, sealed_token";

fn mail_from_row(row: &Row) -> StoreResult<OutboxMessage> {
    Ok(OutboxMessage {
        id: col(row, 0)?,
        to: col(row, 1)?,
        subject: col(row, 2)?,
        text: col(row, 3)?,
        html: col(row, 4)?,
        event_id: col(row, 5)?,
        created_at: col(row, 6)?,
        attempts: unsigned("outbox", i64::from(col::<i32>(row, 7)?))?,
        next_attempt_at: col(row, 8)?,
        last_error: col(row, 9)?,
        sealed_token: col(row, 10)?,
    })
}

pub(super) async fn insert_mail(c: &impl GenericClient, m: &OutboxMessage) -> StoreResult<()> {
    let attempts = i32::try_from(m.attempts).unwrap_or(i32::MAX);
    execute(
        c,
        "INSERT INTO outbox (id, to_address, subject, text_body, html_body, event_id, created_at, attempts,
                             next_attempt_at, last_error, sealed_token)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &m.id,
            &m.to,
            &m.subject,
            &m.text,
            &m.html,
            &m.event_id,
            &m.created_at,
            &attempts,
            &m.next_attempt_at,
            &m.last_error,
            &m.sealed_token,
        ],
    )
    .await
    .map(drop)
}

#[async_trait]
impl EventStore for PostgresStore {
    async fn record_event(&self, event: EventRecord, mails: Vec<OutboxMessage>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        insert_event(&tx, &event).await?;
        for mail in &mails {
            insert_mail(&tx, mail).await?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn events(&self, f: EventFilter) -> StoreResult<Vec<EventRecord>> {
        let client = self.client().await?;
        let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {EVENT_COLUMNS} FROM events
              WHERE ($1::text IS NULL OR user_id = $1)
                AND ($2::text IS NULL OR event = $2)
                AND ($3::timestamptz IS NULL OR at >= $3)
                AND ($4::text IS NULL OR id < $4)
           ORDER BY id DESC
              LIMIT $5"
        );
        query(&client, &sql, &[&f.user_id, &f.event, &f.since, &f.before_id, &limit])
            .await?
            .iter()
            .map(event_from_row)
            .collect()
    }

    async fn purge_plan(&self, before: DateTime<Utc>) -> StoreResult<Vec<ChainCut>> {
        let client = self.client().await?;
        query(
            &client,
            "SELECT DISTINCT ON (chain) chain, seq, hash FROM events
              WHERE chain IS NOT NULL AND at < $1
           ORDER BY chain, seq DESC",
            &[&before],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(ChainLink {
                chain: col(row, 0)?,
                seq: unsigned("events", col::<i64>(row, 1)?)?,
                prev_hash: String::new(),
                hash: col(row, 2)?,
            }
            .cut_after())
        })
        .collect()
    }

    async fn purge_events(&self, before: DateTime<Utc>, cuts: &[ChainCut]) -> StoreResult<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let mut n = execute(&tx, "DELETE FROM events WHERE chain IS NULL AND at < $1", &[&before]).await?;
        for cut in cuts {
            let seq = signed(cut.first_kept_seq)?;
            n += execute(
                &tx,
                "DELETE FROM events WHERE chain = $1 AND seq < $2",
                &[&cut.chain, &seq],
            )
            .await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(n as usize)
    }

    async fn chain_head(&self, chain: &str) -> StoreResult<Option<ChainLink>> {
        let client = self.client().await?;
        query_opt(
            &client,
            "SELECT seq, prev_hash, hash FROM events WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
            &[&chain],
        )
        .await?
        .map(|row| {
            Ok(ChainLink {
                chain: chain.to_string(),
                seq: unsigned("events", col::<i64>(&row, 0)?)?,
                prev_hash: col(&row, 1)?,
                hash: col(&row, 2)?,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn claim_due_mail(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        lease: chrono::Duration,
    ) -> StoreResult<Vec<OutboxMessage>> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let leased_until = now + lease;
        // SKIP LOCKED: a message another instance is claiming right now is
        // passed over, never sent twice; the lease hides it afterwards.
        // `due`'s columns are named apart from the outbox's, so RETURNING
        // can list the outbox columns as they are.
        let sql = format!(
            "WITH due AS (
                 SELECT id AS due_id, next_attempt_at AS was FROM outbox
                  WHERE next_attempt_at <= $1
               ORDER BY next_attempt_at, id
                  LIMIT $2
                    FOR UPDATE SKIP LOCKED)
             UPDATE outbox SET next_attempt_at = $3 FROM due WHERE id = due.due_id
         RETURNING {OUTBOX_COLUMNS}, due.was"
        );
        let mut out = query(&client, &sql, &[&now, &limit, &leased_until])
            .await?
            .iter()
            .map(|row| {
                let mut m = mail_from_row(row)?;
                m.next_attempt_at = col(row, 11)?;
                Ok(m)
            })
            .collect::<StoreResult<Vec<_>>>()?;
        out.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(out)
    }

    async fn mail_sent(&self, id: &str) -> StoreResult<()> {
        let client = self.client().await?;
        execute(&client, "DELETE FROM outbox WHERE id = $1", &[&id])
            .await
            .map(drop)
    }

    async fn mail_failed(&self, id: &str, next_attempt_at: DateTime<Utc>, error: String) -> StoreResult<()> {
        let client = self.client().await?;
        execute(
            &client,
            "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3 WHERE id = $1",
            &[&id, &next_attempt_at, &error],
        )
        .await
        .map(drop)
    }

    async fn outbox_depth(&self) -> StoreResult<usize> {
        let client = self.client().await?;
        count(&client, "outbox", "SELECT count(*) FROM outbox", &[]).await
    }

    async fn next_mail_due(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let client = self.client().await?;
        let row = query_opt(&client, "SELECT min(next_attempt_at) FROM outbox", &[]).await?;
        row.map_or(Ok(None), |r| col(&r, 0))
    }
}
