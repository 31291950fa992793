//! Security events and the alert outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata};

use super::*;

fn event_matches(e: &EventRecord, f: &EventFilter) -> bool {
    f.event.as_ref().is_none_or(|t| &e.event == t) && f.since.is_none_or(|s| e.timestamp >= s)
}

/// Stores `event`, its chain head (when it is the chain's newest link) and
/// its user's index row, and the mails it queues, in `tx`.
pub(super) fn record_event_in(tx: &WriteTransaction, event: &EventRecord, mails: &[OutboxMessage]) -> StoreResult<()> {
    put(tx, EVENTS, &event.id, event)?;
    if let Some(link) = &event.link {
        let mut heads = tx.open_table(CHAIN_HEADS).map_err(backend)?;
        let newer = match get::<ChainLink>(&heads, "chain_heads", &link.chain)? {
            Some(head) => link.seq > head.seq,
            None => true,
        };
        if newer {
            heads
                .insert(link.chain.as_str(), encode(link)?.as_slice())
                .map_err(backend)?;
        }
    }
    if let Some(uid) = &event.user_id {
        let mut ue = tx.open_table(USER_EVENTS).map_err(backend)?;
        let key = format!("{uid}/{}", event.id);
        ue.insert(key.as_str(), [].as_slice()).map_err(backend)?;
    }
    for mail in mails {
        put(tx, OUTBOX, &mail.id, mail)?;
    }
    Ok(())
}

#[async_trait]
impl EventStore for RedbStore {
    async fn record_event(&self, event: EventRecord, mails: Vec<OutboxMessage>) -> StoreResult<()> {
        let no_mail = mails.is_empty();
        let write = move |tx: &WriteTransaction| record_event_in(tx, &event, &mails);
        // A mail is written at once: the mailer is woken when this returns.
        match if no_mail { self.write_later(write) } else { Some(write) } {
            Some(write) => self.write(write).await,
            None => Ok(()),
        }
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

    async fn purge_plan(&self, before: DateTime<Utc>) -> StoreResult<Vec<ChainCut>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let events = tx.open_table(EVENTS).map_err(backend)?;
        let mut newest_old: std::collections::BTreeMap<String, ChainLink> = Default::default();
        // Ids are UUIDv7, so the oldest come first.
        for row in events.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            let e: EventRecord = decode("events", v.value())?;
            if e.timestamp >= before {
                break;
            }
            if let Some(link) = e.link {
                if newest_old.get(&link.chain).is_none_or(|l| l.seq < link.seq) {
                    newest_old.insert(link.chain.clone(), link);
                }
            }
        }
        Ok(newest_old.into_values().map(ChainLink::cut_after).collect())
    }

    async fn purge_events(&self, before: DateTime<Utc>, cuts: &[ChainCut]) -> StoreResult<usize> {
        let cuts = cuts.to_vec();
        self.write(move |tx| {
            let mut events = tx.open_table(EVENTS).map_err(backend)?;
            let mut old = Vec::new();
            for row in events.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let e: EventRecord = decode("events", v.value())?;
                if e.is_before(before, &cuts) {
                    old.push((k.value().to_string(), e.user_id));
                }
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

    async fn chain_head(&self, chain: &str) -> StoreResult<Option<ChainLink>> {
        self.read(CHAIN_HEADS, "chain_heads", chain)
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
