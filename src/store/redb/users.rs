//! Accounts and their two-factor state.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, ReadableTableMetadata, WriteTransaction};

use super::*;
use crate::store::Role;

#[async_trait]
impl UserStore for RedbStore {
    async fn create_user(&self, user: UserRecord) -> Result<(), CreateUserError> {
        let out = self
            .write(move |tx| {
                let mut by_email = tx.open_table(USERS_BY_EMAIL).map_err(backend)?;
                if by_email.get(user.email_key.as_str()).map_err(backend)?.is_some() {
                    return Ok(false);
                }
                by_email
                    .insert(user.email_key.as_str(), user.id.as_bytes())
                    .map_err(backend)?;
                drop(by_email);
                put(tx, USERS, &user.id, &user)?;
                Ok(true)
            })
            .await?;
        if out {
            Ok(())
        } else {
            Err(CreateUserError::EmailTaken)
        }
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        self.read(USERS, "users", id)
    }

    async fn user_by_email(&self, email_key: &str) -> StoreResult<Option<UserRecord>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let by_email = tx.open_table(USERS_BY_EMAIL).map_err(backend)?;
        let Some(id) = by_email.get(email_key).map_err(backend)? else {
            return Ok(None);
        };
        let id = String::from_utf8_lossy(id.value()).into_owned();
        let users = tx.open_table(USERS).map_err(backend)?;
        get(&users, "users", &id)
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        hash: String,
        changed_at: DateTime<Utc>,
    ) -> StoreResult<Option<UserRecord>> {
        self.update_user(user_id, move |u| {
            u.password_hash = hash;
            u.password_changed_at = changed_at;
        })
        .await
    }

    async fn set_full_name(&self, user_id: &str, full_name: Option<String>) -> StoreResult<Option<UserRecord>> {
        self.update_user(user_id, move |u| u.full_name = full_name).await
    }

    async fn set_disabled(&self, user_id: &str, disabled: bool) -> StoreResult<Option<UserRecord>> {
        self.update_user(user_id, move |u| u.disabled = disabled).await
    }

    async fn set_role(&self, user_id: &str, role: Role) -> StoreResult<Option<UserRecord>> {
        self.update_user(user_id, move |u| u.role = role).await
    }

    async fn mark_email_verified(&self, user_id: &str, email_key: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let (id, key) = (user_id.to_string(), email_key.to_string());
        self.write(move |tx| {
            Ok(modify_user(tx, &id, |u| {
                let same = u.email_key == key;
                if same {
                    u.email_verified_at = Some(at);
                }
                (same, same)
            })?
            .unwrap_or(false))
        })
        .await
    }

    async fn change_email(
        &self,
        user_id: &str,
        from_key: &str,
        email: String,
        email_key: String,
        at: DateTime<Utc>,
    ) -> StoreResult<EmailChange> {
        let (id, from) = (user_id.to_string(), from_key.to_string());
        self.write(move |tx| {
            let mut by_email = tx.open_table(USERS_BY_EMAIL).map_err(backend)?;
            if let Some(owner) = by_email.get(email_key.as_str()).map_err(backend)? {
                if owner.value() != id.as_bytes() {
                    return Ok(EmailChange::Taken);
                }
            }
            let changed = modify_user(tx, &id, |u| {
                if u.email_key != from {
                    return (false, None);
                }
                u.email = email;
                u.email_key = email_key.clone();
                u.email_verified_at = Some(at);
                (true, Some(u.clone()))
            })?
            .flatten();
            let Some(user) = changed else {
                return Ok(EmailChange::Stale);
            };
            by_email.remove(from.as_str()).map_err(backend)?;
            by_email.insert(email_key.as_str(), id.as_bytes()).map_err(backend)?;
            Ok(EmailChange::Changed(Box::new(user)))
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(USERS).map_err(backend)?;
        let mut out = Vec::with_capacity(t.len().map_err(backend)? as usize);
        for row in t.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(decode("users", v.value())?);
        }
        Ok(out)
    }
}

