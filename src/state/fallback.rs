//! Redis with a local fallback (SPEC §10): when Redis stops answering, the
//! instance keeps serving from its own [`MemoryState`] — the revocations
//! it has seen, local rate limits, lockouts counted in the shared store —
//! reports `degraded`, and re-syncs when Redis answers again.
//!
//! - Revocations are written to both sides always, so the local side knows
//!   every one this instance saw; while degraded, the durable list in the
//!   store (where every instance writes its revocations) is reloaded into
//!   the local side every second, so another instance's logout still
//!   reaches this one. On recovery the durable list is pushed to Redis,
//!   which also repairs a Redis that restarted empty.
//! - Ledger versions carry an epoch that changes on every switch, so a
//!   valuation cached on one side is never taken for current on the other;
//!   ledgers bumped while degraded are bumped in Redis on recovery, so
//!   other instances drop their cached valuations of them too.
//! - A monitor pings Redis every second: `/ready` turns `degraded` within
//!   about a second of an outage even with no traffic, and back to ready
//!   once the re-sync is done.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::memory::MemoryState;
use super::redis::RedisState;
use super::{
    Decision, LedgerVersions, RateLimitState, Refusal, RevocationState, State, StateError, StateHealth, StateResult,
    ThrottleState,
};
use crate::config::Rate;
use crate::store::{FailureStatus, LockoutPolicy, Store};

/// How often the monitor checks Redis (and, while degraded, reloads the
/// durable revocations).
const MONITOR_PERIOD: Duration = Duration::from_secs(1);

/// The epoch's place in a ledger version (Redis versions are µs since
/// 1970, below 2^52 until the year 2112).
const EPOCH_SHIFT: u32 = 52;

pub struct FallbackState {
    remote: RedisState,
    local: MemoryState,
    store: Arc<dyn Store>,
    degraded: AtomicBool,
    epoch: AtomicU64,
    /// Users whose ledger changed while degraded.
    dirty_ledgers: Mutex<HashSet<String>>,
    health: watch::Sender<StateHealth>,
}

impl FallbackState {
    /// Starts serving through `remote`, falling back to `local`; the
    /// monitor runs until the returned value is dropped.
    pub fn start(remote: RedisState, local: MemoryState, store: Arc<dyn Store>) -> Arc<Self> {
        let state = Arc::new(Self {
            remote,
            local,
            store,
            degraded: AtomicBool::new(false),
            epoch: AtomicU64::new(0),
            dirty_ledgers: Mutex::default(),
            health: watch::Sender::new(StateHealth::Ok),
        });
        tokio::spawn(monitor(Arc::downgrade(&state)));
        state
    }

    /// Changes of health, for the security log.
    pub fn subscribe(&self) -> watch::Receiver<StateHealth> {
        self.health.subscribe()
    }

    fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    fn degrade(&self, reason: String) {
        if !self.degraded.swap(true, Ordering::AcqRel) {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            tracing::warn!(reason = %reason, "shared state unreachable: serving from local state");
            self.health.send_replace(StateHealth::Degraded(reason));
        }
    }

    /// Switches back to Redis (after a re-sync): the other half of
    /// [`degrade`](Self::degrade).
    fn recover(&self) {
        if self.degraded.load(Ordering::Acquire) {
            self.epoch.fetch_add(1, Ordering::AcqRel);
            self.degraded.store(false, Ordering::Release);
            tracing::info!("shared state reachable again: re-synced");
            self.health.send_replace(StateHealth::Ok);
        }
    }

    /// Runs `remote` unless degraded; on an outage, degrades and runs
    /// `local` instead.
    async fn either<T, R, L>(&self, remote: R, local: L) -> StateResult<T>
    where
        R: Future<Output = StateResult<T>>,
        L: Future<Output = StateResult<T>>,
    {
        if !self.is_degraded() {
            match remote.await {
                Err(StateError::Unavailable(e)) => self.degrade(e.to_string()),
                other => return other,
            }
        }
        local.await
    }

    /// Pushes what changed while degraded to Redis; `Ok` means Redis is
    /// current again.
    async fn resync(&self) -> StateResult<()> {
        super::load_revocations(&*self.store, &self.remote).await?;
        let dirty: Vec<String> = self.dirty().drain().collect();
        for (i, user) in dirty.iter().enumerate() {
            if let Err(e) = self.remote.bump_ledger(user).await {
                self.dirty().extend(dirty[i..].iter().cloned());
                return Err(e);
            }
        }
        Ok(())
    }

