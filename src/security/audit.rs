//! The tamper-evident security log: every event carries a link of an
//! HMAC-SHA-256 chain (`seq`, `prev_hash`, `hash`), the same link in the
//! store and in `security.json`. The key is derived from the server secret
//! (`jwt.key`), so someone who can edit the files or the database but not
//! read the key cannot recompute the chain after an edit.
//!
//! What [`verify`] finds: an edited event (its hash no longer matches),
//! a deleted one (a gap in `seq`), events swapped or inserted (`seq` out of
//! order, or a link that does not continue from the one before), and a chain
//! whose first event is neither the genesis nor named by a signed purge
//! checkpoint (old events removed by hand rather than by retention). A cut
//! tail cannot be told from a chain that simply ends there; comparing the
//! store with the files (`admin events verify --files`) catches it in one of
//! them.

use std::collections::BTreeSet;

use ring::hmac;
use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::rfc3339;
use crate::store::{ChainCut, ChainLink, EventRecord};

/// The `prev_hash` of a chain's first link.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The event that opens each log file: its `prev_hash` is the hash the file
/// continues from.
pub const LOG_FILE_STARTED: &str = "log_file_started";
/// The signed record a retention purge leaves: where it cut each chain.
pub const CHECKPOINT: &str = "audit_checkpoint";

/// The chain's HMAC key. No `Debug`: it is a secret.
pub struct AuditKey(hmac::Key);

impl AuditKey {
    /// A key of its own, derived from the server secret.
    pub fn derive(server_secret: &[u8]) -> Self {
        let derived = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, server_secret),
            b"fortfolio audit chain v1",
        );
        Self(hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()))
    }

    /// The link that puts `e` after `prev` (`None`: the chain's first).
    pub fn link(&self, e: &EventRecord, chain: &str, prev: Option<&ChainLink>) -> ChainLink {
        let seq = prev.map_or(1, |p| p.seq + 1);
        let prev_hash = prev.map_or(GENESIS, |p| p.hash.as_str()).to_string();
        let tag = hmac::sign(&self.0, &canonical(e, chain, seq, &prev_hash));
        ChainLink {
            chain: chain.to_string(),
            seq,
            prev_hash,
            hash: hex::encode(tag.as_ref()),
        }
    }

    /// Whether `e`'s link hash matches its contents (constant time).
    fn holds(&self, e: &EventRecord, link: &ChainLink) -> bool {
        let Ok(tag) = hex::decode(&link.hash) else {
            return false;
        };
        hmac::verify(&self.0, &canonical(e, &link.chain, link.seq, &link.prev_hash), &tag).is_ok()
    }
}

/// The bytes a link signs: the event as shown (timestamps to the second,
/// as the log and the API write them) with the chain, `seq` and `prev_hash`,
/// as JSON with every object's keys sorted, so the store (PostgreSQL's jsonb
/// reorders keys) and the files give the same bytes.
fn canonical(e: &EventRecord, chain: &str, seq: u64, prev_hash: &str) -> Vec<u8> {
    let v = json!({
        "chain": chain,
        "seq": seq,
        "prev_hash": prev_hash,
        "id": e.id,
        "timestamp": rfc3339(e.timestamp),
        "event": e.event,
        "outcome": e.outcome,
        "user_id": e.user_id,
        "email": e.email,
        "ip": e.ip,
        "user_agent": e.user_agent,
        "request_id": e.request_id,
        "details": e.details,
    });
    let mut out = String::new();
    write_sorted(&v, &mut out);
    out.into_bytes()
}

