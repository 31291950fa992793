//! The account lifecycle (SPEC §12): proving an address, resetting a
//! forgotten password, changing the address — each by a single-use token
//! mailed to the address it proves.
//!
//! Tokens are 256 random bits; the store keeps only their SHA-256, and the
//! outbox keeps the token sealed under the server key until the mail goes.
//! A token is checked (purpose, expiry, the account still at that address,
//! not retired by a password change) before anything else, and spent
//! atomically only once every other check has passed, so a weak password or
//! a wrong 2FA code does not burn the link.

use chrono::{DateTime, Duration, Utc};

use super::{weak_password, Accounts, AccountsError, AccountsResult, Attempt, AuthContext, Wrong};
use crate::domain::{Email, NewPassword, Secret};
use crate::security::alerts::{AlertKind, TOKEN_MARK};
use crate::security::client::ClientInfo;
use crate::security::events::{EventType, NewEvent, TokenMail};
use crate::security::{random_token, token_hash};
use crate::store::{AccountToken, EmailChange, TokenPurpose, UserRecord};

/// How long a verification link works.
pub const VERIFY_TTL_HOURS: i64 = 24;
/// How long a reset link works.
pub const RESET_TTL_MINUTES: i64 = 30;
/// How long an email change can be confirmed, and cancelled.
pub const CHANGE_TTL_HOURS: i64 = 24;

/// Where the links in mails point: the console's page for each purpose.
fn route(purpose: TokenPurpose) -> &'static str {
    match purpose {
        TokenPurpose::VerifyEmail => "verify-email",
        TokenPurpose::ResetPassword => "reset-password",
        TokenPurpose::ChangeEmail => "confirm-email",
        TokenPurpose::CancelEmailChange => "cancel-email-change",
    }
}

/// A token just made: the raw value (for the CLI only) and its mail.
pub struct Issued {
    pub token: Secret,
    pub mail: TokenMail,
}

impl Accounts {
    /// `503 email_unavailable` unless an SMTP server is configured.
    fn require_mail(&self) -> AccountsResult<()> {
        if self.mail_enabled {
            Ok(())
        } else {
            Err(AccountsError::EmailUnavailable)
        }
    }

    /// The console link a token opens.
    pub fn link(&self, purpose: TokenPurpose, token: &str) -> String {
        format!("{}/#/{}/{token}", self.public_url.trim_end_matches('/'), route(purpose))
    }

    /// Makes and stores a token for `user`, mailed to `to`. Every purpose
    /// but cancel keeps one live token per user: a newer one retires the
    /// older.
    async fn issue(
        &self,
        purpose: TokenPurpose,
        user: &UserRecord,
        to: &str,
        other_email: Option<String>,
        ttl: Duration,
    ) -> AccountsResult<Issued> {
        let token = random_token(32);
        let now = Utc::now();
        let record = AccountToken {
            purpose,
            user_id: user.id.clone(),
            email: to.to_string(),
            other_email,
            created_at: now,
            expires_at: now + ttl,
        };
        let retire_others = purpose != TokenPurpose::CancelEmailChange;
        self.store
            .put_account_token(token_hash(&token), record, retire_others)
            .await?;
        let kind = match purpose {
            TokenPurpose::VerifyEmail => AlertKind::VerifyEmail,
            TokenPurpose::ResetPassword => AlertKind::PasswordResetLink,
            TokenPurpose::ChangeEmail => AlertKind::EmailChangeConfirm,
            TokenPurpose::CancelEmailChange => AlertKind::EmailChangeRequested,
        };
        let sealed_token = self
            .totp_box
            .seal(to, token.as_bytes())
            .map_err(AccountsError::internal)?;
        Ok(Issued {
            mail: TokenMail {
                kind,
                to: to.to_string(),
                sealed_token,
                link: self.link(purpose, TOKEN_MARK),
            },
            token: Secret::new(token),
        })
    }

