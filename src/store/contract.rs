//! The contract every [`Store`] backend meets, written once and run against
//! each (redb here; PostgreSQL when its URL is given). Every check creates
//! its own users and keys, so one store serves the whole suite, and the
//! atomic methods are driven concurrently where a race could break them.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;

use super::*;
use crate::domain::market::Sentiment;
use crate::domain::portfolio::Side;

/// The current time at the resolution every backend keeps.
use crate::domain::now as micros_now;

pub async fn run_all(store: Arc<dyn Store>) {
    users_and_targeted_updates(&*store).await;
    a_profile_change_cannot_bring_back_a_spent_backup_code(store.clone()).await;
    a_profile_change_cannot_roll_back_the_replay_guard(store.clone()).await;
    disable_racing_a_profile_change_stays_disabled(store.clone()).await;
    one_backup_code_is_spent_once(store.clone()).await;
    one_totp_step_is_used_once(store.clone()).await;
    one_challenge_is_consumed_once(store.clone()).await;
    sessions_rotate_once_then_detect_reuse(store.clone()).await;
    revoking_sessions(&*store).await;
    orders_never_oversell(store.clone()).await;
    idempotent_orders_replay_their_receipt(&*store).await;
    lockouts_are_indexed_per_user(&*store).await;
    outbox_messages_are_claimed_once(store.clone()).await;
    news_pages_by_cursor(&*store).await;
    revocations_and_devices(&*store).await;
    a_sign_in_opens_its_session_and_records_its_device(&*store).await;
    background_jobs_are_leased(&*store).await;
    account_tokens_are_single_use(&*store).await;
    email_changes_keep_addresses_unique(&*store).await;
    purges_cut_chains_where_planned(&*store).await;
}

/// A mailed token is read without being spent, spent once, and a newer
/// one of the same purpose retires the older.
async fn account_tokens_are_single_use(store: &dyn Store) {
    let user = new_user(store, &[]).await;
    let now = micros_now();
    let token = |purpose| AccountToken {
        purpose,
        user_id: user.id.clone(),
        email: user.email.clone(),
        other_email: None,
        created_at: now,
        expires_at: now + Duration::minutes(30),
    };
    let h = |n: &str| format!("{}-{n}", user.id);
    store
        .put_account_token(h("r1"), token(TokenPurpose::ResetPassword), true)
        .await
        .unwrap();
    store
        .put_account_token(h("v1"), token(TokenPurpose::VerifyEmail), true)
        .await
        .unwrap();
    assert_eq!(
        store.account_token(&h("r1")).await.unwrap(),
        Some(token(TokenPurpose::ResetPassword))
    );
    store
        .put_account_token(h("r2"), token(TokenPurpose::ResetPassword), true)
        .await
        .unwrap();
    assert!(store.account_token(&h("r1")).await.unwrap().is_none(), "retired by r2");
    assert!(
        store.account_token(&h("v1")).await.unwrap().is_some(),
        "other purposes stay"
    );
    assert!(store.take_account_token(&h("r2")).await.unwrap().is_some());
    assert!(store.take_account_token(&h("r2")).await.unwrap().is_none(), "spent");
    assert_eq!(
        store
            .retire_account_tokens(&user.id, TokenPurpose::VerifyEmail)
            .await
            .unwrap(),
        1
    );
    store
        .put_account_token(
            h("old"),
            AccountToken {
                expires_at: now - Duration::seconds(1),
                ..token(TokenPurpose::ChangeEmail)
            },
            false,
        )
        .await
        .unwrap();
    let policy = LockoutPolicy {
        threshold: 5,
        window: Duration::hours(1),
        duration: Duration::hours(1),
    };
    assert!(store.purge_expired(now, policy).await.unwrap().account_tokens >= 1);
    assert!(store.account_token(&h("old")).await.unwrap().is_none());
}

