//! Account lockout (SPEC §5.8) with OWASP device cookies.
//!
//! Failures are counted per throttle key: the account (`account:<email>`),
//! or — when the client presents a valid device token for that account — the
//! device token (`device:<jti>`). A lock caused by strangers therefore never
//! stops the owner's known device. Records live in the store (they survive a
//! restart) with a moka read-through cache in front.
//!
//! Verifying a password is slow, so guesses can race. An attempt therefore
//! first [reserves](LoginThrottle::reserve) a slot: recorded failures plus
//! attempts still being verified may never exceed the threshold, so at most
//! `lockout_threshold` guesses per window are ever evaluated for one key.
//! The outcome is then settled under the same per-key lock: a failure is
//! recorded, and a success clears the count only if no lock was set in the
//! meantime by the failures it raced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::sync::Cache;

use crate::config::AuthConfig;
use crate::store::{LockoutPolicy, LockoutRecord, Store, StoreResult};

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Remaining(u32),
    /// `newly`: this failure caused the lock (alert once).
    Locked {
        until: DateTime<Utc>,
        newly: bool,
    },
}

/// Why an attempt may not be evaluated now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The key is locked until then.
    Locked(DateTime<Utc>),
    /// Recorded failures plus attempts in flight already reach the
    /// threshold; the key is as good as locked until they are settled.
    Saturated,
}

/// How many lock stripes serialise the decisions of different keys.
const STRIPES: usize = 64;

type InFlight = Arc<Mutex<HashMap<String, u32>>>;

#[derive(Clone)]
pub struct LoginThrottle {
    store: Arc<dyn Store>,
    hot: Cache<String, Option<LockoutRecord>>,
    /// Attempts reserved and not yet settled, per key.
    in_flight: InFlight,
    stripes: Arc<[tokio::sync::Mutex<()>]>,
    hasher: std::collections::hash_map::RandomState,
    pub policy: LockoutPolicy,
}

pub fn account_key(email_key: &str) -> String {
    format!("account:{email_key}")
}

pub fn device_key(device_jti: &str) -> String {
    format!("device:{device_jti}")
}

/// A reserved attempt. Settle it with [`LoginThrottle::fail`] or
/// [`LoginThrottle::succeed`]; dropping it unsettled (a request cancelled
/// mid-hash, or one that ended for another reason) frees the slot.
pub struct Reservation {
    key: String,
    in_flight: InFlight,
}

impl Reservation {
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

impl LoginThrottle {
    pub fn new(store: Arc<dyn Store>, cfg: &AuthConfig) -> Self {
        let policy = LockoutPolicy {
            threshold: cfg.lockout_threshold,
            window: chrono::Duration::from_std(cfg.lockout_window.0).unwrap_or(chrono::Duration::hours(1)),
            duration: chrono::Duration::from_std(cfg.lockout_duration.0).unwrap_or(chrono::Duration::hours(1)),
        };
        let hot = Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_secs(60))
            .build();
        Self {
            store,
            hot,
            in_flight: Arc::default(),
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            policy,
        }
    }

    fn stripe(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let h = std::hash::BuildHasher::hash_one(&self.hasher, key) as usize;
        &self.stripes[h % self.stripes.len()]
    }

    async fn record(&self, key: &str) -> StoreResult<Option<LockoutRecord>> {
        if let Some(r) = self.hot.get(key) {
            return Ok(r);
        }
        let r = self.store.lockout(key).await?;
        self.hot.insert(key.to_string(), r.clone());
        Ok(r)
    }

