//! Administration: the operations behind `fortfolio admin …` (the admin
//! Unix socket with the server running, direct access with it stopped) and
//! behind `/api/v1/admin/*` (accounts whose role is `admin`, SPEC §11).
//!
//! Every action names its actor in the target's security event
//! (`details.actor`); an action through the API is also recorded on the
//! acting admin's own account (`admin_action`).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::accounts::{self, UserView};
use crate::accounts::{Accounts, AccountsError, AccountsResult};
use crate::domain::ts;
use crate::security::client::ClientInfo;
use crate::security::events::{EventType, NewEvent};
use crate::store::{EventFilter, EventRecord, Role, UserRecord};

/// A user as the admin sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdminUser {
    #[serde(flatten)]
    pub user: UserView,
    pub disabled: bool,
    /// Whether failed logins lock the account now.
    pub locked: bool,
    #[serde(serialize_with = "ts::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub locked_until: Option<DateTime<Utc>>,
}

/// Who runs an admin action.
pub enum Actor<'a> {
    /// A command on the admin socket or the data directory, named by the
    /// CLI's Unix user ("cli:alice (uid 1000)").
    Cli(String),
    /// An admin account over the API.
    Account {
        admin: &'a UserRecord,
        client: &'a ClientInfo,
    },
}

impl Actor<'_> {
    pub fn name(&self) -> &str {
        match self {
            Actor::Cli(name) => name,
            Actor::Account { admin, .. } => &admin.email,
        }
    }

    fn channel(&self) -> &'static str {
        match self {
            Actor::Cli(_) => "admin",
            Actor::Account { .. } => "admin_api",
        }
    }
}

/// Emits an admin action's event on the target's account, naming the actor;
/// through the API, also an `admin_action` event on the admin's account.
async fn record(accounts: &Accounts, actor: &Actor<'_>, target: &UserRecord, ev: NewEvent) {
    let action = ev.kind.as_str();
    let ev = ev
        .user(target)
        .detail("by", actor.channel())
        .detail("actor", actor.name());
    if let Actor::Account { admin, client } = actor {
        // The admin's address and browser go on the admin's own event, not
        // on the target's timeline.
        accounts.events.emit(ev.detail("actor_id", admin.id.as_str())).await;
        let own = NewEvent::success(EventType::AdminAction)
            .user(admin)
            .client(client)
            .detail("action", action)
            .detail("target_user_id", target.id.as_str())
            .detail("target_email", target.email.as_str());
        accounts.events.emit(own).await;
    } else {
        accounts.events.emit(ev).await;
    }
}

pub async fn view(accounts: &Accounts, u: &UserRecord) -> AccountsResult<AdminUser> {
    let locked_until = accounts
        .throttle
        .locked_until(&crate::security::lockout::account_key(&u.email_key))
        .await?;
    Ok(AdminUser {
        user: UserView::from(u),
        disabled: u.disabled,
        locked: locked_until.is_some(),
        locked_until,
    })
}

pub async fn user_by_email(accounts: &Accounts, email: &str) -> AccountsResult<UserRecord> {
    if email.contains('\0') {
        // No stored address has one, and PostgreSQL text cannot hold one.
        return Err(AccountsError::NotFound("no user with this email".to_string()));
    }
    accounts
        .store
        .user_by_email(&accounts::login_key(email))
        .await?
        .ok_or_else(|| AccountsError::NotFound(format!("no user with email {}", email.trim())))
}

fn no_such_user() -> AccountsError {
    AccountsError::NotFound("no user with this id".to_string())
}

/// A user by id; anything but a canonical UUID is no user, answered before
/// the store sees it.
pub async fn user_by_id(accounts: &Accounts, id: &str) -> AccountsResult<UserRecord> {
    if !uuid::Uuid::try_parse(id).is_ok_and(|u| u.to_string() == id) {
        return Err(no_such_user());
    }
    accounts.store.user_by_id(id).await?.ok_or_else(no_such_user)
}

