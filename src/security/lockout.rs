//! Account lockout (SPEC §5.8) with OWASP device cookies.
//!
//! Failures are counted per throttle key: the account (`account:<email>`),
//! or — when the client presents a valid device token for that account — the
//! device token (`device:<jti>`). A lock caused by strangers therefore never
//! stops the owner's known device. Records live in the store (they survive a
//! restart) with a moka read-through cache in front.

use std::sync::Arc;
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

#[derive(Clone)]
pub struct LoginThrottle {
    store: Arc<dyn Store>,
    hot: Cache<String, Option<LockoutRecord>>,
    pub policy: LockoutPolicy,
}

pub fn account_key(email_key: &str) -> String {
    format!("account:{email_key}")
}

pub fn device_key(device_jti: &str) -> String {
    format!("device:{device_jti}")
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
        Self { store, hot, policy }
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

    pub async fn fail(&self, key: &str, user_id: Option<String>, ip: &str) -> StoreResult<Failure> {
        let was_locked = self.locked_until(key).await?.is_some();
        let rec = self
            .store
            .record_failure(key, user_id, ip, Utc::now(), self.policy)
            .await?;
        let out = match rec.locked_at(Utc::now()) {
            Some(until) => Failure::Locked {
                until,
                newly: !was_locked,
            },
            None => Failure::Remaining(rec.attempts_remaining(self.policy)),
        };
        self.hot.insert(key.to_string(), Some(rec));
        Ok(out)
    }

    /// A success forgets the key's failures.
    pub async fn succeed(&self, key: &str) -> StoreResult<()> {
        if self.record(key).await?.is_some() {
            self.store.clear_lockout(key).await?;
            self.hot.insert(key.to_string(), None);
        }
        Ok(())
    }

    /// Lifts every lock of a user (admin unlock).
    pub async fn unlock_user(&self, user_id: &str, email_key: &str) -> StoreResult<usize> {
        let keys = self.store.clear_user_lockouts(user_id, &account_key(email_key)).await?;
        for k in &keys {
            self.hot.invalidate(k);
        }
        Ok(keys.len())
    }

    /// Attempts left before a lock, for a fresh key.
    pub async fn remaining(&self, key: &str) -> StoreResult<u32> {
        Ok(match self.record(key).await? {
            Some(r) => {
                let mut r = r;
                r.failures.retain(|t| *t > Utc::now() - self.policy.window);
                r.attempts_remaining(self.policy)
            }
            None => self.policy.threshold,
        })
    }
}