    /// The live token `raw` stands for, if it has this purpose and has not
    /// expired; read, not spent.
    async fn live_token(&self, raw: &str, purpose: TokenPurpose) -> AccountsResult<(String, AccountToken)> {
        let hash = token_hash(raw);
        match self.store.account_token(&hash).await? {
            Some(t) if t.purpose == purpose && t.expires_at > Utc::now() => Ok((hash, t)),
            _ => Err(AccountsError::InvalidToken),
        }
    }

    /// Spends a checked token; `invalid_token` when a concurrent request
    /// spent it first.
    async fn spend(&self, hash: &str) -> AccountsResult<()> {
        match self.store.take_account_token(hash).await? {
            Some(_) => Ok(()),
            None => Err(AccountsError::InvalidToken),
        }
    }

    /// The account a token speaks for, still at `address`; reset and
    /// change tokens are also retired by any later password change.
    async fn holder(&self, t: &AccountToken, address: &str) -> AccountsResult<UserRecord> {
        let user = self
            .store
            .user_by_id(&t.user_id)
            .await?
            .ok_or(AccountsError::InvalidToken)?;
        let retired = matches!(t.purpose, TokenPurpose::ResetPassword | TokenPurpose::ChangeEmail)
            && t.created_at < user.password_changed_at;
        if user.email_key != super::login_key(address) || retired {
            return Err(AccountsError::InvalidToken);
        }
        Ok(user)
    }

    /// Mails `user` a verification link (at registration, or on request).
    pub async fn send_verification(&self, user: &UserRecord, client: &ClientInfo) -> AccountsResult<()> {
        self.require_mail()?;
        let ttl = Duration::hours(VERIFY_TTL_HOURS);
        let issued = self
            .issue(TokenPurpose::VerifyEmail, user, &user.email, None, ttl)
            .await?;
        self.events
            .emit(
                NewEvent::success(EventType::EmailVerificationSent)
                    .user(user)
                    .client(client)
                    .mail(issued.mail),
            )
            .await;
        Ok(())
    }

    /// `POST /auth/verify-email/resend`: a new link for an unverified
    /// account at `email`; nothing for any other address, and the caller
    /// cannot tell which (the handler answers before this runs).
    pub async fn resend_verification(&self, email: &str, client: &ClientInfo) -> AccountsResult<()> {
        let user = self.account_at(&super::login_key(email)).await?;
        match user {
            Some(u) if u.email_verified_at.is_none() && !u.disabled => self.send_verification(&u, client).await,
            _ => Ok(()),
        }
    }

    /// Moves `user` from its current address to `to` (proven by a link);
    /// `email_taken` when another account has it meanwhile.
    async fn move_account(&self, user: &UserRecord, to: &Email) -> AccountsResult<UserRecord> {
        let moved = self
            .store
            .change_email(&user.id, &user.email_key, to.as_str().to_string(), to.key(), Utc::now())
            .await?;
        match moved {
            EmailChange::Changed(u) => Ok(*u),
            EmailChange::Taken => Err(AccountsError::EmailTaken),
            EmailChange::Stale => Err(AccountsError::InvalidToken),
        }
    }

    /// `POST /auth/verify-email`: proves the address the link was sent to.
    pub async fn verify_email(&self, token: &str, client: &ClientInfo) -> AccountsResult<UserRecord> {
        let (hash, t) = self.live_token(token, TokenPurpose::VerifyEmail).await?;
        let user = self.holder(&t, &t.email).await?;
        self.spend(&hash).await?;
        if !self
            .store
            .mark_email_verified(&user.id, &user.email_key, Utc::now())
            .await?
        {
            return Err(AccountsError::InvalidToken);
        }
        self.events
            .emit(NewEvent::success(EventType::EmailVerified).user(&user).client(client))
            .await;
        self.fresh(&user.id).await
    }

