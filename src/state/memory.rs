//! The in-process state (`state.backend = "memory"`): moka caches and a
//! lock per key, for one instance. Lockout records stay durable in the
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

/// Rate-limit buckets kept at most. A bucket costs about 330 bytes in moka
/// (measured with `examples/rate_limit_memory`), so this caps the limiter
/// near 170 MiB under a flood of distinct clients; an evicted bucket only
/// forgets a client that has been idle longest.
pub const MAX_BUCKETS: u64 = 500_000;

/// Stripes of the per-key lock that makes each throttle step atomic.
const STRIPES: usize = 64;

struct UntilTokenExpiry;

impl Expiry<String, DateTime<Utc>> for UntilTokenExpiry {
    fn expire_after_create(&self, _key: &String, exp: &DateTime<Utc>, _now: Instant) -> Option<Duration> {
        Some((*exp - Utc::now()).to_std().unwrap_or(Duration::ZERO))
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
    buckets: Cache<u64, u64>,
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
            buckets: Cache::builder()
                .max_capacity(MAX_BUCKETS)
                .time_to_idle(idle_bucket)
                .build(),
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

    /// Rate-limit buckets held now (after pending evictions).
    pub fn bucket_count(&self) -> u64 {
        self.buckets.run_pending_tasks();
        self.buckets.entry_count()
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
        let mut decision = None;
        let hashed = self.hasher.hash_one((group, key));
        self.buckets.entry(hashed).and_compute_with(|entry| {
            let (d, new_tat) = gcra(entry.map(|e| e.into_value()), now_us, rate);
            decision = Some(d);
            match new_tat {
                Some(t) => moka::ops::compute::Op::Put(t),
                None => moka::ops::compute::Op::Nop,
            }
        });
        // `and_compute_with` always runs the closure.
        Ok(decision.unwrap_or(Decision {
            allowed: true,
            limit: rate.count,
            remaining: 0,
            reset_secs: 0,
            retry_after_secs: 0,
        }))
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
}