fn write_sorted(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(k.as_str()).to_string());
                out.push(':');
                write_sorted(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The cuts a checkpoint event records (`details.cuts`).
fn checkpoint_cuts(e: &EventRecord) -> Vec<ChainCut> {
    serde_json::from_value(e.details["cuts"].clone()).unwrap_or_default()
}

/// One event to check and where it was found ("security.json line 12",
/// "event 0193…").
pub struct Entry {
    pub position: String,
    pub event: EventRecord,
}

/// A chain that checked out.
#[derive(Debug, Serialize, PartialEq)]
pub struct ChainReport {
    pub chain: String,
    /// Links checked.
    pub links: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub last_hash: String,
    /// Events from before the chain existed (before its first link).
    pub unchained: u64,
}

/// The first broken link.
#[derive(Debug, Serialize, PartialEq)]
pub struct Break {
    /// Where: a file and line, or a stored event.
    pub position: String,
    pub seq: Option<u64>,
    /// What is wrong, in words.
    pub problem: String,
}

/// The cuts named by the checkpoints of `scope` ("store" or "files") among
/// `events` whose links hold: where a chain may begin besides its genesis.
pub fn anchors<'a>(key: &AuditKey, events: impl Iterator<Item = &'a EventRecord>, scope: &str) -> Vec<ChainCut> {
    events
        .filter(|e| e.event == CHECKPOINT && e.details["scope"] == scope)
        .filter(|e| e.link.as_ref().is_some_and(|l| key.holds(e, l)))
        .flat_map(checkpoint_cuts)
        .collect()
}