async fn email_changes_keep_addresses_unique(store: &dyn Store) {
    let a = new_user(store, &[]).await;
    let b = new_user(store, &[]).await;
    let now = micros_now();
    assert!(matches!(
        store
            .change_email(&a.id, &a.email_key, b.email.clone(), b.email_key.clone(), now)
            .await
            .unwrap(),
        EmailChange::Taken
    ));
    let new = format!("new-{}", a.email);
    match store
        .change_email(&a.id, &a.email_key, new.clone(), new.clone(), now)
        .await
        .unwrap()
    {
        EmailChange::Changed(u) => {
            assert_eq!((u.email.as_str(), u.email_verified_at), (new.as_str(), Some(now)));
        }
        _ => panic!("the change should apply"),
    }
    assert!(
        store.user_by_email(&a.email_key).await.unwrap().is_none(),
        "old key freed"
    );
    assert_eq!(store.user_by_email(&new).await.unwrap().unwrap().id, a.id);
    assert!(matches!(
        store
            .change_email(&a.id, &a.email_key, "x@example.com".into(), "x@example.com".into(), now)
            .await
            .unwrap(),
        EmailChange::Stale
    ));
    assert!(!store
        .mark_email_verified(&b.id, "not-b@example.com", now)
        .await
        .unwrap());
    assert!(store.mark_email_verified(&b.id, &b.email_key, now).await.unwrap());
    assert_eq!(
        store.user_by_id(&b.id).await.unwrap().unwrap().email_verified_at,
        Some(now)
    );
}

