//! Shared hot state: what every instance must see at once and may lose on
//! a full restart without harm beyond a re-count — revoked access tokens,
//! login attempts in flight and the locks they lead to, rate-limit buckets,
//! and a version per ledger for valuation caches.
//!
//! Each concern is one trait whose methods are atomic, so the same rules
//! run in-process ([`memory`], moka behind a lock per key) or as one Redis
//! script each. Rule for callers: a cache kept in front of shared state is
//! invalidated by a version read from here, never by a local TTL.

pub mod fallback;
pub mod memory;
pub mod redis;

#[cfg(test)]
pub mod contract;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::Rate;
pub use crate::store::BoxError;
use crate::store::{FailureStatus, LockoutPolicy, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state server cannot be reached right now.
    #[error("shared state unavailable: {0}")]
    Unavailable(#[source] BoxError),
    #[error("shared state: {0}")]
    Backend(#[source] BoxError),
    /// A store behind the state (durable lockout records) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type StateResult<T> = Result<T, StateError>;

/// Access tokens revoked before they expire (logout).
#[async_trait]
pub trait RevocationState: Send + Sync {
    /// Revokes `token_hash` until `expires_at` (then it expires anyway).
    async fn revoke(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StateResult<()>;
    async fn is_revoked(&self, token_hash: &str, now: DateTime<Utc>) -> StateResult<bool>;
}

/// Copies the store's durable revocation list into `into` (a state that
/// lost it in a restart, or missed some during an outage).
pub async fn load_revocations<R: RevocationState + ?Sized>(store: &dyn Store, into: &R) -> StateResult<()> {
    for (hash, expires_at) in store.live_revocations(Utc::now()).await? {
        into.revoke(&hash, expires_at).await?;
    }
    Ok(())
}

/// Why an attempt may not even be checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key is locked until then.
    Locked(DateTime<Utc>),
    /// As many attempts as may still fail are already being checked.
    Saturated,
}

/// Login attempts per throttle key (an account, or one device token): the
/// failures within the window, the lock they lead to, and the attempts in
/// flight, so N concurrent guesses cannot all be checked before the first
/// failure counts. Every method is atomic per key.
#[async_trait]
pub trait ThrottleState: Send + Sync {
    /// Reserves one attempt: refused while the key is locked, or while
    /// live failures plus attempts in flight reach the threshold.
    async fn reserve(&self, key: &str, now: DateTime<Utc>, policy: LockoutPolicy) -> StateResult<Result<(), Refusal>>;
    /// Settles a reserved attempt as failed: counts the failure (locking
    /// the key at the threshold) and frees the reservation.
    async fn fail(
        &self,
        key: &str,
        user_id: Option<String>,
        ip: &str,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
    ) -> StateResult<FailureStatus>;
    /// Settles a reserved attempt as passed and frees the reservation;
    /// `Err(until)` when failures it raced locked the key meanwhile (the
    /// lock stands). `forget_failures` clears the count otherwise.
    async fn succeed(
        &self,
        key: &str,
        now: DateTime<Utc>,
        forget_failures: bool,
    ) -> StateResult<Result<(), DateTime<Utc>>>;
    /// Frees a reservation that was never settled (the request went away).
    /// Must not block; a remote backend may do it in the background.
    fn release(&self, key: &str);
    async fn locked_until(&self, key: &str, now: DateTime<Utc>) -> StateResult<Option<DateTime<Utc>>>;
    /// Clears `account_key` and every key recorded for the user (admin
    /// unlock); returns the keys that held something.
    async fn clear_user(&self, user_id: &str, account_key: &str) -> StateResult<Vec<String>>;
}

/// The outcome of one request against a limit, with the header values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the quota is whole again.
    pub reset_secs: u64,
    /// Seconds until the next request would be allowed (when refused).
    pub retry_after_secs: u64,
}

impl Decision {
    /// The stricter of two decisions on one request (IP and user buckets).
    pub fn tighter(self, other: Decision) -> Decision {
        Decision {
            allowed: self.allowed && other.allowed,
            limit: self.limit.min(other.limit),
            remaining: self.remaining.min(other.remaining),
            reset_secs: self.reset_secs.max(other.reset_secs),
            retry_after_secs: self.retry_after_secs.max(other.retry_after_secs),
        }
    }
}

/// Rate-limit buckets: one GCRA "theoretical arrival time" per key.
#[async_trait]
pub trait RateLimitState: Send + Sync {
    /// Counts one request of `key` in `group` (each group has buckets of
    /// its own) at `now_us` (wall-clock microseconds) against `rate`,
    /// atomically (see [`gcra`]).
    async fn check(&self, group: &str, key: &str, rate: Rate, now_us: u64) -> StateResult<Decision>;
}

/// One GCRA step on wall-clock microseconds: returns the decision and the
/// arrival time to store (unchanged when refused). The same integer
/// arithmetic runs as a Redis script (on the server's `TIME`, which is in
/// microseconds too), so every backend limits alike. Microseconds, not
/// milliseconds: the emission interval `period / count` must stay exact
/// enough for high limits (at millisecond resolution any limit would be
/// capped near 1000 per second).
pub fn gcra(tat: Option<u64>, now: u64, rate: Rate) -> (Decision, Option<u64>) {
    let count = rate.count.max(1);
    let per = u64::try_from(rate.per.as_micros()).unwrap_or(u64::MAX).max(1);
    // Rounded down, so `count` requests always fit in `per`.
    let interval = (per / u64::from(count)).max(1);
    let start = tat.map_or(now, |t| t.max(now));
    let new_tat = start.saturating_add(interval);
    // The earliest moment this request may pass: `per` of credit.
    let allow_at = new_tat.saturating_sub(per);
    let ceil_secs = |us: u64| us.div_ceil(1_000_000);
    if now < allow_at {
        let decision = Decision {
            allowed: false,
            limit: count,
            remaining: 0,
            reset_secs: ceil_secs(start - now),
            retry_after_secs: ceil_secs(allow_at - now).max(1),
        };
        return (decision, tat);
    }
    let remaining = u32::try_from((now - allow_at) / interval).unwrap_or(u32::MAX);
    let decision = Decision {
        allowed: true,
        limit: count,
        remaining: remaining.min(count - 1),
        reset_secs: ceil_secs(new_tat - now),
        retry_after_secs: 0,
    };
    (decision, Some(new_tat))
}

/// Wall-clock microseconds since the Unix epoch.
pub fn now_us() -> u64 {
    u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0)
}

/// A version per user ledger: bumped by every executed order, read by the
/// valuation cache so a cached answer from before the order is never served.
#[async_trait]
pub trait LedgerVersions: Send + Sync {
    async fn ledger_version(&self, user_id: &str) -> StateResult<u64>;
    /// Moves the user's version past every version handed out so far.
    async fn bump_ledger(&self, user_id: &str) -> StateResult<u64>;

    /// The version of the imported prices, bumped by an import on any
    /// instance (kept as a ledger under a name no user id can take).
    async fn price_book_version(&self) -> StateResult<u64> {
        self.ledger_version(PRICE_BOOK_LEDGER).await
    }

    async fn bump_price_book(&self) -> StateResult<u64> {
        self.bump_ledger(PRICE_BOOK_LEDGER).await
    }
}

/// User ids are UUIDs: this cannot be one.
const PRICE_BOOK_LEDGER: &str = "~price-book";

/// How the shared state is doing, for `/ready`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateHealth {
    Ok,
    /// Serving from this instance's own state; the reason in words.
    Degraded(String),
}

