//! Accounts and their two-factor state.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{col, execute, pg, query, query_opt, signed, unsigned, PostgresStore};
use crate::store::{
    AccountToken, AccountTokenStore, CreateUserError, EmailChange, Role, StoreResult, TokenPurpose, TotpChange,
    TotpRecord, TwoFactorStore, UserRecord, UserStore,
};

/// The columns [`user_from_row`] reads, in its order.
pub(super) const USER_COLUMNS: &str = "u.id, u.email, u.email_key, u.full_name, u.role, u.password_hash, \
     u.disabled, u.created_at, u.last_login_at, u.password_changed_at, u.two_factor_enabled, \
     u.totp_sealed_secret, u.totp_enabled, u.totp_last_step, u.backup_codes, u.email_verified_at";

/// How many columns [`USER_COLUMNS`] names.
pub(super) const USER_WIDTH: usize = 16;

/// A user from [`USER_COLUMNS`] starting at column `at`.
pub(super) fn user_from_row(row: &Row, at: usize) -> StoreResult<UserRecord> {
    let role: &str = col(row, at + 4)?;
    let sealed: Option<String> = col(row, at + 11)?;
    let last_step: Option<i64> = col(row, at + 13)?;
    let totp = match sealed {
        Some(sealed_secret) => Some(TotpRecord {
            sealed_secret,
            enabled: col(row, at + 12)?,
            last_step: last_step.map(|s| unsigned("users", s)).transpose()?,
            backup_codes: col(row, at + 14)?,
        }),
        None => None,
    };
    Ok(UserRecord {
        id: col(row, at)?,
        email: col(row, at + 1)?,
        email_key: col(row, at + 2)?,
        full_name: col(row, at + 3)?,
        role: if role == "admin" { Role::Admin } else { Role::User },
        password_hash: col(row, at + 5)?,
        disabled: col(row, at + 6)?,
        created_at: col(row, at + 7)?,
        last_login_at: col(row, at + 8)?,
        password_changed_at: col(row, at + 9)?,
        two_factor_enabled: col(row, at + 10)?,
        totp,
        email_verified_at: col(row, at + 15)?,
    })
}

pub(super) fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Admin => "admin",
    }
}

/// A user's 2FA columns: sealed secret, enabled, last step, backup codes.
struct TotpColumns<'a> {
    sealed: Option<&'a String>,
    enabled: bool,
    last_step: Option<i64>,
    codes: &'a [String],
}

fn totp_columns(u: &UserRecord) -> StoreResult<TotpColumns<'_>> {
    let totp = u.totp.as_ref();
    Ok(TotpColumns {
        sealed: totp.map(|t| &t.sealed_secret),
        enabled: totp.is_some_and(|t| t.enabled),
        last_step: totp.and_then(|t| t.last_step).map(signed).transpose()?,
        codes: totp.map_or(&[], |t| t.backup_codes.as_slice()),
    })
}

/// Inserts a user as it is (also used by `admin migrate`); false when the
/// email key is taken.
pub(super) async fn insert_user(c: &impl GenericClient, u: &UserRecord) -> StoreResult<bool> {
    let t = totp_columns(u)?;
    let n = execute(
        c,
        "INSERT INTO users (id, email, email_key, full_name, role, password_hash, disabled, created_at,
                            last_login_at, password_changed_at, two_factor_enabled, totp_sealed_secret,
                            totp_enabled, totp_last_step, backup_codes, email_verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (email_key) DO NOTHING",
        &[
            &u.id,
            &u.email,
            &u.email_key,
            &u.full_name,
            &role_name(u.role),
            &u.password_hash,
            &u.disabled,
            &u.created_at,
            &u.last_login_at,
            &u.password_changed_at,
            &u.two_factor_enabled,
            &t.sealed,
            &t.enabled,
            &t.last_step,
            &t.codes,
            &u.email_verified_at,
        ],
    )
    .await?;
    Ok(n == 1)
}