/// The plan names the first link each chain keeps; the purge removes the
/// links before it (and old unchained events), nothing else.
async fn purges_cut_chains_where_planned(store: &dyn Store) {
    let chain = format!("contract-{}", crate::domain::new_id());
    let old = micros_now() - Duration::days(400);
    let mut prev_hash = "genesis".to_string();
    for seq in 1..=4u64 {
        let at = if seq <= 2 { old } else { micros_now() };
        let hash = format!("{chain}-h{seq}");
        // Ids sort as time does (UUIDv7): these old ones before any other.
        let e = EventRecord {
            id: format!("0000-{chain}-{seq}"),
            timestamp: at,
            event: "login_success".into(),
            outcome: "success".into(),
            user_id: None,
            email: None,
            ip: None,
            user_agent: None,
            request_id: None,
            details: serde_json::json!({}),
            link: Some(ChainLink {
                chain: chain.clone(),
                seq,
                prev_hash: prev_hash.clone(),
                hash: hash.clone(),
            }),
        };
        prev_hash = hash;
        store.record_event(e, vec![]).await.unwrap();
    }
    assert_eq!(store.chain_head(&chain).await.unwrap().unwrap().seq, 4);
    let before = micros_now() - Duration::days(399);
    let cuts = store.purge_plan(before).await.unwrap();
    let cut = cuts.iter().find(|c| c.chain == chain).unwrap();
    assert_eq!(
        (cut.first_kept_seq, cut.prev_hash.as_str()),
        (3, format!("{chain}-h2").as_str())
    );
    store.purge_events(before, &cuts).await.unwrap();
    let left: Vec<u64> = store
        .events(EventFilter {
            limit: usize::MAX,
            ..EventFilter::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter_map(|e| e.link.filter(|l| l.chain == chain).map(|l| l.seq))
        .collect();
    assert_eq!(left, vec![4, 3]);
}

/// Of several instances, one holds a job until its lease runs out.
async fn background_jobs_are_leased(store: &dyn Store) {
    let job = format!("job-{}", crate::domain::new_id());
    let (now, lease) = (micros_now(), Duration::minutes(5));
    assert!(store.claim_job(&job, "a", now, lease).await.unwrap());
    assert!(!store.claim_job(&job, "b", now, lease).await.unwrap(), "held by a");
    assert!(
        store
            .claim_job(&job, "a", now + Duration::minutes(1), lease)
            .await
            .unwrap(),
        "a renews"
    );
    let later = now + Duration::minutes(7);
    assert!(
        store.claim_job(&job, "b", later, lease).await.unwrap(),
        "a's lease ran out"
    );
    assert!(!store.claim_job(&job, "a", later, lease).await.unwrap());
}

/// A user with a unique email; 2FA on with `codes` as backup-code hashes.
async fn new_user(store: &dyn Store, codes: &[&str]) -> UserRecord {
    let id = crate::domain::new_id();
    let now = micros_now();
    let user = UserRecord {
        email: format!("{id}@example.com"),
        email_key: format!("{id}@example.com"),
        id,
        full_name: None,
        role: Role::User,
        password_hash: "hash-0".into(),
        disabled: false,
        created_at: now,
        last_login_at: None,
        password_changed_at: now,
        two_factor_enabled: false,
        totp: None,
        email_verified_at: None,
    };
    store.create_user(user.clone()).await.unwrap();
    if !codes.is_empty() {
        assert_eq!(
            store.set_pending_totp(&user.id, "sealed".into()).await.unwrap(),
            TotpChange::Done
        );
        let codes = codes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            store.activate_totp(&user.id, 100, codes).await.unwrap(),
            TotpChange::Done
        );
    }
    store.user_by_id(&user.id).await.unwrap().unwrap()
}

async fn users_and_targeted_updates(store: &dyn Store) {
    let u = new_user(store, &[]).await;
    let mut twin = u.clone();
    twin.id = crate::domain::new_id();
    assert!(matches!(
        store.create_user(twin).await,
        Err(CreateUserError::EmailTaken)
    ));
    assert_eq!(store.user_by_email(&u.email_key).await.unwrap().unwrap().id, u.id);
    let later = micros_now() + Duration::seconds(5);
    let changed = store
        .set_password_hash(&u.id, "hash-1".into(), later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (changed.password_hash.as_str(), changed.password_changed_at),
        ("hash-1", later)
    );
    let named = store.set_full_name(&u.id, Some("Ann".into())).await.unwrap().unwrap();
    assert_eq!(named.full_name.as_deref(), Some("Ann"));
    assert_eq!(
        named.password_hash, "hash-1",
        "a targeted update keeps the other fields"
    );
    assert!(store.set_disabled(&u.id, true).await.unwrap().unwrap().disabled);
    let promoted = store.set_role(&u.id, Role::Admin).await.unwrap().unwrap();
    assert_eq!(
        (promoted.role, promoted.full_name.as_deref()),
        (Role::Admin, Some("Ann"))
    );
    assert_eq!(store.user_by_id(&u.id).await.unwrap().unwrap().role, Role::Admin);
    assert_eq!(
        store.set_role(&u.id, Role::User).await.unwrap().unwrap().role,
        Role::User
    );
    assert!(store.set_full_name("no-such-user", None).await.unwrap().is_none());
    assert!(store.set_role("no-such-user", Role::Admin).await.unwrap().is_none());
}

/// PATCH /me and password changes race the second factor: each targeted
/// update must leave a backup code spent meanwhile spent. (The old
/// read-the-user, write-it-all-back path lost such spends.)
async fn a_profile_change_cannot_bring_back_a_spent_backup_code(store: Arc<dyn Store>) {
    for _ in 0..10 {
        let u = new_user(&*store, &["code-a", "code-b"]).await;
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (store, id) = (store.clone(), u.id.clone());
                tokio::spawn(async move {
                    if i % 2 == 0 {
                        store.set_full_name(&id, Some(format!("n{i}"))).await.unwrap();
                    } else {
                        store
                            .set_password_hash(&id, format!("h{i}"), micros_now())
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        assert_eq!(store.use_backup_code(&u.id, "code-a").await.unwrap(), Some(1));
        for w in writers {
            w.await.unwrap();
        }
        let now = store.user_by_id(&u.id).await.unwrap().unwrap();
        assert_eq!(
            now.totp.unwrap().backup_codes,
            vec!["code-b".to_string()],
            "spent stays spent"
        );
    }
}

async fn a_profile_change_cannot_roll_back_the_replay_guard(store: Arc<dyn Store>) {
    for _ in 0..10 {
        let u = new_user(&*store, &["c"]).await;
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (store, id) = (store.clone(), u.id.clone());
                tokio::spawn(async move { store.set_full_name(&id, Some(format!("n{i}"))).await.unwrap() })
            })
            .collect();
        assert_eq!(store.use_totp_step(&u.id, 200).await.unwrap(), TotpChange::Done);
        for w in writers {
            w.await.unwrap();
        }
        assert_eq!(
            store.use_totp_step(&u.id, 200).await.unwrap(),
            TotpChange::Replayed,
            "the step stays used"
        );
    }
}

async fn disable_racing_a_profile_change_stays_disabled(store: Arc<dyn Store>) {
    for _ in 0..10 {
        disable_racing_a_profile_change_once(store.clone()).await;
    }
}

async fn disable_racing_a_profile_change_once(store: Arc<dyn Store>) {
    let u = new_user(&*store, &[]).await;
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, id) = (store.clone(), u.id.clone());
            tokio::spawn(async move {
                if i == 10 {
                    store.set_disabled(&id, true).await.unwrap();
                } else {
                    store.set_full_name(&id, Some(format!("name {i}"))).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert!(store.user_by_id(&u.id).await.unwrap().unwrap().disabled);
}

/// Runs `n` copies of `f` at once; returns how many returned true.
pub(crate) async fn race<F, Fut>(n: usize, f: F) -> usize
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|_| tokio::spawn(f())).collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    wins
}

async fn one_backup_code_is_spent_once(store: Arc<dyn Store>) {
    let u = new_user(&*store, &["only", "other"]).await;
    let wins = race(50, || {
        let (store, id) = (store.clone(), u.id.clone());
        async move { store.use_backup_code(&id, "only").await.unwrap().is_some() }
    })
    .await;
    assert_eq!(wins, 1);
}

async fn one_totp_step_is_used_once(store: Arc<dyn Store>) {
    let u = new_user(&*store, &["c"]).await;
    let wins = race(50, || {
        let (store, id) = (store.clone(), u.id.clone());
        async move { store.use_totp_step(&id, 500).await.unwrap() == TotpChange::Done }
    })
    .await;
    assert_eq!(wins, 1);
}

async fn one_challenge_is_consumed_once(store: Arc<dyn Store>) {
    let jti = crate::domain::new_id();
    let wins = race(50, || {
        let (store, jti) = (store.clone(), jti.clone());
        async move {
            store
                .consume_challenge(&jti, micros_now() + Duration::minutes(5))
                .await
                .unwrap()
        }
    })
    .await;
    assert_eq!(wins, 1);
    assert!(store.challenge_spent(&jti).await.unwrap());
}

fn session_for(user: &UserRecord, now: DateTime<Utc>) -> (SessionRecord, RefreshRecord) {
    let id = crate::domain::new_id();
    let expires_at = now + Duration::days(1);
    let session = SessionRecord {
        id: id.clone(),
        user_id: user.id.clone(),
        created_at: now,
        last_used_at: now,
        ip: "192.0.2.1".into(),
        user_agent: "contract".into(),
        expires_at,
        revoked_at: None,
        reauthenticated_at: None,
    };
    let refresh = RefreshRecord {
        session_id: id,
        user_id: user.id.clone(),
        expires_at,
        rotated_at: None,
    };
    (session, refresh)
}

async fn sessions_rotate_once_then_detect_reuse(store: Arc<dyn Store>) {
    let u = new_user(&*store, &[]).await;
    let now = micros_now();
    let (session, refresh) = session_for(&u, now);
    let old = crate::domain::new_id();
    let logged_in = store
        .create_session(session.clone(), old.clone(), refresh)
        .await
        .unwrap();
    assert!(logged_in.unwrap().last_login_at.is_some());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, old) = (store.clone(), old.clone());
            tokio::spawn(async move {
                store
                    .rotate_refresh(&old, crate::domain::new_id(), now + Duration::days(1), micros_now())
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut rotated, mut reused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            Rotation::Rotated(s) => {
                assert_eq!(s.id, session.id);
                rotated += 1;
            }
            Rotation::Reused { session_id, .. } => {
                assert_eq!(session_id, session.id);
                reused += 1;
            }
            Rotation::Invalid => {}
        }
    }
    assert_eq!(rotated, 1, "one exchange wins");
    assert!(reused >= 1, "a second exchange is theft");
    let s = store.session(&session.id).await.unwrap().unwrap();
    assert!(!s.is_active(micros_now()), "reuse revokes the session");
    assert!(matches!(
        store
            .rotate_refresh("unknown", crate::domain::new_id(), now, now)
            .await
            .unwrap(),
        Rotation::Invalid
    ));
}

async fn revoking_sessions(store: &dyn Store) {
    let u = new_user(store, &[]).await;
    let now = micros_now();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (s, r) = session_for(&u, now);
        ids.push(s.id.clone());
        store.create_session(s, crate::domain::new_id(), r).await.unwrap();
    }
    let (s, u2) = store.session_with_user(&ids[0]).await.unwrap().unwrap();
    assert_eq!((s.user_id.as_str(), u2.id.as_str()), (u.id.as_str(), u.id.as_str()));
    assert!(store.revoke_session(&ids[0], now).await.unwrap());
    assert!(!store.revoke_session(&ids[0], now).await.unwrap(), "already ended");
    let mut ended = store.revoke_user_sessions(&u.id, Some(&ids[1]), now).await.unwrap();
    ended.sort();
    assert_eq!(ended, vec![ids[2].clone()]);
    let live: Vec<_> = store
        .user_sessions(&u.id, now)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![ids[1].clone()]);
    assert!(store.active_session_count(now).await.unwrap() >= 1);
    let later = now + Duration::seconds(30);
    assert!(store.mark_reauthenticated(&ids[1], later).await.unwrap());
    assert!(!store.mark_reauthenticated(&ids[0], later).await.unwrap(), "ended");
    let (s, _) = store.session_with_user(&ids[1]).await.unwrap().unwrap();
    assert_eq!((s.reauthenticated_at, s.authenticated_at()), (Some(later), later));
    assert_eq!(store.session(&ids[2]).await.unwrap().unwrap().authenticated_at(), now);
}