/// Everything shared between instances.
#[async_trait]
pub trait State: RevocationState + ThrottleState + RateLimitState + LedgerVersions {
    /// "memory" or "redis", as `/health` reports it.
    fn kind(&self) -> &'static str;
    /// Whether the shared backend answers now.
    async fn health(&self) -> StateHealth;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn three_per_minute_then_refused_then_recovers() {
        let rate = Rate::per_minute(3);
        let t0 = 1_700_000_000_000_000;
        let mut tat = None;
        let mut remaining = vec![];
        for _ in 0..3 {
            let (d, t) = gcra(tat, t0, rate);
            assert!(d.allowed);
            remaining.push(d.remaining);
            tat = t;
        }
        assert_eq!(remaining, vec![2, 1, 0]);
        let (d, t) = gcra(tat, t0, rate);
        assert!(!d.allowed);
        assert_eq!(d.retry_after_secs, 20);
        assert_eq!(t, tat, "a refused request does not consume quota");
        let (d, _) = gcra(tat, t0 + 20_000_000, rate);
        assert!(d.allowed);
    }

    #[test]
    fn a_lifted_limit_really_is_lifted() {
        let rate = Rate {
            count: 1_000_000,
            per: Duration::from_secs(1),
        };
        let t0 = 1_700_000_000_000_000;
        let mut tat = None;
        let allowed = (0..100_000u64)
            .filter(|i| {
                // 100 000 requests within 0.1 s.
                let (d, t) = gcra(tat, t0 + i, rate);
                tat = t;
                d.allowed
            })
            .count();
        assert_eq!(allowed, 100_000);
    }

    #[test]
    fn an_uneven_rate_still_allows_its_whole_burst() {
        let rate = Rate {
            count: 7,
            per: Duration::from_secs(60),
        };
        let t0 = 1_700_000_000_000_000;
        let mut tat = None;
        let allowed = (0..8)
            .filter(|_| {
                let (d, t) = gcra(tat, t0, rate);
                tat = t;
                d.allowed
            })
            .count();
        assert_eq!(allowed, 7);
    }
}