/// Checks one chain's entries in the order they were found: each link must
/// hold (HMAC), follow the one before (`seq` + 1, `prev_hash`), and the
/// first must be the genesis or named by one of the `anchors`.
pub fn verify(key: &AuditKey, entries: &[Entry], anchors: &[ChainCut]) -> Result<Option<ChainReport>, Break> {
    let mut prev: Option<&ChainLink> = None;
    let mut first_seq = 0;
    let mut links = 0;
    let mut unchained = 0;
    let mut seen = BTreeSet::new();
    for (i, en) in entries.iter().enumerate() {
        let broken = |seq: Option<u64>, problem: String| Break {
            position: en.position.clone(),
            seq,
            problem,
        };
        let Some(link) = &en.event.link else {
            if prev.is_none() {
                unchained += 1;
                continue;
            }
            return Err(broken(
                None,
                "an event without a chain link after the chain began: inserted, or its link was removed".into(),
            ));
        };
        let seq = Some(link.seq);
        if !key.holds(&en.event, link) {
            return Err(broken(
                seq,
                format!(
                    "event seq {} was edited (or forged): its hash does not match its contents",
                    link.seq
                ),
            ));
        }
        match prev {
            None => {
                let genesis = link.seq == 1 && link.prev_hash == GENESIS;
                let anchored = anchors
                    .iter()
                    .any(|c| c.chain == link.chain && c.first_kept_seq == link.seq && c.prev_hash == link.prev_hash);
                if !genesis && !anchored {
                    return Err(broken(
                        seq,
                        format!(
                            "the chain begins at seq {} but no retention checkpoint names it: the events before it were deleted",
                            link.seq
                        ),
                    ));
                }
                first_seq = link.seq;
            }
            Some(p) => {
                if link.chain != p.chain {
                    return Err(broken(
                        seq,
                        format!(
                            "an event of chain {:?} inside chain {:?}: inserted",
                            link.chain, p.chain
                        ),
                    ));
                }
                let expected = p.seq + 1;
                if seen.contains(&link.seq) {
                    return Err(broken(
                        seq,
                        format!("seq {} appears a second time: inserted (a copy)", link.seq),
                    ));
                }
                if link.seq < expected {
                    return Err(broken(
                        seq,
                        format!("seq {} comes after seq {}: events reordered", link.seq, p.seq),
                    ));
                }
                if link.seq > expected {
                    let later = entries[i + 1..]
                        .iter()
                        .any(|e| e.event.link.as_ref().is_some_and(|l| l.seq == expected));
                    let problem = if later {
                        format!("seq {} comes where seq {expected} belongs: events reordered", link.seq)
                    } else {
                        let missing = link.seq - expected;
                        format!(
                            "seq {} follows seq {}: {missing} event(s) deleted (seq {expected}{})",
                            link.seq,
                            p.seq,
                            if missing > 1 {
                                format!("–{}", link.seq - 1)
                            } else {
                                String::new()
                            }
                        )
                    };
                    return Err(broken(seq, problem));
                }
                if link.prev_hash != p.hash {
                    return Err(broken(
                        seq,
                        format!(
                            "seq {} does not continue from seq {}: inserted or replaced",
                            link.seq, p.seq
                        ),
                    ));
                }
            }
        }
        seen.insert(link.seq);
        links += 1;
        prev = Some(link);
    }
    Ok(prev.map(|p| ChainReport {
        chain: p.chain.clone(),
        links,
        first_seq,
        last_seq: p.seq,
        last_hash: p.hash.clone(),
        unchained,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::Utc;

    fn chain(key: &AuditKey, n: usize) -> Vec<Entry> {
        let mut prev: Option<ChainLink> = None;
        (0..n)
            .map(|i| {
                let mut e = EventRecord {
                    id: format!("e{i}"),
                    timestamp: Utc::now(),
                    event: "login_success".into(),
                    outcome: "success".into(),
                    user_id: Some("u1".into()),
                    email: Some("ann@example.com".into()),
                    ip: None,
                    user_agent: None,
                    request_id: None,
                    details: json!({"b": 1, "a": [{"z": true, "y": null}]}),
                    link: None,
                };
                let link = key.link(&e, "main", prev.as_ref());
                e.link = Some(link.clone());
                prev = Some(link);
                Entry {
                    position: format!("line {}", i + 1),
                    event: e,
                }
            })
            .collect()
    }

    fn problem(r: Result<Option<ChainReport>, Break>) -> Break {
        r.unwrap_err()
    }

    fn check(key: &AuditKey, entries: &[Entry], scope: &str) -> Result<Option<ChainReport>, Break> {
        let anchors = anchors(key, entries.iter().map(|e| &e.event), scope);
        verify(key, entries, &anchors)
    }

    #[test]
    fn an_untouched_chain_verifies_and_every_kind_of_edit_is_named() {
        let key = AuditKey::derive(b"secret");
        let entries = chain(&key, 6);
        let ok = check(&key, &entries, "files").unwrap().unwrap();
        assert_eq!((ok.links, ok.first_seq, ok.last_seq), (6, 1, 6));

        let mut edited = chain(&key, 6);
        edited[2].event.details["b"] = json!(2);
        let b = problem(check(&key, &edited, "files"));
        assert_eq!((b.position.as_str(), b.seq), ("line 3", Some(3)));
        assert!(b.problem.contains("edited"), "{}", b.problem);

        let mut deleted = chain(&key, 6);
        deleted.remove(3);
        let b = problem(check(&key, &deleted, "files"));
        assert_eq!(b.seq, Some(5));
        assert!(b.problem.contains("1 event(s) deleted (seq 4)"), "{}", b.problem);

        let mut swapped = chain(&key, 6);
        swapped.swap(1, 2);
        let b = problem(check(&key, &swapped, "files"));
        assert_eq!(b.seq, Some(3));
        assert!(b.problem.contains("reordered"), "{}", b.problem);

        let mut copied = chain(&key, 6);
        let dup = Entry {
            position: "line 9".into(),
            event: copied[1].event.clone(),
        };
        copied.insert(3, dup);
        assert!(problem(check(&key, &copied, "files")).problem.contains("inserted"));

        let forged = AuditKey::derive(b"another key");
        assert!(problem(check(&forged, &chain(&key, 2), "files"))
            .problem
            .contains("edited"));
    }

    #[test]
    fn a_purged_chain_needs_a_checkpoint_naming_its_first_link() {
        let key = AuditKey::derive(b"secret");
        let mut entries = chain(&key, 5);
        let cut = entries[2].event.link.clone().unwrap().cut_after();
        entries.drain(..3);
        let b = problem(check(&key, &entries, "store"));
        assert!(b.problem.contains("no retention checkpoint"), "{}", b.problem);
        // A checkpoint event appended to the chain names the cut.
        let last = entries.last().unwrap().event.link.clone().unwrap();
        let mut cp = entries[0].event.clone();
        cp.id = "cp".into();
        cp.event = CHECKPOINT.into();
        cp.details = json!({"scope": "store", "cuts": [cut]});
        cp.link = None;
        cp.link = Some(key.link(&cp, "main", Some(&last)));
        entries.push(Entry {
            position: "cp".into(),
            event: cp.clone(),
        });
        let ok = check(&key, &entries, "store").unwrap().unwrap();
        assert_eq!((ok.first_seq, ok.last_seq), (4, 6));
        // Of the other scope, it anchors nothing.
        assert!(check(&key, &entries, "files").is_err());
    }
}