fn order(side: Side, symbol: &str, quantity: i64) -> Order {
    Order {
        side,
        symbol: symbol.into(),
        quantity: Decimal::from(quantity),
        price: Decimal::from(10),
        fee: Decimal::ZERO,
    }
}

async fn orders_never_oversell(store: Arc<dyn Store>) {
    let u = new_user(&*store, &[]).await;
    let bought = store
        .execute_order(&u.id, order(Side::Buy, "ACME", 10), None, None)
        .await
        .unwrap();
    assert!(matches!(bought, OrderOutcome::Executed(_)));
    let sold = race(40, || {
        let (store, id) = (store.clone(), u.id.clone());
        async move {
            match store
                .execute_order(&id, order(Side::Sell, "ACME", 1), None, None)
                .await
                .unwrap()
            {
                OrderOutcome::Executed(_) => true,
                OrderOutcome::Rejected(LedgerError::InsufficientQuantity { .. }) => false,
                other => panic!("unexpected {other:?}"),
            }
        }
    })
    .await;
    assert_eq!(sold, 10);
    let positions = store.positions(&u.id).await.unwrap();
    assert_eq!(positions.len(), 1);
    assert!(positions[0].quantity.is_zero());
    let ledger = store.transactions(&u.id, Some("ACME"), None, 100).await.unwrap();
    assert_eq!(ledger.len(), 11, "the ledger holds exactly what was executed");
    let older = store.transactions(&u.id, None, Some(&ledger[4].id), 100).await.unwrap();
    assert_eq!(older.len(), 6, "paging by id, newest first");
}

