//! The in-process state (`state.backend = "memory"`): moka caches, a lock
//! per key and a lock-striped table of rate-limit buckets, for one instance. Lockout records stay durable in the
//! store (a lock survives a restart); what lives only here is the count of
//! attempts in flight, the revocation list (reloaded from the store at
//! start), rate-limit buckets and ledger versions.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use moka::sync::Cache;
use moka::Expiry;

use super::{
    gcra, Decision, LedgerVersions, RateLimitState, Refusal, RevocationState, State, StateResult, ThrottleState,
};
use crate::config::Rate;
use crate::store::{FailureStatus, LockoutPolicy, LockoutRecord, Store};

/// Rate-limit buckets kept at most: a bucket is two words in a hash table,
/// so a flood of distinct clients costs the limiter a few tens of MiB at
/// most (`examples/rate_limit_memory` measures it).
pub const MAX_BUCKETS: u64 = 500_000;

/// Stripes of the per-key lock that makes each throttle step atomic.
const STRIPES: usize = 64;

struct UntilTokenExpiry;

impl Expiry<String, DateTime<Utc>> for UntilTokenExpiry {
    fn expire_after_create(&self, _key: &String, exp: &DateTime<Utc>, _now: Instant) -> Option<Duration> {
        Some((*exp - Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }
}

/// The GCRA buckets: stripes of plain hash tables from a bucket's keyed
/// hash to its theoretical arrival time (µs), each behind a mutex held for
/// one lookup and store. A bucket whose arrival time has passed carries no
/// state (a fresh bucket decides the same), so a full stripe first drops
/// those; only if every bucket in it is still live does it forget the least
/// constrained of a few (the one nearest to passing).
struct Buckets {
    stripes: Box<[Mutex<Stripe>]>,
    per_stripe: usize,
    /// How long a full stripe waits between sweeps (a sweep walks it whole).
    sweep_every_us: u64,
}

#[derive(Default)]
struct Stripe {
    tats: HashMap<u64, u64, std::hash::BuildHasherDefault<KeyedHash>>,
    swept_at_us: u64,
}

/// The table's keys are already keyed hashes; hashing them again is waste.
#[derive(Default)]
struct KeyedHash(u64);

impl std::hash::Hasher for KeyedHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Buckets {
    fn new(max: u64, idle: Duration) -> Self {
        let per_stripe = usize::try_from(max).unwrap_or(usize::MAX) / STRIPES;
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::default()).collect(),
            per_stripe: per_stripe.max(1),
            sweep_every_us: u64::try_from(idle.as_micros())
                .unwrap_or(u64::MAX)
                .clamp(1_000_000, 60_000_000),
        }
    }

    fn step(&self, hashed: u64, now_us: u64, rate: Rate) -> Decision {
        let stripe = &self.stripes[(hashed % STRIPES as u64) as usize];
        let mut stripe = stripe.lock().unwrap_or_else(|p| p.into_inner());
        let (decision, new_tat) = gcra(stripe.tats.get(&hashed).copied(), now_us, rate);
        if let Some(tat) = new_tat {
            if stripe.tats.len() >= self.per_stripe && !stripe.tats.contains_key(&hashed) {
                self.make_room(&mut stripe, now_us);
            }
            stripe.tats.insert(hashed, tat);
        }
        decision
    }

    fn make_room(&self, stripe: &mut Stripe, now_us: u64) {
        if now_us.saturating_sub(stripe.swept_at_us) >= self.sweep_every_us {
            stripe.swept_at_us = now_us;
            stripe.tats.retain(|_, tat| *tat > now_us);
        }
        if stripe.tats.len() >= self.per_stripe {
            let nearest = stripe.tats.iter().take(8).min_by_key(|(_, tat)| **tat).map(|(k, _)| *k);
            if let Some(k) = nearest {
                stripe.tats.remove(&k);
            }
        }
    }

    fn len(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).tats.len() as u64)
            .sum()
    }
}

pub struct MemoryState {
    store: Arc<dyn Store>,
    revoked: Cache<String, DateTime<Utc>>,
    /// Lockout records read from the store; every write here goes through
    /// this instance, which refreshes or drops the entry in the same step,
    /// so the cache is never stale (the capacity bound only evicts).
    lockouts: Cache<String, Option<LockoutRecord>>,
    in_flight: Mutex<HashMap<String, u32>>,
    stripes: Box<[tokio::sync::Mutex<()>]>,
    /// Keyed by a keyed 64-bit hash of the client key (random per process,
    /// so nobody can aim collisions): one allocation-free word per bucket.
    buckets: Buckets,
    hasher: RandomState,
    ledgers: RwLock<HashMap<String, u64>>,
    clock: AtomicU64,
}

impl MemoryState {
    /// `idle_bucket` is how long an unused rate-limit bucket can matter
    /// (the longest configured period).
    pub fn new(store: Arc<dyn Store>, idle_bucket: Duration) -> Self {
        Self {
            store,
            revoked: Cache::builder().expire_after(UntilTokenExpiry).build(),
            lockouts: Cache::builder().max_capacity(100_000).build(),
            in_flight: Mutex::default(),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            buckets: Buckets::new(MAX_BUCKETS, idle_bucket),
            hasher: RandomState::new(),
            ledgers: RwLock::new(HashMap::new()),
            clock: AtomicU64::new(1),
        }
    }

    fn stripe(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let h = self.hasher.hash_one(key) as usize;
        &self.stripes[h % self.stripes.len()]
    }

    async fn lockout(&self, key: &str) -> StateResult<Option<LockoutRecord>> {
        if let Some(r) = self.lockouts.get(key) {
            return Ok(r);
        }
        let r = self.store.lockout(key).await?;
        self.lockouts.insert(key.to_string(), r.clone());
        Ok(r)
    }

