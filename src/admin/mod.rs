//! Administration: the operations behind `fortfolio admin …`, shared by the
//! admin Unix socket (server running) and direct access (server stopped).

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::accounts::{self, UserView};
use crate::accounts::{Accounts, AccountsError, AccountsResult};
use crate::security::events::{EventType, NewEvent};
use crate::store::{Role, UserRecord};

/// A user as the admin sees it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AdminUser {
    #[serde(flatten)]
    pub user: serde_json::Value,
    pub disabled: bool,
    pub locked_until: Option<String>,
}

async fn admin_view(accounts: &Accounts, u: &UserRecord) -> AccountsResult<AdminUser> {
    let locked = accounts
        .throttle
        .locked_until(&crate::security::lockout::account_key(&u.email_key))
        .await?;
    Ok(AdminUser {
        user: serde_json::to_value(UserView::from(u)).map_err(AccountsError::internal)?,
        disabled: u.disabled,
        locked_until: locked.map(crate::domain::rfc3339),
    })
}

fn no_user(email: &str) -> AccountsError {
    AccountsError::NotFound(format!("no user with email {}", email.trim()))
}

async fn find(accounts: &Accounts, email: &str) -> AccountsResult<UserRecord> {
    accounts
        .store
        .user_by_email(&accounts::login_key(email))
        .await?
        .ok_or_else(|| no_user(email))
}

/// Who ran an admin command, as the events name them.
fn by(ev: NewEvent, actor: &str) -> NewEvent {
    ev.detail("by", "admin").detail("actor", actor)
}

pub async fn create_user(
    accounts: &Accounts,
    actor: &str,
    email: &str,
    role: Role,
    password: &str,
) -> AccountsResult<AdminUser> {
    let u = accounts.create_user(email, password, None, role).await?;
    accounts
        .events
        .emit(by(NewEvent::success(EventType::Register).user(&u), actor))
        .await;
    admin_view(accounts, &u).await
}

pub async fn list_users(accounts: &Accounts) -> AccountsResult<Vec<AdminUser>> {
    let mut users = accounts.store.list_users().await?;
    users.sort_by_key(|u| u.created_at);
    let mut out = Vec::with_capacity(users.len());
    for u in &users {
        out.push(admin_view(accounts, u).await?);
    }
    Ok(out)
}

/// Disabling also ends every session, so live tokens stop working at once,
/// and tells the user by mail.
pub async fn set_disabled(accounts: &Accounts, actor: &str, email: &str, disabled: bool) -> AccountsResult<AdminUser> {
    let u = find(accounts, email).await?;
    let u = accounts
        .store
        .set_disabled(&u.id, disabled)
        .await?
        .ok_or_else(|| no_user(email))?;
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
    let ev = NewEvent::success(kind).user(&u).detail("sessions_ended", ended);
    accounts.events.emit(by(ev, actor)).await;
    admin_view(accounts, &u).await
}

pub async fn unlock(accounts: &Accounts, actor: &str, email: &str) -> AccountsResult<usize> {
    let u = find(accounts, email).await?;
    let cleared = accounts.throttle.unlock_user(&u.id, &u.email_key).await?;
    let ev = NewEvent::success(EventType::AccountUnlocked)
        .user(&u)
        .detail("locks_cleared", cleared);
    accounts.events.emit(by(ev, actor)).await;
    Ok(cleared)
}

pub async fn revoke_sessions(accounts: &Accounts, actor: &str, email: &str) -> AccountsResult<usize> {
    let u = find(accounts, email).await?;
    let ended = accounts.store.revoke_user_sessions(&u.id, None, Utc::now()).await?;
    for id in &ended {
        let ev = NewEvent::success(EventType::SessionRevoked)
            .user(&u)
            .detail("session_id", id.as_str());
        accounts.events.emit(by(ev, actor)).await;
    }
    Ok(ended.len())
}

/// Security events for `fortfolio admin events`, newest first.
pub async fn events(
    accounts: &Accounts,
    email: Option<&str>,
    event: Option<&str>,
    since: Option<chrono::DateTime<Utc>>,
    limit: usize,
) -> AccountsResult<Vec<serde_json::Value>> {
    let user_id = match email {
        Some(e) => Some(find(accounts, e).await?.id),
        None => None,
    };
    if let Some(t) = event {
        if EventType::parse(t).is_none() {
            return Err(AccountsError::invalid("event", format!("unknown event type {t}")));
        }
    }
    let found = accounts
        .store
        .events(crate::store::EventFilter {
            user_id,
            event: event.map(str::to_string),
            since,
            before_id: None,
            limit,
        })
        .await?;
    Ok(found.iter().map(crate::security::events::event_json).collect())
}

/// Turns 2FA off for a user who lost their device, and tells them by mail.
pub async fn reset_two_factor(accounts: &Accounts, actor: &str, email: &str) -> AccountsResult<bool> {
    let u = find(accounts, email).await?;
    let was_on = accounts.store.disable_totp(&u.id).await? == crate::store::TotpChange::Done;
    let ev = NewEvent::success(EventType::TwoFactorReset)
        .user(&u)
        .detail("two_factor_was_enabled", was_on);
    accounts.events.emit(by(ev, actor)).await;
    Ok(was_on)
}