async fn idempotent_orders_replay_their_receipt(store: &dyn Store) {
    let u = new_user(store, &[]).await;
    let key = |fingerprint: &str| {
        Some(IdempotencyKey {
            key: "k-1".into(),
            fingerprint: fingerprint.into(),
        })
    };
    let price = Some(Decimal::from(11));
    let OrderOutcome::Executed(first) = store
        .execute_order(&u.id, order(Side::Buy, "ACME", 2), price, key("f"))
        .await
        .unwrap()
    else {
        panic!("the first order executes");
    };
    assert_eq!(first.market_price, price);
    let OrderOutcome::Replayed(again) = store
        .execute_order(&u.id, order(Side::Buy, "ACME", 2), price, key("f"))
        .await
        .unwrap()
    else {
        panic!("the same key and order replay");
    };
    assert_eq!(again, first);
    assert!(matches!(
        store
            .execute_order(&u.id, order(Side::Buy, "ACME", 3), price, key("other"))
            .await
            .unwrap(),
        OrderOutcome::IdempotencyConflict
    ));
    assert_eq!(store.transactions(&u.id, None, None, 10).await.unwrap().len(), 1);
}

async fn lockouts_are_indexed_per_user(store: &dyn Store) {
    let policy = LockoutPolicy {
        threshold: 2,
        window: Duration::hours(1),
        duration: Duration::hours(1),
    };
    let (a, b) = (new_user(store, &[]).await, new_user(store, &[]).await);
    let now = micros_now();
    let account = format!("account:{}", a.email_key);
    let device = format!("device:{}", crate::domain::new_id());
    let first = store
        .record_failure(&account, Some(a.id.clone()), "192.0.2.1", now, policy)
        .await
        .unwrap();
    assert_eq!((first.locked_until, first.attempts_remaining), (None, 1));
    let second = store
        .record_failure(&account, Some(a.id.clone()), "192.0.2.1", now, policy)
        .await
        .unwrap();
    assert!(second.newly_locked && second.locked_until.is_some());
    let third = store
        .record_failure(&account, Some(a.id.clone()), "192.0.2.1", now, policy)
        .await
        .unwrap();
    assert!(!third.newly_locked, "the lock was already there");
    store
        .record_failure(&device, Some(a.id.clone()), "192.0.2.1", now, policy)
        .await
        .unwrap();
    let other = format!("account:{}", b.email_key);
    store
        .record_failure(&other, Some(b.id.clone()), "192.0.2.9", now, policy)
        .await
        .unwrap();
    let mut cleared = store.clear_user_lockouts(&a.id, &account).await.unwrap();
    cleared.sort();
    let mut expected = vec![account.clone(), device.clone()];
    expected.sort();
    assert_eq!(cleared, expected);
    assert!(store.lockout(&account).await.unwrap().is_none());
    assert!(
        store.lockout(&other).await.unwrap().is_some(),
        "other users keep theirs"
    );
    assert!(store.clear_user_lockouts(&a.id, &account).await.unwrap().is_empty());
}

