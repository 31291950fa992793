//! Access tokens already checked in full, so the next request with the same
//! token skips the signature check and the session and user reads.
//!
//! Exactness rests on the store's write epoch ([`Store::write_epoch`]): an
//! entry is served only while no write of any kind has been committed since
//! the reads it was built from began, and while neither the token nor its
//! session has expired. A logout, a revoked session, a disabled account or a
//! changed password is a write, so the next request checks in full again.
//! The revocation list is still consulted on every request. A store that
//! other processes write too (PostgreSQL) has no epoch, and nothing is
//! cached.
//!
//! [`Store::write_epoch`]: crate::store::Store::write_epoch

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::AuthContext;

struct Entry {
    epoch: u64,
    session_expires_at: DateTime<Utc>,
    ctx: Arc<AuthContext>,
}

pub struct VerifiedTokens {
    entries: moka::sync::Cache<String, Arc<Entry>>,
}

impl VerifiedTokens {
    /// Keeps at most `capacity` tokens, none longer than `ttl` (the access
    /// token lifetime).
    pub fn new(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
        }
    }

    /// The context checked for the token hashing to `token_hash`, if that
    /// check is still what a full one would find at `epoch` and `now`.
    pub fn get(&self, token_hash: &str, epoch: u64, now: DateTime<Utc>) -> Option<Arc<AuthContext>> {
        let e = self.entries.get(token_hash)?;
        let fresh = e.epoch == epoch && now.timestamp() < e.ctx.claims.exp && now < e.session_expires_at;
        fresh.then(|| e.ctx.clone())
    }

    /// Remembers a full check that began at `epoch`.
    pub fn insert(&self, epoch: u64, session_expires_at: DateTime<Utc>, ctx: &Arc<AuthContext>) {
        let entry = Entry {
            epoch,
            session_expires_at,
            ctx: ctx.clone(),
        };
        self.entries.insert(ctx.token_hash.clone(), Arc::new(entry));
    }
}