    fn in_flight(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rate-limit buckets held now.
    pub fn bucket_count(&self) -> u64 {
        self.buckets.len()
    }
}

#[async_trait]
impl RevocationState for MemoryState {
    async fn revoke(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StateResult<()> {
        self.revoked.insert(token_hash.to_string(), expires_at);
        Ok(())
    }

    async fn is_revoked(&self, token_hash: &str, now: DateTime<Utc>) -> StateResult<bool> {
        Ok(self.revoked.get(token_hash).is_some_and(|exp| exp > now))
    }
}

#[async_trait]
impl ThrottleState for MemoryState {
    async fn reserve(&self, key: &str, now: DateTime<Utc>, policy: LockoutPolicy) -> StateResult<Result<(), Refusal>> {
        let _guard = self.stripe(key).lock().await;
        let failures = match self.lockout(key).await? {
            Some(rec) => {
                if let Some(until) = rec.locked_at(now) {
                    return Ok(Err(Refusal::Locked(until)));
                }
                rec.live_failures(now, policy)
            }
            None => 0,
        };
        let mut map = self.in_flight();
        let pending = map.get(key).copied().unwrap_or(0);
        if failures + pending >= policy.threshold.max(1) {
            return Ok(Err(Refusal::Saturated));
        }
        map.insert(key.to_string(), pending + 1);
        Ok(Ok(()))
    }

    async fn fail(
        &self,
        key: &str,
        user_id: Option<String>,
        ip: &str,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
    ) -> StateResult<FailureStatus> {
        let _guard = self.stripe(key).lock().await;
        let status = self.store.record_failure(key, user_id, ip, now, policy).await;
        self.lockouts.invalidate(key);
        self.release(key);
        Ok(status?)
    }

    async fn succeed(
        &self,
        key: &str,
        now: DateTime<Utc>,
        forget_failures: bool,
    ) -> StateResult<Result<(), DateTime<Utc>>> {
        let _guard = self.stripe(key).lock().await;
        let out = match self.lockout(key).await {
            Ok(Some(rec)) => match rec.locked_at(now) {
                Some(until) => Ok(Err(until)),
                None if forget_failures => {
                    let cleared = self.store.clear_lockout(key).await;
                    self.lockouts.invalidate(key);
                    cleared.map(|()| Ok(())).map_err(Into::into)
                }
                None => Ok(Ok(())),
            },
            Ok(None) => Ok(Ok(())),
            Err(e) => Err(e),
        };
        self.release(key);
        out
    }

    fn release(&self, key: &str) {
        let mut map = self.in_flight();
        if let Some(n) = map.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(key);
            }
        }
    }

    async fn locked_until(&self, key: &str, now: DateTime<Utc>) -> StateResult<Option<DateTime<Utc>>> {
        Ok(self.lockout(key).await?.and_then(|r| r.locked_at(now)))
    }

    async fn clear_user(&self, user_id: &str, account_key: &str) -> StateResult<Vec<String>> {
        let keys = self.store.clear_user_lockouts(user_id, account_key).await?;
        for k in keys.iter().map(String::as_str).chain([account_key]) {
            self.lockouts.invalidate(k);
        }
        Ok(keys)
    }
}

#[async_trait]
impl RateLimitState for MemoryState {
    async fn check(&self, group: &str, key: &str, rate: Rate, now_us: u64) -> StateResult<Decision> {
        let hashed = self.hasher.hash_one((group, key));
        Ok(self.buckets.step(hashed, now_us, rate))
    }
}

#[async_trait]
impl LedgerVersions for MemoryState {
    async fn ledger_version(&self, user_id: &str) -> StateResult<u64> {
        Ok(self
            .ledgers
            .read()
            .ok()
            .and_then(|m| m.get(user_id).copied())
            .unwrap_or(0))
    }

    async fn bump_ledger(&self, user_id: &str) -> StateResult<u64> {
        let mut m = self.ledgers.write().unwrap_or_else(|p| p.into_inner());
        let v = self.clock.fetch_add(1, Ordering::Relaxed);
        m.insert(user_id.to_string(), v);
        Ok(v)
    }
}

#[async_trait]
impl State for MemoryState {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn health(&self) -> super::StateHealth {
        super::StateHealth::Ok
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_state_meets_every_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(crate::store::redb::RedbStore::open(dir.path()).unwrap());
        super::super::contract::run_all(Arc::new(MemoryState::new(store, Duration::from_secs(3600)))).await;
    }

    #[test]
    fn a_full_bucket_table_stays_bounded_and_keeps_live_limits() {
        let buckets = Buckets::new(STRIPES as u64 * 4, Duration::from_secs(60));
        let rate = Rate::per_minute(1);
        let t0 = 1_000_000_000;
        for k in 0..10_000u64 {
            assert!(buckets.step(k, t0, rate).allowed);
        }
        assert!(buckets.len() <= STRIPES as u64 * 4);
        // A client just limited stays limited while its stripe is full.
        let limited = 20_000;
        assert!(buckets.step(limited, t0, rate).allowed);
        assert!(!buckets.step(limited, t0 + 1, rate).allowed);
        // Once the others' periods have passed, a sweep drops them, not it.
        let later = t0 + 61_000_000;
        for k in 30_000..30_100u64 {
            buckets.step(k, later, rate);
        }
        assert!(buckets.len() <= STRIPES as u64 * 4);
        let b = Buckets::new(STRIPES as u64 * 4, Duration::from_secs(60));
        assert!(b.step(7, t0, Rate::per_minute(2)).allowed);
        assert!(b.step(7, t0, Rate::per_minute(2)).allowed);
        assert!(!b.step(7, t0, Rate::per_minute(2)).allowed);
    }
}