/// Read-modify-write of one user inside a write transaction; `f` returns
/// whether to save. `None` when the user does not exist.
fn modify_user<R>(
    tx: &WriteTransaction,
    id: &str,
    f: impl FnOnce(&mut UserRecord) -> (bool, R),
) -> StoreResult<Option<R>> {
    let mut users = tx.open_table(USERS).map_err(backend)?;
    let Some(mut user) = get::<UserRecord>(&users, "users", id)? else {
        return Ok(None);
    };
    let (save, out) = f(&mut user);
    if save {
        users.insert(id, encode(&user)?.as_slice()).map_err(backend)?;
    }
    Ok(Some(out))
}

impl RedbStore {
    /// Changes some fields of one user in one transaction; returns the
    /// updated record.
    async fn update_user(
        &self,
        user_id: &str,
        f: impl FnOnce(&mut UserRecord) + Send + 'static,
    ) -> StoreResult<Option<UserRecord>> {
        let id = user_id.to_string();
        self.write(move |tx| {
            modify_user(tx, &id, |u| {
                f(u);
                (true, u.clone())
            })
        })
        .await
    }

    async fn totp_change(
        &self,
        user_id: &str,
        f: impl FnOnce(&mut UserRecord) -> TotpChange + Send + 'static,
    ) -> StoreResult<TotpChange> {
        let id = user_id.to_string();
        self.write(move |tx| {
            Ok(modify_user(tx, &id, |u| {
                let c = f(u);
                (c == TotpChange::Done, c)
            })?
            .unwrap_or(TotpChange::NoUser))
        })
        .await
    }
}

#[async_trait]
impl TwoFactorStore for RedbStore {
    async fn set_pending_totp(&self, user_id: &str, sealed_secret: String) -> StoreResult<TotpChange> {
        self.totp_change(user_id, move |u| u.set_pending_totp(sealed_secret))
            .await
    }

    async fn activate_totp(&self, user_id: &str, step: u64, backup_codes: Vec<String>) -> StoreResult<TotpChange> {
        self.totp_change(user_id, move |u| u.activate_totp(step, backup_codes))
            .await
    }

    async fn disable_totp(&self, user_id: &str) -> StoreResult<TotpChange> {
        self.totp_change(user_id, UserRecord::disable_totp).await
    }

    async fn use_totp_step(&self, user_id: &str, step: u64) -> StoreResult<TotpChange> {
        self.totp_change(user_id, move |u| u.use_totp_step(step)).await
    }

    async fn use_backup_code(&self, user_id: &str, code_hash: &str) -> StoreResult<Option<usize>> {
        let id = user_id.to_string();
        let hash = code_hash.to_string();
        self.write(move |tx| {
            Ok(modify_user(tx, &id, |u| {
                let remaining = u.use_backup_code(&hash);
                (remaining.is_some(), remaining)
            })?
            .flatten())
        })
        .await
    }

    async fn challenge_spent(&self, jti: &str) -> StoreResult<bool> {
        Ok(self
            .read::<DateTime<Utc>>(SPENT_CHALLENGES, "spent_challenges", jti)?
            .is_some())
    }

    async fn consume_challenge(&self, jti: &str, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        let jti = jti.to_string();
        self.write(move |tx| {
            let mut t = tx.open_table(SPENT_CHALLENGES).map_err(backend)?;
            if t.get(jti.as_str()).map_err(backend)?.is_some() {
                return Ok(false);
            }
            // Opportunistic purge keeps the table small: challenges live 5 min.
            let now = Utc::now();
            let mut expired = Vec::new();
            for row in t.iter().map_err(backend)?.take(64) {
                let (k, v) = row.map_err(backend)?;
                let exp: DateTime<Utc> = decode("spent_challenges", v.value())?;
                if exp < now {
                    expired.push(k.value().to_string());
                }
            }
            for k in expired {
                t.remove(k.as_str()).map_err(backend)?;
            }
            t.insert(jti.as_str(), encode(&expires_at)?.as_slice())
                .map_err(backend)?;
            Ok(true)
        })
        .await
    }
}