/// The user as stored now (after an action), for the answer.
pub async fn reread(accounts: &Accounts, u: &UserRecord) -> AccountsResult<AdminUser> {
    view(accounts, &user_by_id(accounts, &u.id).await?).await
}

pub async fn create_user(
    accounts: &Accounts,
    actor: &Actor<'_>,
    email: &str,
    role: Role,
    password: &str,
) -> AccountsResult<AdminUser> {
    let u = accounts.create_user(email, password, None, role, true).await?;
    record(accounts, actor, &u, NewEvent::success(EventType::Register)).await;
    view(accounts, &u).await
}

/// Every user, oldest first; with `query`, those whose email or name
/// contains it (case-insensitive). Records, so a caller builds the (lockout
/// reading) views only for the page it answers.
pub async fn list_users(accounts: &Accounts, query: Option<&str>) -> AccountsResult<Vec<UserRecord>> {
    let mut users = accounts.store.list_users().await?;
    if let Some(q) = query.map(str::to_lowercase).filter(|q| !q.is_empty()) {
        users.retain(|u| {
            u.email_key.contains(&q) || u.full_name.as_ref().is_some_and(|n| n.to_lowercase().contains(&q))
        });
    }
    users.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(users)
}

/// The views of `users`, in order.
pub async fn views(accounts: &Accounts, users: &[UserRecord]) -> AccountsResult<Vec<AdminUser>> {
    let mut out = Vec::with_capacity(users.len());
    for u in users {
        out.push(view(accounts, u).await?);
    }
    Ok(out)
}

/// An admin account may not disable or demote itself: the last admin
/// would lock everyone out of the admin API.
fn not_self(actor: &Actor<'_>, target: &UserRecord, what: &str) -> AccountsResult<()> {
    match actor {
        Actor::Account { admin, .. } if admin.id == target.id => Err(AccountsError::Forbidden(format!(
            "an admin cannot {what} their own account; ask another admin or use the fortfolio admin CLI"
        ))),
        _ => Ok(()),
    }
}

/// Disabling also ends every session, so live tokens stop working at once,
/// and tells the user by mail.
pub async fn set_disabled(
    accounts: &Accounts,
    actor: &Actor<'_>,
    target: &UserRecord,
    disabled: bool,
) -> AccountsResult<()> {
    if disabled {
        not_self(actor, target, "disable")?;
    }
    let u = accounts
        .store
        .set_disabled(&target.id, disabled)
        .await?
        .ok_or_else(no_such_user)?;
    let ended = if disabled {
        accounts
            .store
            .revoke_user_sessions(&u.id, None, Utc::now())
            .await?
            .len()
    } else {
        0
    };
    let kind = if disabled {
        EventType::AccountDisabled
    } else {
        EventType::AccountEnabled
    };
    let ev = NewEvent::success(kind).detail("sessions_ended", ended);
    record(accounts, actor, &u, ev).await;
    Ok(())
}

/// Gives the user `role`; a user who has it already is left alone, with no
/// event.
pub async fn set_role(accounts: &Accounts, actor: &Actor<'_>, target: &UserRecord, role: Role) -> AccountsResult<()> {
    if role != Role::Admin {
        not_self(actor, target, "demote")?;
    }
    if target.role == role {
        return Ok(());
    }
    let u = accounts
        .store
        .set_role(&target.id, role)
        .await?
        .ok_or_else(no_such_user)?;
    let name = |r: Role| if r == Role::Admin { "admin" } else { "user" };
    let ev = NewEvent::success(EventType::RoleChanged)
        .detail("from", name(target.role))
        .detail("to", name(role));
    record(accounts, actor, &u, ev).await;
    Ok(())
}

/// Lifts every lock of the user; returns how many lock records it cleared.
pub async fn unlock(accounts: &Accounts, actor: &Actor<'_>, target: &UserRecord) -> AccountsResult<usize> {
    let cleared = accounts.throttle.unlock_user(&target.id, &target.email_key).await?;
    let ev = NewEvent::success(EventType::AccountUnlocked).detail("locks_cleared", cleared);
    record(accounts, actor, target, ev).await;
    Ok(cleared)
}