    /// The lock in force for `key`, if any.
    pub async fn locked_until(&self, key: &str) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(self.record(key).await?.and_then(|r| r.locked_at(Utc::now())))
    }

    /// Reserves one attempt for `key`, or says why none may be made now.
    pub async fn reserve(&self, key: &str) -> StoreResult<Result<Reservation, Refusal>> {
        let _guard = self.stripe(key).lock().await;
        let now = Utc::now();
        let failures = match self.record(key).await? {
            Some(rec) => {
                if let Some(until) = rec.locked_at(now) {
                    return Ok(Err(Refusal::Locked(until)));
                }
                rec.live_failures(now, self.policy)
            }
            None => 0,
        };
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let pending = map.get(key).copied().unwrap_or(0);
        if failures + pending >= self.policy.threshold.max(1) {
            return Ok(Err(Refusal::Saturated));
        }
        map.insert(key.to_string(), pending + 1);
        Ok(Ok(Reservation {
            key: key.to_string(),
            in_flight: self.in_flight.clone(),
        }))
    }

    /// Settles a reserved attempt as a failure.
    pub async fn fail(&self, attempt: Reservation, user_id: Option<String>, ip: &str) -> StoreResult<Failure> {
        let key = attempt.key.clone();
        let _guard = self.stripe(&key).lock().await;
        let was_locked = self.locked_until(&key).await?.is_some();
        let rec = self
            .store
            .record_failure(&key, user_id, ip, Utc::now(), self.policy)
            .await?;
        let out = match rec.locked_at(Utc::now()) {
            Some(until) => Failure::Locked {
                until,
                newly: !was_locked,
            },
            None => Failure::Remaining(rec.attempts_remaining(self.policy)),
        };
        self.hot.insert(key, Some(rec));
        drop(attempt);
        Ok(out)
    }

    /// Settles a reserved attempt as a success. If failures it raced locked
    /// the key meanwhile, the lock stands and `Err(locked_until)` is
    /// returned; otherwise, with `forget_failures`, the count is cleared (a
    /// password that still needs its second factor clears nothing).
    pub async fn succeed(&self, attempt: Reservation, forget_failures: bool) -> StoreResult<Result<(), DateTime<Utc>>> {
        let key = attempt.key.clone();
        let _guard = self.stripe(&key).lock().await;
        if let Some(rec) = self.record(&key).await? {
            if let Some(until) = rec.locked_at(Utc::now()) {
                return Ok(Err(until));
            }
            if forget_failures {
                self.store.clear_lockout(&key).await?;
                self.hot.insert(key, None);
            }
        }
        drop(attempt);
        Ok(Ok(()))
    }

    /// Lifts every lock of a user (admin unlock).
    pub async fn unlock_user(&self, user_id: &str, email_key: &str) -> StoreResult<usize> {
        let keys = self.store.clear_user_lockouts(user_id, &account_key(email_key)).await?;
        for k in &keys {
            self.hot.invalidate(k);
        }
        Ok(keys.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn throttle(dir: &std::path::Path) -> LoginThrottle {
        let store: Arc<dyn Store> = Arc::new(crate::store::redb::RedbStore::open(dir).unwrap());
        let cfg = AuthConfig {
            lockout_threshold: 3,
            ..AuthConfig::default()
        };
        LoginThrottle::new(store, &cfg)
    }

    #[tokio::test]
    async fn attempts_in_flight_count_toward_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let t = throttle(dir.path());
        let slots: Vec<Reservation> = [
            t.reserve("k").await.unwrap().unwrap(),
            t.reserve("k").await.unwrap().unwrap(),
            t.reserve("k").await.unwrap().unwrap(),
        ]
        .into();
        assert_eq!(t.reserve("k").await.unwrap().err(), Some(Refusal::Saturated));
        assert!(t.reserve("other").await.unwrap().is_ok(), "keys are independent");
        let mut slots = slots.into_iter();
        // A cancelled attempt frees its slot.
        drop(slots.next());
        let again = t.reserve("k").await.unwrap().unwrap();
        assert_eq!(
            t.fail(slots.next().unwrap(), None, "ip").await.unwrap(),
            Failure::Remaining(2)
        );
        assert_eq!(
            t.fail(slots.next().unwrap(), None, "ip").await.unwrap(),
            Failure::Remaining(1)
        );
        let winner = t.reserve("k").await.unwrap().err();
        assert_eq!(winner, Some(Refusal::Saturated), "2 failures + 1 in flight");
        let Failure::Locked { until, newly: true } = t.fail(again, None, "ip").await.unwrap() else {
            panic!("the third failure locks");
        };
        assert_eq!(t.reserve("k").await.unwrap().err(), Some(Refusal::Locked(until)));
    }

    #[tokio::test]
    async fn a_racing_success_does_not_clear_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let t = throttle(dir.path());
        let right = t.reserve("k").await.unwrap().unwrap();
        let wrong = [
            t.reserve("k").await.unwrap().unwrap(),
            t.reserve("k").await.unwrap().unwrap(),
        ];
        t.store
            .record_failure("k", None, "ip", Utc::now(), t.policy)
            .await
            .unwrap();
        t.hot.invalidate("k");
        for w in wrong {
            t.fail(w, None, "ip").await.unwrap();
        }
        let until = t.locked_until("k").await.unwrap().unwrap();
        assert_eq!(t.succeed(right, true).await.unwrap(), Err(until));
        assert_eq!(t.locked_until("k").await.unwrap(), Some(until), "the lock stands");
    }
}