    /// `POST /auth/password-reset/request`'s work, run after the answer
    /// went out (the same answer, as fast, for every address): mails a
    /// reset link to an enabled account at `email`.
    pub async fn request_password_reset(&self, email: &str, client: &ClientInfo) -> AccountsResult<()> {
        let ev = NewEvent::success(EventType::PasswordResetRequested).client(client);
        let user = match self.account_at(&super::login_key(email)).await? {
            Some(u) if !u.disabled => u,
            other => {
                let reason = if other.is_some() {
                    "account_disabled"
                } else {
                    "unknown_account"
                };
                let ev = NewEvent::failure(EventType::PasswordResetRequested)
                    .who(other.as_ref(), email)
                    .client(client)
                    .detail("reason", reason);
                self.events.emit(ev).await;
                return Ok(());
            }
        };
        let ttl = Duration::minutes(RESET_TTL_MINUTES);
        let issued = self
            .issue(TokenPurpose::ResetPassword, &user, &user.email, None, ttl)
            .await?;
        self.events.emit(ev.user(&user).mail(issued.mail)).await;
        Ok(())
    }

    /// `fortfolio admin user reset-password`: a reset token made without
    /// mail, for the admin to hand over (the caller records the event).
    pub async fn admin_reset_token(&self, user: &UserRecord) -> AccountsResult<(Secret, DateTime<Utc>)> {
        let ttl = Duration::minutes(RESET_TTL_MINUTES);
        let issued = self
            .issue(TokenPurpose::ResetPassword, user, &user.email, None, ttl)
            .await?;
        Ok((issued.token, Utc::now() + ttl))
    }

    /// `POST /auth/password-reset/confirm`: sets a new password from a reset
    /// link. With 2FA on, a current TOTP or an unused backup code is needed
    /// too (wrong ones count toward a lock of their own, so a reset cannot
    /// guess codes faster than a login). Ends every session, clears every
    /// lock of the account; returns how many sessions ended.
    pub async fn confirm_password_reset(
        &self,
        token: &str,
        new_password: &str,
        code: Option<&Secret>,
        client: &ClientInfo,
    ) -> AccountsResult<usize> {
        let (hash, t) = self.live_token(token, TokenPurpose::ResetPassword).await?;
        let user = self.holder(&t, &t.email).await?;
        if user.disabled {
            return Err(AccountsError::Disabled);
        }
        let email = Email::parse(&user.email).map_err(AccountsError::internal)?;
        let new = NewPassword::parse(new_password, &email, user.full_name.as_deref())
            .map_err(|r| weak_password("new_password", r))?;
        if user.two_factor_enabled {
            let attempt = Attempt {
                user: Some(&user),
                email: &user.email,
                client,
                event: EventType::TwoFactorFailure,
            };
            let key = format!("reset:{}", user.id);
            let slot = self.reserve_attempt(&key, &attempt).await?;
            let accepted = match code {
                Some(c) => self.spend_any_code(&user, c).await?,
                None => false,
            };
            if !accepted {
                let wrong = Wrong::TOTP_CODE.in_field("code");
                return Err(self.failed_attempt(slot, attempt, wrong).await);
            }
            self.passed_attempt(slot, true).await?;
        }
        let password_hash = self.hasher.hash(new.secret()).await?;
        self.spend(&hash).await?;
        let now = Utc::now();
        self.store
            .set_password_hash(&user.id, password_hash, now)
            .await?
            .ok_or(AccountsError::InvalidToken)?;
        // The link proved the address too.
        self.store.mark_email_verified(&user.id, &user.email_key, now).await?;
        let ended = self.store.revoke_user_sessions(&user.id, None, now).await?;
        self.throttle.unlock_user(&user.id, &user.email_key).await?;
        self.events
            .emit(
                NewEvent::success(EventType::PasswordReset)
                    .user(&user)
                    .client(client)
                    .detail("sessions_ended", ended.len()),
            )
            .await;
        Ok(ended.len())
    }