async fn outbox_messages_are_claimed_once(store: Arc<dyn Store>) {
    let now = micros_now();
    let mut ids = Vec::new();
    for i in 0..10 {
        let event = EventRecord {
            id: crate::domain::new_id(),
            timestamp: now,
            event: "password_changed".into(),
            outcome: "success".into(),
            user_id: None,
            email: None,
            ip: None,
            user_agent: None,
            request_id: None,
            details: serde_json::json!({ "n": i }),
            link: None,
        };
        let mail = OutboxMessage {
            id: crate::domain::new_id(),
            to: "a@example.com".into(),
            subject: format!("contract {i}"),
            text: String::new(),
            html: String::new(),
            event_id: event.id.clone(),
            created_at: now,
            attempts: 0,
            next_attempt_at: now - Duration::seconds(1),
            last_error: None,
            sealed_token: Some("sealed".into()),
        };
        ids.push(mail.id.clone());
        store.record_event(event, vec![mail]).await.unwrap();
    }
    let tasks: Vec<_> = (0..5)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .claim_due_mail(micros_now(), 4, Duration::minutes(5))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap().into_iter().map(|m| m.id));
    }
    claimed.retain(|id| ids.contains(id));
    claimed.sort();
    let before = claimed.len();
    claimed.dedup();
    assert_eq!(before, claimed.len(), "no message is claimed twice");
    assert_eq!(claimed.len(), 10);
    let leased = store
        .claim_due_mail(micros_now(), 100, Duration::minutes(5))
        .await
        .unwrap();
    assert!(
        leased.iter().all(|m| !ids.contains(&m.id)),
        "leased messages are hidden"
    );
    let after_lease = micros_now() + Duration::minutes(6);
    let again = store
        .claim_due_mail(after_lease, 100, Duration::minutes(5))
        .await
        .unwrap();
    assert!(
        ids.iter().all(|id| again.iter().any(|m| &m.id == id)),
        "an expired lease frees them"
    );
    for id in &ids {
        store.mail_sent(id).await.unwrap();
    }
    let rest = store.claim_due_mail(after_lease, 100, Duration::minutes(5)).await;
    assert!(rest.unwrap().iter().all(|m| !ids.contains(&m.id)), "sent mail is gone");
}

