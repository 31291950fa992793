//! A cache of rendered (serialised) portfolio valuations (`GET /portfolio`), so reading
//! a portfolio costs a lookup instead of re-valuing every position.
//!
//! An entry is valid only while neither the user's ledger nor the price
//! book has changed since it was computed: each entry carries the ledger
//! generation and the book generation it was built from, and a reader
//! compares them with the current ones. An order bumps its user's
//! generation after committing, so a valuation computed concurrently with an
//! order can be stored but is never served. With a live price provider the
//! cache is bypassed (its prices move without the book changing).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use moka::sync::Cache;

use crate::state::{State, StateResult};

#[derive(Clone)]
struct Entry {
    ledger: u64,
    book: u64,
    body: Bytes,
}

pub struct Valuations {
    entries: Cache<String, Entry>,
    /// Ledger versions live in the shared state, so an order taken by any
    /// instance makes every instance's cached valuation unservable.
    versions: Arc<dyn State>,
}

impl Valuations {
    pub fn new(versions: Arc<dyn State>) -> Self {
        Self {
            entries: Cache::builder()
                // Weighed in bytes: at most 64 MiB of rendered portfolios.
                .weigher(|_k: &String, e: &Entry| u32::try_from(e.body.len()).unwrap_or(u32::MAX))
                .max_capacity(64 * 1024 * 1024)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            versions,
        }
    }

    /// The user's current ledger version.
    pub async fn ledger(&self, user_id: &str) -> StateResult<u64> {
        self.versions.ledger_version(user_id).await
    }

    /// Call after an order commits.
    pub async fn ledger_changed(&self, user_id: &str) -> StateResult<()> {
        self.versions.bump_ledger(user_id).await.map(drop)
    }

    /// The cached valuation built from exactly these versions, if any.
    pub fn get(&self, user_id: &str, ledger: u64, book: u64) -> Option<Bytes> {
        self.entries
            .get(user_id)
            .filter(|e| e.ledger == ledger && e.book == book)
            .map(|e| e.body)
    }

    pub fn put(&self, user_id: &str, ledger: u64, book: u64, body: Bytes) {
        self.entries.insert(user_id.to_string(), Entry { ledger, book, body });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn stale_versions_are_never_served() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn crate::store::Store> = Arc::new(crate::store::redb::RedbStore::open(dir.path()).unwrap());
        let v = Valuations::new(Arc::new(crate::state::memory::MemoryState::new(
            store,
            Duration::from_secs(60),
        )));
        let g = v.ledger("u").await.unwrap();
        v.put("u", g, 7, Bytes::from_static(b"1"));
        assert_eq!(v.get("u", g, 7).as_deref(), Some(&b"1"[..]));
        assert!(v.get("u", g, 8).is_none(), "prices changed");
        v.ledger_changed("u").await.unwrap();
        v.put("u", g, 7, Bytes::from_static(b"2"));
        assert!(v.get("u", v.ledger("u").await.unwrap(), 7).is_none());
        assert_eq!(v.ledger("other").await.unwrap(), 0);
    }
}