    fn dirty(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.dirty_ledgers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn monitor(state: Weak<FallbackState>) {
    let mut tick = tokio::time::interval(MONITOR_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = state.upgrade() else {
            return;
        };
        let pinged = s.remote.ping().await;
        match (s.is_degraded(), pinged) {
            (false, Ok(())) => {}
            (false, Err(e)) => s.degrade(e.to_string()),
            (true, Err(_)) => {
                // Another instance's logouts reach this one through the store.
                if let Err(e) = super::load_revocations(&*s.store, &s.local).await {
                    tracing::warn!(error = %e, "cannot reload revocations from storage while degraded");
                }
            }
            (true, Ok(())) => match s.resync().await {
                Ok(()) => s.recover(),
                Err(e) => tracing::warn!(error = %e, "re-sync with the shared state failed; retrying"),
            },
        }
    }
}

#[async_trait]
impl RevocationState for FallbackState {
    async fn revoke(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StateResult<()> {
        self.local.revoke(token_hash, expires_at).await?;
        self.either(self.remote.revoke(token_hash, expires_at), async { Ok(()) })
            .await
    }

    async fn is_revoked(&self, token_hash: &str, now: DateTime<Utc>) -> StateResult<bool> {
        self.either(
            self.remote.is_revoked(token_hash, now),
            self.local.is_revoked(token_hash, now),
        )
        .await
    }
}

#[async_trait]
impl ThrottleState for FallbackState {
    async fn reserve(&self, key: &str, now: DateTime<Utc>, policy: LockoutPolicy) -> StateResult<Result<(), Refusal>> {
        self.either(
            self.remote.reserve(key, now, policy),
            self.local.reserve(key, now, policy),
        )
        .await
    }

    async fn fail(
        &self,
        key: &str,
        user_id: Option<String>,
        ip: &str,
        now: DateTime<Utc>,
        policy: LockoutPolicy,
    ) -> StateResult<FailureStatus> {
        self.either(
            self.remote.fail(key, user_id.clone(), ip, now, policy),
            self.local.fail(key, user_id, ip, now, policy),
        )
        .await
    }

    async fn succeed(
        &self,
        key: &str,
        now: DateTime<Utc>,
        forget_failures: bool,
    ) -> StateResult<Result<(), DateTime<Utc>>> {
        self.either(
            self.remote.succeed(key, now, forget_failures),
            self.local.succeed(key, now, forget_failures),
        )
        .await
    }

    fn release(&self, key: &str) {
        // Whichever side holds the reservation frees it; the other has none.
        self.remote.release(key);
        self.local.release(key);
    }

    async fn locked_until(&self, key: &str, now: DateTime<Utc>) -> StateResult<Option<DateTime<Utc>>> {
        self.either(self.remote.locked_until(key, now), self.local.locked_until(key, now))
            .await
    }

    async fn clear_user(&self, user_id: &str, account_key: &str) -> StateResult<Vec<String>> {
        // An unlock clears both sides, so a lock counted during an outage
        // does not outlive it.
        let mut cleared = self.local.clear_user(user_id, account_key).await?;
        let remote = self
            .either(self.remote.clear_user(user_id, account_key), async { Ok(Vec::new()) })
            .await?;
        for key in remote {
            if !cleared.contains(&key) {
                cleared.push(key);
            }
        }
        Ok(cleared)
    }
}

#[async_trait]
impl RateLimitState for FallbackState {
    async fn check(&self, group: &str, key: &str, rate: Rate, now_us: u64) -> StateResult<Decision> {
        self.either(
            self.remote.check(group, key, rate, now_us),
            self.local.check(group, key, rate, now_us),
        )
        .await
    }
}

#[async_trait]
impl LedgerVersions for FallbackState {
    async fn ledger_version(&self, user_id: &str) -> StateResult<u64> {
        let v = self
            .either(self.remote.ledger_version(user_id), self.local.ledger_version(user_id))
            .await?;
        Ok(v ^ (self.epoch.load(Ordering::Acquire) << EPOCH_SHIFT))
    }

    async fn bump_ledger(&self, user_id: &str) -> StateResult<u64> {
        let v = self
            .either(self.remote.bump_ledger(user_id), async {
                self.dirty().insert(user_id.to_string());
                self.local.bump_ledger(user_id).await
            })
            .await?;
        Ok(v ^ (self.epoch.load(Ordering::Acquire) << EPOCH_SHIFT))
    }
}

#[async_trait]
impl State for FallbackState {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn health(&self) -> StateHealth {
        self.health.borrow().clone()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn local(dir: &std::path::Path) -> (MemoryState, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(crate::store::redb::RedbStore::open(dir).unwrap());
        (MemoryState::new(store.clone(), Duration::from_secs(3600)), store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unreachable_redis_degrades_to_local_state_that_meets_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let (memory, store) = local(dir.path());
        // Port 1: nothing listens, the connection is refused at once.
        let state = FallbackState::start(RedisState::new("redis://127.0.0.1:1/", "t:").unwrap(), memory, store);
        super::super::contract::run_all(state.clone()).await;
        assert!(matches!(state.health().await, StateHealth::Degraded(_)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn with_redis_up_the_fallback_meets_the_contract() {
        let Some(url) = crate::test_support::service_url(
            "FORTFOLIO_TEST_REDIS_URL",
            "with_redis_up_the_fallback_meets_the_contract",
        ) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let (memory, store) = local(dir.path());
        let prefix = format!("fortfolio-test-{}:", uuid::Uuid::new_v4().simple());
        let state = FallbackState::start(RedisState::new(&url, &prefix).unwrap(), memory, store);
        super::super::contract::run_all(state.clone()).await;
        assert_eq!(state.health().await, StateHealth::Ok);
        state.remote.delete_all_keys().await.unwrap();
    }
}
