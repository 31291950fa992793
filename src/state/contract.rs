//! The contract every [`State`] backend meets, written once and run against
//! each (`memory` here; Redis when its URL is given). Each check uses keys
//! of its own, so one instance serves the whole suite.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::{now_us, Refusal, State};
use crate::config::Rate;
use crate::store::contract::race;
use crate::store::LockoutPolicy;

fn policy(threshold: u32) -> LockoutPolicy {
    LockoutPolicy {
        threshold,
        window: chrono::Duration::hours(1),
        duration: chrono::Duration::hours(1),
    }
}

/// A key no earlier run used (a Redis server outlives test runs).
fn key(name: &str) -> String {
    format!("contract:{name}:{}", uuid::Uuid::new_v4())
}

pub async fn run_all<S: State + 'static>(state: Arc<S>) {
    revocations(&*state).await;
    throttle_counts_and_locks(&*state).await;
    throttle_under_concurrency(state.clone()).await;
    a_racing_success_does_not_clear_the_lock(&*state).await;
    rate_limits(&*state).await;
    rate_limits_under_concurrency(state.clone()).await;
    ledger_versions(state).await;
}

async fn revocations<S: State>(s: &S) {
    let now = Utc::now();
    let (live, gone) = (key("live"), key("gone"));
    assert!(!s.is_revoked(&live, now).await.unwrap());
    s.revoke(&live, now + chrono::Duration::minutes(5)).await.unwrap();
    s.revoke(&gone, now - chrono::Duration::seconds(1)).await.unwrap();
    assert!(s.is_revoked(&live, now).await.unwrap());
    assert!(
        !s.is_revoked(&gone, now).await.unwrap(),
        "an expired token needs no revocation"
    );
}

async fn throttle_counts_and_locks<S: State>(s: &S) {
    let (k, p, now) = (key("account"), policy(3), Utc::now());
    for remaining in [2, 1] {
        s.reserve(&k, now, p).await.unwrap().unwrap();
        let st = s.fail(&k, Some("u1".into()), "192.0.2.1", now, p).await.unwrap();
        assert_eq!((st.locked_until, st.attempts_remaining), (None, remaining));
    }
    s.reserve(&k, now, p).await.unwrap().unwrap();
    let st = s.fail(&k, Some("u1".into()), "192.0.2.1", now, p).await.unwrap();
    let until = st.locked_until.unwrap();
    assert!(st.newly_locked);
    assert_eq!(s.reserve(&k, now, p).await.unwrap(), Err(Refusal::Locked(until)));
    assert_eq!(s.locked_until(&k, now).await.unwrap(), Some(until));
    let cleared = s.clear_user("u1", &k).await.unwrap();
    assert_eq!(cleared, vec![k.clone()]);
    assert_eq!(s.locked_until(&k, now).await.unwrap(), None);
    s.reserve(&k, now, p).await.unwrap().unwrap();
    s.succeed(&k, now, true).await.unwrap().unwrap();
}

/// 50 concurrent guesses with a threshold of 5: at most 5 are checked, the
/// rest are refused before any password is verified.
async fn throttle_under_concurrency<S: State + 'static>(s: Arc<S>) {
    let (k, p) = (key("storm"), policy(5));
    let checked = race(50, || {
        let (s, k) = (s.clone(), k.clone());
        async move {
            let now = Utc::now();
            match s.reserve(&k, now, p).await.unwrap() {
                Ok(()) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    s.fail(&k, None, "192.0.2.2", Utc::now(), p).await.unwrap();
                    true
                }
                Err(_) => false,
            }
        }
    })
    .await;
    assert!((1..=5).contains(&checked), "{checked} guesses were checked");
    assert!(s.locked_until(&k, Utc::now()).await.unwrap().is_some() || checked < 5);
}

async fn a_racing_success_does_not_clear_the_lock<S: State>(s: &S) {
    let (k, p, now) = (key("race"), policy(2), Utc::now());
    s.reserve(&k, now, p).await.unwrap().unwrap(); // the right password, slow
    s.reserve(&k, now, p).await.unwrap().unwrap();
    s.fail(&k, None, "192.0.2.3", now, p).await.unwrap();
    // One failure and one attempt in flight: the threshold is taken.
    assert_eq!(s.reserve(&k, now, p).await.unwrap(), Err(Refusal::Saturated));
    s.release(&k);
    // A remote backend frees the reservation in the background: soon.
    let mut freed = false;
    for _ in 0..100 {
        if s.reserve(&k, now, p).await.unwrap().is_ok() {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(freed, "a released reservation is freed within a second");
    let until = s
        .fail(&k, None, "192.0.2.3", now, p)
        .await
        .unwrap()
        .locked_until
        .unwrap();
    // The slow right password settles now, after the lock.
    assert_eq!(s.succeed(&k, now, true).await.unwrap(), Err(until));
    assert_eq!(s.locked_until(&k, now).await.unwrap(), Some(until), "the lock stands");
}

async fn rate_limits<S: State>(s: &S) {
    let (k, other) = (key("ip"), key("ip"));
    let rate = Rate::per_minute(2);
    let t0 = now_us();
    assert!(s.check("contract", &k, rate, t0).await.unwrap().allowed);
    assert!(s.check("contract", &k, rate, t0).await.unwrap().allowed);
    let refused = s.check("contract", &k, rate, t0).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after_secs, 30);
    assert!(
        s.check("contract", &other, rate, t0).await.unwrap().allowed,
        "keys are independent"
    );
    assert!(
        s.check("other group", &k, rate, t0).await.unwrap().allowed,
        "groups are independent"
    );
    assert!(
        s.check("contract", &k, rate, t0 + 30_000_000).await.unwrap().allowed,
        "credit returns with time"
    );
}

/// 100 concurrent requests against a limit of 10: exactly 10 pass.
async fn rate_limits_under_concurrency<S: State + 'static>(s: Arc<S>) {
    let k = key("burst");
    let t0 = now_us();
    let allowed = race(100, || {
        let (s, k) = (s.clone(), k.clone());
        async move { s.check("contract", &k, Rate::per_minute(10), t0).await.unwrap().allowed }
    })
    .await;
    assert_eq!(allowed, 10);
}

async fn ledger_versions<S: State + 'static>(s: Arc<S>) {
    let user = key("ledger");
    let v0 = s.ledger_version(&user).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (s, user) = (s.clone(), user.clone());
            tokio::spawn(async move { s.bump_ledger(&user).await.unwrap() })
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    for t in tasks {
        assert!(seen.insert(t.await.unwrap()), "each bump hands out a new version");
    }
    let v = s.ledger_version(&user).await.unwrap();
    assert_ne!(v, v0);
    assert!(seen.contains(&v));
}
