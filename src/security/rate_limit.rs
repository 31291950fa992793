//! Rate limits (SPEC §5.4): GCRA per endpoint group and client key, on the
//! shared state ([`crate::state::RateLimitState`]).
//!
//! Each key holds one number (its "theoretical arrival time"), so a bucket
//! costs a few dozen bytes; the memory state bounds the count and drops idle
//! keys after their period, keeping memory flat under millions of clients.

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Rate, RateLimits};
use crate::state::{now_us, State, StateResult};

pub use crate::state::Decision;

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
    Admin,
    Recovery,
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
            Group::Admin => "admin",
            Group::Recovery => "recovery",
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
            Group::Admin => limits.admin,
            Group::Recovery => limits.recovery,
        }
    }
}

/// Counts requests per endpoint group and client key in the shared state.
pub struct RateLimiter {
    state: Arc<dyn State>,
    limits: RateLimits,
}

impl RateLimiter {
    pub fn new(state: Arc<dyn State>, limits: RateLimits) -> Self {
        Self { state, limits }
    }

    /// The longest configured period: how long an idle bucket can matter.
    pub fn longest_period(limits: &RateLimits) -> Duration {
        [
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
            limits.admin,
            limits.recovery,
        ]
        .iter()
        .map(|r| r.per)
        .max()
        .unwrap_or(Duration::from_secs(60))
    }

    /// Counts one request of `key` against `group`'s limit.
    pub async fn check(&self, group: Group, key: &str) -> StateResult<Decision> {
        let rate = group.rate(&self.limits);
        self.state.check(group.name(), key, rate, now_us()).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn groups_are_independent() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn crate::store::Store> = Arc::new(crate::store::redb::RedbStore::open(dir.path()).unwrap());
        let state = Arc::new(crate::state::memory::MemoryState::new(store, Duration::from_secs(60)));
        let limiter = RateLimiter::new(
            state,
            RateLimits {
                register: Rate::per_minute(1),
                ..RateLimits::default()
            },
        );
        assert!(limiter.check(Group::Register, "ip:1").await.unwrap().allowed);
        assert!(!limiter.check(Group::Register, "ip:1").await.unwrap().allowed);
        assert!(limiter.check(Group::Register, "ip:2").await.unwrap().allowed);
        assert!(limiter.check(Group::Login, "ip:1").await.unwrap().allowed);
    }
}