/// `UPDATE users u SET … WHERE u.id = $1 RETURNING` every user column.
async fn update_returning(
    c: &impl GenericClient,
    set: &str,
    params: &super::Params<'_>,
) -> StoreResult<Option<UserRecord>> {
    let sql = format!("UPDATE users u SET {set} WHERE u.id = $1 RETURNING {USER_COLUMNS}");
    query_opt(c, &sql, params)
        .await?
        .map(|row| user_from_row(&row, 0))
        .transpose()
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, user: UserRecord) -> Result<(), CreateUserError> {
        let client = self.client().await?;
        if insert_user(&client, &user).await? {
            Ok(())
        } else {
            Err(CreateUserError::EmailTaken)
        }
    }

    async fn user_by_id(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
        query_opt(&client, &sql, &[&id])
            .await?
            .map(|row| user_from_row(&row, 0))
            .transpose()
    }

    async fn user_by_email(&self, email_key: &str) -> StoreResult<Option<UserRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.email_key = $1");
        query_opt(&client, &sql, &[&email_key])
            .await?
            .map(|row| user_from_row(&row, 0))
            .transpose()
    }

    async fn set_password_hash(
        &self,
        user_id: &str,
        hash: String,
        changed_at: DateTime<Utc>,
    ) -> StoreResult<Option<UserRecord>> {
        let client = self.client().await?;
        update_returning(
            &client,
            "password_hash = $2, password_changed_at = $3",
            &[&user_id, &hash, &changed_at],
        )
        .await
    }

    async fn set_full_name(&self, user_id: &str, full_name: Option<String>) -> StoreResult<Option<UserRecord>> {
        let client = self.client().await?;
        update_returning(&client, "full_name = $2", &[&user_id, &full_name]).await
    }

    async fn set_disabled(&self, user_id: &str, disabled: bool) -> StoreResult<Option<UserRecord>> {
        let client = self.client().await?;
        update_returning(&client, "disabled = $2", &[&user_id, &disabled]).await
    }

    async fn set_role(&self, user_id: &str, role: Role) -> StoreResult<Option<UserRecord>> {
        let client = self.client().await?;
        update_returning(&client, "role = $2", &[&user_id, &role_name(role)]).await
    }

    async fn mark_email_verified(&self, user_id: &str, email_key: &str, at: DateTime<Utc>) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = execute(
            &client,
            "UPDATE users SET email_verified_at = $3 WHERE id = $1 AND email_key = $2",
            &[&user_id, &email_key, &at],
        )
        .await?;
        Ok(n == 1)
    }

    async fn change_email(
        &self,
        user_id: &str,
        from_key: &str,
        email: String,
        email_key: String,
        at: DateTime<Utc>,
    ) -> StoreResult<EmailChange> {
        let client = self.client().await?;
        let sql = format!(
            "UPDATE users u SET email = $3, email_key = $4, email_verified_at = $5
              WHERE u.id = $1 AND u.email_key = $2 RETURNING {USER_COLUMNS}"
        );
        // The unique index on email_key settles a race for the address.
        match client
            .query_opt(&sql, &[&user_id, &from_key, &email, &email_key, &at])
            .await
        {
            Ok(Some(row)) => Ok(EmailChange::Changed(Box::new(user_from_row(&row, 0)?))),
            Ok(None) => Ok(EmailChange::Stale),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => Ok(EmailChange::Taken),
            Err(e) => Err(pg(e)),
        }
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.id");
        query(&client, &sql, &[])
            .await?
            .iter()
            .map(|row| user_from_row(row, 0))
            .collect()
    }
}

impl PostgresStore {
    /// Reads one user's 2FA state under a row lock, lets `f` decide, and
    /// writes what it changed — one transaction.
    async fn totp_change(
        &self,
        user_id: &str,
        f: impl FnOnce(&mut UserRecord) -> TotpChange + Send,
    ) -> StoreResult<TotpChange> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1 FOR UPDATE");
        let Some(row) = query_opt(&tx, &sql, &[&user_id]).await? else {
            return Ok(TotpChange::NoUser);
        };
        let mut user = user_from_row(&row, 0)?;
        let change = f(&mut user);
        if change == TotpChange::Done {
            write_totp(&tx, &user).await?;
            tx.commit().await.map_err(pg)?;
        }
        Ok(change)
    }
}