/// Ends every session of the user; returns how many ended. One event,
/// naming the sessions, even when there were none.
pub async fn revoke_sessions(accounts: &Accounts, actor: &Actor<'_>, target: &UserRecord) -> AccountsResult<usize> {
    let ended = accounts
        .store
        .revoke_user_sessions(&target.id, None, Utc::now())
        .await?;
    let ev = NewEvent::success(EventType::SessionRevoked)
        .detail("sessions_ended", ended.len())
        .detail("session_ids", ended.clone());
    record(accounts, actor, target, ev).await;
    Ok(ended.len())
}

/// Turns 2FA off for a user who lost their device, and tells them by mail;
/// returns whether it was on.
pub async fn reset_two_factor(accounts: &Accounts, actor: &Actor<'_>, target: &UserRecord) -> AccountsResult<bool> {
    let was_on = accounts.store.disable_totp(&target.id).await? == crate::store::TotpChange::Done;
    let ev = NewEvent::success(EventType::TwoFactorReset).detail("two_factor_was_enabled", was_on);
    record(accounts, actor, target, ev).await;
    Ok(was_on)
}

/// A one-time password reset token for a user (no mail needed), for the
/// admin to hand over; returns it with its expiry.
pub async fn reset_password(
    accounts: &Accounts,
    actor: &Actor<'_>,
    target: &UserRecord,
) -> AccountsResult<(crate::domain::Secret, DateTime<Utc>)> {
    let issued = accounts.admin_reset_token(target).await?;
    let ev = NewEvent::success(EventType::PasswordResetRequested).detail("delivery", "printed by the admin");
    record(accounts, actor, target, ev).await;
    Ok(issued)
}

/// The time `back` before now, for a `since` given as a duration; `None`
/// when that is before any date the calendar holds.
pub fn ago(back: std::time::Duration) -> Option<DateTime<Utc>> {
    chrono::Duration::from_std(back)
        .ok()
        .and_then(|b| Utc::now().checked_sub_signed(b))
}

/// Which security events to list, newest first.
#[derive(Default)]
pub struct EventQuery<'a> {
    /// An email or a user id.
    pub user: Option<&'a str>,
    pub event: Option<&'a str>,
    pub since: Option<DateTime<Utc>>,
    /// Events older than this event id (the previous page's last).
    pub before_id: Option<&'a str>,
    pub limit: usize,
}

pub async fn events(accounts: &Accounts, q: EventQuery<'_>) -> AccountsResult<Vec<EventRecord>> {
    let user_id = match q.user {
        Some(u) if u.contains('@') => Some(user_by_email(accounts, u).await?.id),
        Some(id) => Some(user_by_id(accounts, id).await?.id),
        None => None,
    };
    if let Some(t) = q.event {
        if EventType::parse(t).is_none() {
            return Err(AccountsError::invalid("event", format!("unknown event type {t}")));
        }
    }
    Ok(accounts
        .store
        .events(EventFilter {
            user_id,
            event: q.event.map(str::to_string),
            since: q.since,
            before_id: q.before_id.map(str::to_string),
            limit: q.limit,
        })
        .await?)
}

/// The server at a glance (`GET /admin/status`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Status {
    pub users: usize,
    pub sessions_active: usize,
    /// Alert mails waiting in the outbox.
    pub outbox_depth: usize,
    /// `embedded` or `postgres`.
    pub storage: &'static str,
    /// `memory` or `redis`.
    pub state: &'static str,
    pub version: &'static str,
}

pub async fn status(accounts: &Accounts, storage: &'static str, state: &'static str) -> AccountsResult<Status> {
    Ok(Status {
        users: accounts.store.list_users().await?.len(),
        sessions_active: accounts.store.active_session_count(Utc::now()).await?,
        outbox_depth: accounts.store.outbox_depth().await?,
        storage,
        state,
        version: env!("CARGO_PKG_VERSION"),
    })
}