async fn news_pages_by_cursor(store: &dyn Store) {
    let tag = format!("T{}", &crate::domain::new_id()[..8]).to_uppercase();
    let base = micros_now() - Duration::days(1);
    let items: Vec<NewsItem> = (0..5)
        .map(|i| NewsItem {
            id: format!("{:032x}", rand::random::<u128>()),
            title: format!("story {i}"),
            summary: String::new(),
            url: String::new(),
            source: "contract".into(),
            // Two stories share a time: the id breaks the tie.
            published_at: base + Duration::minutes(i.min(3)),
            symbols: vec![tag.clone()],
            sentiment: Sentiment {
                score: 0.0,
                label: "neutral".into(),
            },
        })
        .collect();
    assert_eq!(store.insert_news(items.clone()).await.unwrap(), 5);
    assert_eq!(
        store.insert_news(items.clone()).await.unwrap(),
        0,
        "known ids are skipped"
    );
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .news(NewsFilter {
                symbol: Some(tag.clone()),
                since: None,
                after: after.clone(),
                limit: 2,
            })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(NewsCursor::after(last));
        seen.extend(page.iter().map(|n| n.id.clone()));
    }
    let mut want = items.clone();
    want.sort_by(|a, b| (b.published_at, &b.id).cmp(&(a.published_at, &a.id)));
    assert_eq!(seen, want.iter().map(|n| n.id.clone()).collect::<Vec<_>>());
}

/// The events a test sign-in records: one naming whether the device was
/// new, for the user `open_session` hands over.
fn sign_in_events(now: DateTime<Utc>) -> SignInEvents {
    Box::new(move |user: &UserRecord, new_device: bool| {
        vec![EventWrite {
            event: EventRecord {
                id: crate::domain::new_id(),
                timestamp: now,
                event: "login_success".into(),
                outcome: "success".into(),
                user_id: Some(user.id.clone()),
                email: None,
                ip: None,
                user_agent: None,
                request_id: None,
                details: serde_json::json!({ "new_device": new_device }),
                link: None,
            },
            mails: Vec::new(),
        }]
    })
}

