//! Rate limits (SPEC §5.4): GCRA per endpoint group and client key.
//!
//! Each key holds one instant (its "theoretical arrival time"), so a bucket
//! costs a few dozen bytes; moka bounds the count and drops idle keys after
//! their period, keeping memory flat under millions of distinct clients.

use std::time::{Duration, Instant};

use moka::sync::Cache;

use crate::config::{Rate, RateLimits};

/// Endpoint groups, one per `[rate_limits]` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Register,
    Login,
    TwoFactor,
    Refresh,
    Logout,
    Password,
    Account,
    Portfolio,
    Prices,
    News,
    Predictions,
}

impl Group {
    pub fn name(self) -> &'static str {
        match self {
            Group::Register => "register",
            Group::Login => "login",
            Group::TwoFactor => "two_factor",
            Group::Refresh => "refresh",
            Group::Logout => "logout",
            Group::Password => "password",
            Group::Account => "account",
            Group::Portfolio => "portfolio",
            Group::Prices => "prices",
            Group::News => "news",
            Group::Predictions => "predictions",
        }
    }

    /// Groups of endpoints that take no access token.
    pub fn is_anonymous(self) -> bool {
        matches!(self, Group::Register | Group::Login | Group::Refresh)
    }

    pub fn rate(self, limits: &RateLimits) -> Rate {
        match self {
            Group::Register => limits.register,
            Group::Login => limits.login,
            Group::TwoFactor => limits.two_factor,
            Group::Refresh => limits.refresh,
            Group::Logout => limits.logout,
            Group::Password => limits.password,
            Group::Account => limits.account,
            Group::Portfolio => limits.portfolio,
            Group::Prices => limits.prices,
            Group::News => limits.news,
            Group::Predictions => limits.predictions,
        }
    }
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

/// One GCRA step: returns the decision and the new arrival time to store.
pub fn gcra(tat: Option<Instant>, now: Instant, rate: Rate) -> (Decision, Option<Instant>) {
    let count = rate.count.max(1);
    let interval = rate.per / count;
    let start = tat.map_or(now, |t| t.max(now));
    let new_tat = start + interval;
    // The earliest moment this request may pass: `count` intervals of credit.
    let allow_at = new_tat.checked_sub(rate.per).unwrap_or(now);
    let ceil_secs = |d: Duration| d.as_millis().div_ceil(1000) as u64;
    if now < allow_at {
        let wait = allow_at - now;
        let decision = Decision {
            allowed: false,
            limit: count,
            remaining: 0,
            reset_secs: ceil_secs(start.saturating_duration_since(now)),
            retry_after_secs: ceil_secs(wait).max(1),
        };
        return (decision, tat);
    }
    let slack = now - allow_at;
    let remaining = (slack.as_nanos() / interval.as_nanos().max(1)) as u32;
    let decision = Decision {
        allowed: true,
        limit: count,
        remaining: remaining.min(count - 1),
        reset_secs: ceil_secs(new_tat - now),
        retry_after_secs: 0,
    };
    (decision, Some(new_tat))
}

/// Buckets kept at most. A bucket costs about 330 bytes in moka (measured
/// with `examples/rate_limit_memory`), so this caps the limiter near 170 MiB
/// under a flood of distinct clients; an evicted bucket only forgets a
/// client that has been idle longest.
pub const MAX_BUCKETS: u64 = 500_000;

pub struct RateLimiter {
    /// Keyed by a keyed 64-bit hash of the client key (random per process,
    /// so nobody can aim collisions): one allocation-free word per bucket.
    buckets: Cache<(Group, u64), Instant>,
    hasher: std::collections::hash_map::RandomState,
    limits: RateLimits,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        // The longest period bounds how long an idle bucket matters.
        let longest = [
            limits.register,
            limits.login,
            limits.two_factor,
            limits.refresh,
            limits.logout,
            limits.password,
            limits.account,
            limits.portfolio,
            limits.prices,
            limits.news,
            limits.predictions,
        ]
        .iter()
        .map(|r| r.per)
        .max()
        .unwrap_or(Duration::from_secs(60));
        Self {
            buckets: Cache::builder().max_capacity(MAX_BUCKETS).time_to_idle(longest).build(),
            hasher: std::collections::hash_map::RandomState::new(),
            limits,
        }
    }

    /// Counts one request of `key` against `group`'s limit.
    pub fn check(&self, group: Group, key: &str) -> Decision {
        let rate = group.rate(&self.limits);
        let now = Instant::now();
        let mut decision = None;
        let hashed = std::hash::BuildHasher::hash_one(&self.hasher, key);
        self.buckets.entry((group, hashed)).and_compute_with(|entry| {
            let (d, new_tat) = gcra(entry.map(|e| e.into_value()), now, rate);
            decision = Some(d);
            match new_tat {
                Some(t) => moka::ops::compute::Op::Put(t),
                None => moka::ops::compute::Op::Nop,
            }
        });
        decision.unwrap_or(Decision {
            allowed: true,
            limit: rate.count,
            remaining: 0,
            reset_secs: 0,
            retry_after_secs: 0,
        })
    }

    /// Applies pending evictions now (moka does it lazily).
    pub fn sync(&self) {
        self.buckets.run_pending_tasks();
    }

    pub fn len(&self) -> u64 {
        self.buckets.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_per_minute_then_refused_then_recovers() {
        let rate = Rate::per_minute(3);
        let t0 = Instant::now();
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
        let (d, _) = gcra(tat, t0 + Duration::from_secs(20), rate);
        assert!(d.allowed);
    }

    #[test]
    fn keys_are_independent_and_memory_is_bounded() {
        let limiter = RateLimiter::new(RateLimits {
            register: Rate::per_minute(1),
            ..RateLimits::default()
        });
        assert!(limiter.check(Group::Register, "ip:1").allowed);
        assert!(!limiter.check(Group::Register, "ip:1").allowed);
        assert!(limiter.check(Group::Register, "ip:2").allowed);
        assert!(limiter.check(Group::Login, "ip:1").allowed);
    }
}