/// Writes a user's 2FA columns (and only those).
async fn write_totp(c: &impl GenericClient, u: &UserRecord) -> StoreResult<()> {
    let t = totp_columns(u)?;
    execute(
        c,
        "UPDATE users SET two_factor_enabled = $2, totp_sealed_secret = $3, totp_enabled = $4,
                          totp_last_step = $5, backup_codes = $6
          WHERE id = $1",
        &[
            &u.id,
            &u.two_factor_enabled,
            &t.sealed,
            &t.enabled,
            &t.last_step,
            &t.codes,
        ],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl TwoFactorStore for PostgresStore {
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
        let mut remaining = None;
        let change = self
            .totp_change(user_id, |u| {
                remaining = u.use_backup_code(code_hash);
                if remaining.is_some() {
                    TotpChange::Done
                } else {
                    TotpChange::NotEnabled
                }
            })
            .await?;
        Ok(remaining.filter(|_| change == TotpChange::Done))
    }

    async fn challenge_spent(&self, jti: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        Ok(
            query_opt(&client, "SELECT 1 FROM spent_challenges WHERE jti = $1", &[&jti])
                .await?
                .is_some(),
        )
    }

    async fn consume_challenge(&self, jti: &str, expires_at: DateTime<Utc>) -> StoreResult<bool> {
        let client = self.client().await?;
        let inserted = execute(
            &client,
            "INSERT INTO spent_challenges (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
            &[&jti, &expires_at],
        )
        .await?;
        // Challenges live five minutes: a few expired ones go on the way,
        // which keeps the table small without a job of its own.
        execute(
            &client,
            "DELETE FROM spent_challenges WHERE jti IN
                 (SELECT jti FROM spent_challenges WHERE expires_at < now() LIMIT 64)",
            &[],
        )
        .await?;
        Ok(inserted == 1)
    }
}

fn token_from_row(row: &Row) -> StoreResult<AccountToken> {
    let purpose: String = col(row, 0)?;
    let purpose = [
        TokenPurpose::VerifyEmail,
        TokenPurpose::ResetPassword,
        TokenPurpose::ChangeEmail,
        TokenPurpose::CancelEmailChange,
    ]
    .into_iter()
    .find(|p| p.as_str() == purpose)
    .ok_or_else(|| crate::store::StoreError::Corrupt {
        table: "account_tokens",
        reason: format!("unknown purpose {purpose}"),
    })?;
    Ok(AccountToken {
        purpose,
        user_id: col(row, 1)?,
        email: col(row, 2)?,
        other_email: col(row, 3)?,
        created_at: col(row, 4)?,
        expires_at: col(row, 5)?,
    })
}

const TOKEN_COLUMNS: &str = "purpose, user_id, email, other_email, created_at, expires_at";

#[async_trait]
impl AccountTokenStore for PostgresStore {
    async fn put_account_token(&self, hash: String, t: AccountToken, retire_others: bool) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if retire_others {
            execute(
                &tx,
                "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2",
                &[&t.user_id, &t.purpose.as_str()],
            )
            .await?;
        }
        execute(
            &tx,
            "INSERT INTO account_tokens (hash, purpose, user_id, email, other_email, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                &hash,
                &t.purpose.as_str(),
                &t.user_id,
                &t.email,
                &t.other_email,
                &t.created_at,
                &t.expires_at,
            ],
        )
        .await?;
        tx.commit().await.map_err(pg)
    }

    async fn account_token(&self, hash: &str) -> StoreResult<Option<AccountToken>> {
        let client = self.client().await?;
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM account_tokens WHERE hash = $1");
        query_opt(&client, &sql, &[&hash])
            .await?
            .map(|r| token_from_row(&r))
            .transpose()
    }

    async fn take_account_token(&self, hash: &str) -> StoreResult<Option<AccountToken>> {
        let client = self.client().await?;
        let sql = format!("DELETE FROM account_tokens WHERE hash = $1 RETURNING {TOKEN_COLUMNS}");
        query_opt(&client, &sql, &[&hash])
            .await?
            .map(|r| token_from_row(&r))
            .transpose()
    }

    async fn retire_account_tokens(&self, user_id: &str, purpose: TokenPurpose) -> StoreResult<usize> {
        let client = self.client().await?;
        let n = execute(
            &client,
            "DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2",
            &[&user_id, &purpose.as_str()],
        )
        .await?;
        Ok(n as usize)
    }
}