/// `open_session` stores the session, its refresh token, the device and
/// the events its caller gives for the updated user, and says whether the
/// device is new; for a user who is gone, no device and no events.
async fn a_sign_in_opens_its_session_and_records_its_device(store: &dyn Store) {
    let u = new_user(store, &[]).await;
    let now = micros_now();
    let device = |jti: &str, user_id: &str| DeviceRecord {
        id: "d-open".into(),
        user_id: user_id.into(),
        user_agent: "contract".into(),
        ip_network: "192.0.2.0/24".into(),
        last_ip: "192.0.2.1".into(),
        first_seen: now,
        last_seen: now,
        token_jtis: vec![jti.into()],
    };
    for (jti, new) in [("jti-a", true), ("jti-b", false)] {
        let (s, r) = session_for(&u, now);
        let (hash, sid) = (crate::domain::new_id(), s.id.clone());
        let (user, was_new) = store
            .open_session(s, hash.clone(), r, device(jti, &u.id), sign_in_events(now))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((user.id.as_str(), was_new), (u.id.as_str(), new));
        assert!(user.last_login_at.is_some());
        assert!(store.session(&sid).await.unwrap().unwrap().is_active(now));
        assert!(matches!(
            store
                .rotate_refresh(&hash, crate::domain::new_id(), now + Duration::days(1), now)
                .await
                .unwrap(),
            Rotation::Rotated(_)
        ));
    }
    let d = store.device(&u.id, "d-open").await.unwrap().unwrap();
    assert!(d.speaks_for("jti-a") && d.speaks_for("jti-b"), "both sign-ins bound");
    let of_user = |id: String| EventFilter {
        user_id: Some(id),
        limit: 10,
        ..EventFilter::default()
    };
    let mut recorded: Vec<bool> = store
        .events(of_user(u.id.clone()))
        .await
        .unwrap()
        .iter()
        .map(|e| e.details["new_device"].as_bool().unwrap())
        .collect();
    recorded.sort_unstable();
    assert_eq!(
        recorded,
        [false, true],
        "one event per sign-in, told whether its device was new"
    );
    let mut gone = u.clone();
    gone.id = crate::domain::new_id();
    let (s, r) = session_for(&gone, now);
    assert!(store
        .open_session(
            s,
            crate::domain::new_id(),
            r,
            device("jti-c", &gone.id),
            sign_in_events(now)
        )
        .await
        .unwrap()
        .is_none());
    assert!(
        store.device(&gone.id, "d-open").await.unwrap().is_none(),
        "no device for no user"
    );
    assert!(
        store.events(of_user(gone.id.clone())).await.unwrap().is_empty(),
        "no events for no user"
    );
}

async fn revocations_and_devices(store: &dyn Store) {
    let now = micros_now();
    let hash = crate::domain::new_id();
    store.revoke_token(&hash, now + Duration::minutes(5)).await.unwrap();
    assert!(store
        .live_revocations(now)
        .await
        .unwrap()
        .iter()
        .any(|(h, _)| h == &hash));
    let u = new_user(store, &[]).await;
    let device = DeviceRecord {
        id: "d1".into(),
        user_id: u.id.clone(),
        user_agent: "contract".into(),
        ip_network: "192.0.2.0/24".into(),
        last_ip: "192.0.2.1".into(),
        first_seen: now,
        last_seen: now,
        token_jtis: vec!["jti-1".into()],
    };
    assert!(store.touch_device(device.clone()).await.unwrap(), "new device");
    assert!(!store.touch_device(device).await.unwrap(), "seen before");
    assert!(store.device(&u.id, "d1").await.unwrap().unwrap().speaks_for("jti-1"));
    store.revoke_user_sessions(&u.id, None, now).await.unwrap();
    assert!(
        !store.device(&u.id, "d1").await.unwrap().unwrap().speaks_for("jti-1"),
        "ending every session retires device tokens"
    );
    assert!(store.remove_device(&u.id, "d1").await.unwrap());
    assert!(store.user_devices(&u.id).await.unwrap().is_empty());
}