    /// `POST /me/email`: needs the password; mails a confirmation link to
    /// the new address (unless another account has it: the answer is the
    /// same) and an alert with a cancel link to the current one.
    pub async fn request_email_change(
        &self,
        ctx: &AuthContext,
        new_email: &str,
        password: &Secret,
        client: &ClientInfo,
    ) -> AccountsResult<()> {
        self.require_mail()?;
        let new = Email::parse(new_email).map_err(|e| AccountsError::invalid("new_email", e))?;
        if new.key() == ctx.user.email_key {
            return Err(AccountsError::invalid(
                "new_email",
                "this is already the account's address",
            ));
        }
        let attempt = Attempt {
            user: Some(&ctx.user),
            email: &ctx.user.email,
            client,
            event: EventType::LoginFailure,
        };
        let wrong = Wrong::PASSWORD.in_field("password");
        let slot = self.check_current_password(&ctx.user, password, attempt, wrong).await?;
        self.passed_attempt(slot, false).await?;
        let user = self.fresh(&ctx.user.id).await?;
        let ttl = Duration::hours(CHANGE_TTL_HOURS);
        let old = user.email.clone();
        let mut ev = NewEvent::success(EventType::EmailChangeRequested)
            .user(&user)
            .client(client)
            .detail("new_email", new.as_str());
        if self.store.user_by_email(&new.key()).await?.is_none() {
            let confirm = self
                .issue(TokenPurpose::ChangeEmail, &user, new.as_str(), Some(old.clone()), ttl)
                .await?;
            ev = ev.mail(confirm.mail);
        }
        let cancel = self
            .issue(
                TokenPurpose::CancelEmailChange,
                &user,
                &old,
                Some(new.as_str().to_string()),
                ttl,
            )
            .await?;
        self.events.emit(ev.mail(cancel.mail)).await;
        Ok(())
    }

    /// `POST /auth/confirm-email`: the new address proves itself and the
    /// account moves to it.
    pub async fn confirm_email_change(&self, token: &str, client: &ClientInfo) -> AccountsResult<UserRecord> {
        let (hash, t) = self.live_token(token, TokenPurpose::ChangeEmail).await?;
        let old = t.other_email.clone().ok_or(AccountsError::InvalidToken)?;
        let user = self.holder(&t, &old).await?;
        let new = Email::parse(&t.email).map_err(AccountsError::internal)?;
        self.spend(&hash).await?;
        let user = self.move_account(&user, &new).await?;
        // The alert goes to the old address.
        self.events
            .emit(
                NewEvent::success(EventType::EmailChanged)
                    .user_id(&user.id)
                    .email(&old)
                    .client(client)
                    .detail("new_email", new.as_str()),
            )
            .await;
        Ok(user)
    }

    /// `POST /auth/cancel-email-change`: the link mailed to the old address
    /// retires a pending change or moves a confirmed one back, and ends
    /// every session (whoever asked knew the password).
    pub async fn cancel_email_change(&self, token: &str, client: &ClientInfo) -> AccountsResult<UserRecord> {
        let (hash, t) = self.live_token(token, TokenPurpose::CancelEmailChange).await?;
        let new = t.other_email.clone().ok_or(AccountsError::InvalidToken)?;
        let user = self
            .store
            .user_by_id(&t.user_id)
            .await?
            .ok_or(AccountsError::InvalidToken)?;
        self.spend(&hash).await?;
        self.store
            .retire_account_tokens(&user.id, TokenPurpose::ChangeEmail)
            .await?;
        let old = Email::parse(&t.email).map_err(AccountsError::internal)?;
        let user = if user.email_key == super::login_key(&new) {
            self.move_account(&user, &old).await?
        } else {
            user
        };
        let ended = self.store.revoke_user_sessions(&user.id, None, Utc::now()).await?;
        self.events
            .emit(
                NewEvent::success(EventType::EmailChangeCancelled)
                    .user(&user)
                    .client(client)
                    .detail("new_email", new.as_str())
                    .detail("sessions_ended", ended.len()),
            )
            .await;
        Ok(user)
    }
}
