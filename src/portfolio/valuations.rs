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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use bytes::Bytes;
use moka::sync::Cache;

#[derive(Clone)]
struct Entry {
    ledger: u64,
    book: u64,
    body: Bytes,
}

pub struct Valuations {
    entries: Cache<String, Entry>,
    ledgers: RwLock<HashMap<String, u64>>,
    clock: AtomicU64,
}

impl Default for Valuations {
    fn default() -> Self {
        Self::new()
    }
}

impl Valuations {
    pub fn new() -> Self {
        Self {
            entries: Cache::builder()
                // Weighed in bytes: at most 64 MiB of rendered portfolios.
                .weigher(|_k: &String, e: &Entry| u32::try_from(e.body.len()).unwrap_or(u32::MAX))
                .max_capacity(64 * 1024 * 1024)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            ledgers: RwLock::new(HashMap::new()),
            clock: AtomicU64::new(1),
        }
    }

    /// The current ledger generation of a user.
    pub fn ledger(&self, user_id: &str) -> u64 {
        self.ledgers
            .read()
            .ok()
            .and_then(|m| m.get(user_id).copied())
            .unwrap_or(0)
    }

    /// Call after a user's ledger changed (an executed order).
    pub fn ledger_changed(&self, user_id: &str) {
        let v = self.clock.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut m) = self.ledgers.write() {
            m.insert(user_id.to_string(), v);
        }
    }

    /// A valuation built from exactly these generations, if cached.
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
    use super::*;

    #[test]
    fn stale_generations_are_never_served() {
        let v = Valuations::new();
        let g = v.ledger("u");
        v.put("u", g, 7, Bytes::from_static(b"1"));
        assert_eq!(v.get("u", g, 7).as_deref(), Some(&b"1"[..]));
        assert!(v.get("u", g, 8).is_none(), "prices changed");
        // An order commits while a valuation is being computed from `g`.
        v.ledger_changed("u");
        v.put("u", g, 7, Bytes::from_static(b"2"));
        assert!(v.get("u", v.ledger("u"), 7).is_none());
        assert!(v.ledger("other") == 0);
    }
}
