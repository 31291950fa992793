//! Account lockout (SPEC §5.8) with OWASP device cookies.
//!
//! Failures are counted per throttle key: the account (`account:<email>`),
//! or — when the client presents a valid device token for that account — the
//! device token (`device:<jti>`). A lock caused by strangers therefore never
//! stops the owner's known device.
//!
//! Verifying a password is slow, so guesses can race. An attempt therefore
//! first [reserves](LoginThrottle::reserve) a slot: recorded failures plus
//! attempts still being verified may never exceed the threshold, so at most
//! `lockout_threshold` guesses per window are ever evaluated for one key.
//! The outcome is then settled atomically: a failure is recorded, and a
//! success clears the count only if no lock was set in the meantime by the
//! failures it raced. The counting itself is shared state
//! ([`crate::state::ThrottleState`]), so every instance sees the same count.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::config::AuthConfig;
use crate::state::{State, StateResult};
use crate::store::LockoutPolicy;

pub use crate::state::Refusal;

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
    state: Arc<dyn State>,
    pub policy: LockoutPolicy,
}

pub fn account_key(email_key: &str) -> String {
    format!("account:{email_key}")
}

pub fn device_key(device_jti: &str) -> String {
    format!("device:{device_jti}")
}

/// A reserved attempt. Settle it with [`LoginThrottle::fail`] or
/// [`LoginThrottle::succeed`]; dropped unsettled (the request went away),
/// it simply frees its slot.
pub struct Reservation {
    key: String,
    state: Arc<dyn State>,
    settled: bool,
}

impl Reservation {
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.settled {
            self.state.release(&self.key);
        }
    }
}

/// The lockout policy of the `[auth]` settings.
pub fn policy(cfg: &AuthConfig) -> LockoutPolicy {
    LockoutPolicy {
        threshold: cfg.lockout_threshold,
        window: chrono::Duration::from_std(cfg.lockout_window.0).unwrap_or(chrono::Duration::hours(1)),
        duration: chrono::Duration::from_std(cfg.lockout_duration.0).unwrap_or(chrono::Duration::hours(1)),
    }
}

impl LoginThrottle {
    pub fn new(state: Arc<dyn State>, cfg: &AuthConfig) -> Self {
        Self {
            state,
            policy: policy(cfg),
        }
    }

    pub async fn locked_until(&self, key: &str) -> StateResult<Option<DateTime<Utc>>> {
        self.state.locked_until(key, Utc::now()).await
    }

    /// Reserves one attempt under `key`, or says why not.
    pub async fn reserve(&self, key: &str) -> StateResult<Result<Reservation, Refusal>> {
        Ok(self
            .state
            .reserve(key, Utc::now(), self.policy)
            .await?
            .map(|()| Reservation {
                key: key.to_string(),
                state: self.state.clone(),
                settled: false,
            }))
    }

    /// Settles a reserved attempt as failed.
    pub async fn fail(&self, mut attempt: Reservation, user_id: Option<String>, ip: &str) -> StateResult<Failure> {
        attempt.settled = true;
        let status = self
            .state
            .fail(&attempt.key, user_id, ip, Utc::now(), self.policy)
            .await?;
        Ok(match status.locked_until {
            Some(until) => Failure::Locked {
                until,
                newly: status.newly_locked,
            },
            None => Failure::Remaining(status.attempts_remaining),
        })
    }

    /// Settles a reserved attempt as passed: `Err(until)` when failures it
    /// raced locked the key meanwhile (the lock stands).
    pub async fn succeed(
        &self,
        mut attempt: Reservation,
        forget_failures: bool,
    ) -> StateResult<Result<(), DateTime<Utc>>> {
        attempt.settled = true;
        self.state.succeed(&attempt.key, Utc::now(), forget_failures).await
    }

    /// Clears every lock of a user (admin unlock); returns how many keys.
    pub async fn unlock_user(&self, user_id: &str, email_key: &str) -> StateResult<usize> {
        Ok(self.state.clear_user(user_id, &account_key(email_key)).await?.len())
    }
}
