//! Two-factor flows (SPEC §2): enrolment (enable → verify), disable, and
//! finishing a login with a TOTP or backup code after the password passed.

use chrono::{Duration, Utc};
use serde::Serialize;

use super::{Accounts, AccountsError, AccountsResult, Attempt, AuthContext, AuthSuccess, LoginOutcome, Origin, Wrong};
use crate::domain::Secret;
use crate::security::client::ClientInfo;
use crate::security::events::{EventType, NewEvent};
use crate::security::jwt::TokenType;
use crate::security::totp;
use crate::store::{TotpChange, UserRecord};

pub const CHALLENGE_TTL_SECS: i64 = 300;

/// A started TOTP enrolment: show the QR code (or the secret) to an
/// authenticator app, then confirm with a first code.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Enrollment {
    /// The base32 secret, for typing in by hand.
    pub secret: String,
    #[schema(example = "otpauth://totp/fortfolio:ann%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=fortfolio")]
    pub otpauth_uri: String,
    /// The QR code as a PNG data URI.
    pub qr_png: String,
    /// The QR code as an SVG document.
    pub qr_svg: String,
}

fn now_secs() -> u64 {
    Utc::now().timestamp().max(0) as u64
}

/// A second-factor (or step-up) attempt by `user`, for lockout and events.
pub(super) fn second_factor_attempt<'a>(user: &'a UserRecord, client: &'a ClientInfo) -> Attempt<'a> {
    Attempt {
        user: Some(user),
        email: &user.email,
        client,
        event: EventType::TwoFactorFailure,
    }
}

/// Which second factor the client presents.
pub enum SecondFactor<'a> {
    Totp(&'a Secret),
    Backup(&'a Secret),
}

/// Two-factor flows.
impl Accounts {
    fn secret_of(&self, user: &UserRecord) -> AccountsResult<Vec<u8>> {
        let t = user
            .totp
            .as_ref()
            .ok_or(AccountsError::TwoFactorNotEnabled { hint: None })?;
        self.totp_box
            .open(&user.id, &t.sealed_secret)
            .map_err(AccountsError::internal)
    }

    /// The step-up check before a 2FA change: the current password (a stolen
    /// access token alone must not turn 2FA on or off).
    async fn step_up(
        &self,
        ctx: &AuthContext,
        password: &Secret,
        client: &ClientInfo,
    ) -> AccountsResult<crate::security::lockout::Reservation> {
        let wrong = Wrong::PASSWORD.in_field("password");
        self.check_current_password(&ctx.user, password, second_factor_attempt(&ctx.user, client), wrong)
            .await
    }

    /// A wrong code during enrolment or disable: counted toward lockout.
    async fn wrong_code(
        &self,
        ctx: &AuthContext,
        slot: crate::security::lockout::Reservation,
        client: &ClientInfo,
    ) -> AccountsError {
        let attempt = second_factor_attempt(&ctx.user, client);
        self.failed_attempt(slot, attempt, Wrong::TOTP_CODE).await
    }

    /// Starts enrolment: a new secret, pending until `verify`. Needs the
    /// current password.
    pub async fn enable(
        &self,
        ctx: &AuthContext,
        password: &Secret,
        client: &ClientInfo,
    ) -> AccountsResult<Enrollment> {
        if ctx.user.two_factor_enabled {
            return Err(AccountsError::TwoFactorAlreadyEnabled);
        }
        let slot = self.step_up(ctx, password, client).await?;
        self.passed_attempt(slot, false).await?;
        let secret = totp::new_secret();
        let sealed = self
            .totp_box
            .seal(&ctx.user.id, &secret)
            .map_err(AccountsError::internal)?;
        match self.store.set_pending_totp(&ctx.user.id, sealed).await? {
            TotpChange::Done => {}
            TotpChange::AlreadyEnabled => return Err(AccountsError::TwoFactorAlreadyEnabled),
            other => return Err(AccountsError::internal(format!("unexpected 2FA state {other:?}"))),
        }
        let b32 = totp::base32(&secret);
        let uri = totp::otpauth_uri(&self.config.issuer, &ctx.user.email, &b32);
        let (qr_svg, qr_png) = totp::qr_codes(&uri).map_err(AccountsError::internal)?;
        Ok(Enrollment {
            secret: b32,
            otpauth_uri: uri,
            qr_png,
            qr_svg,
        })
    }

    /// Activates the pending secret with a first code; returns the backup codes.
    /// A wrong code counts toward lockout.
    pub async fn verify(&self, ctx: &AuthContext, code: &Secret, client: &ClientInfo) -> AccountsResult<Vec<String>> {
        let user = self.fresh(&ctx.user.id).await?;
        if user.two_factor_enabled {
            return Err(AccountsError::TwoFactorAlreadyEnabled);
        }
        if user.totp.is_none() {
            return Err(AccountsError::TwoFactorNotEnabled {
                hint: Some("call POST /auth/2fa/enable first"),
            });
        }
        let secret = self.secret_of(&user)?;
        let key = crate::security::lockout::account_key(&user.email_key);
        let attempt = second_factor_attempt(&user, client);
        let slot = self.reserve_attempt(&key, &attempt).await?;
        let Some(step) = totp::matching_step(&secret, code.expose(), now_secs()) else {
            return Err(self.wrong_code(ctx, slot, client).await);
        };
        let (codes, hashes) = totp::backup_codes();
        match self.store.activate_totp(&user.id, step, hashes).await? {
            TotpChange::Done => {
                self.passed_attempt(slot, false).await?;
                self.events
                    .emit(
                        NewEvent::success(EventType::TwoFactorEnabled)
                            .user(&user)
                            .client(client),
                    )
                    .await;
                Ok(codes)
            }
            TotpChange::AlreadyEnabled => Err(AccountsError::TwoFactorAlreadyEnabled),
            TotpChange::Replayed => Err(self.wrong_code(ctx, slot, client).await),
            _ => Err(AccountsError::TwoFactorNotEnabled { hint: None }),
        }
    }

    /// Turns 2FA off; needs the current password and a current TOTP code or an
    /// unused backup code. Wrong ones count toward lockout.
    pub async fn disable(
        &self,
        ctx: &AuthContext,
        password: &Secret,
        code: &Secret,
        client: &ClientInfo,
    ) -> AccountsResult<()> {
        let user = self.fresh(&ctx.user.id).await?;
        if !user.two_factor_enabled {
            return Err(AccountsError::TwoFactorNotEnabled { hint: None });
        }
        let slot = self.step_up(ctx, password, client).await?;
        if !self.spend_any_code(&user, code).await? {
            return Err(self.wrong_code(ctx, slot, client).await);
        }
        self.passed_attempt(slot, true).await?;
        match self.store.disable_totp(&user.id).await? {
            TotpChange::Done => {
                self.events
                    .emit(
                        NewEvent::success(EventType::TwoFactorDisabled)
                            .user(&user)
                            .client(client),
                    )
                    .await;
                Ok(())
            }
            _ => Err(AccountsError::TwoFactorNotEnabled { hint: None }),
        }
    }

    /// Whether `code` is a current TOTP code of `user` (2FA on); a match
    /// spends its time step, so the same code works only once.
    pub(super) async fn spend_totp_code(&self, user: &UserRecord, code: &Secret) -> AccountsResult<bool> {
        let secret = self.secret_of(user)?;
        Ok(match totp::matching_step(&secret, code.expose(), now_secs()) {
            Some(step) => self.store.use_totp_step(&user.id, step).await? == TotpChange::Done,
            None => false,
        })
    }

    /// Whether `code` is a current TOTP code or an unused backup code of
    /// `user`; a match is spent (the time step, or the backup code).
    pub(super) async fn spend_any_code(&self, user: &UserRecord, code: &Secret) -> AccountsResult<bool> {
        // A six-digit TOTP code is never a backup code (eight letters and
        // digits), so trying both is the same as choosing by form.
        if self.spend_totp_code(user, code).await? {
            return Ok(true);
        }
        Ok(self
            .store
            .use_backup_code(&user.id, &totp::backup_code_hash(code.expose()))
            .await?
            .is_some())
    }

    pub(super) async fn fresh(&self, id: &str) -> AccountsResult<UserRecord> {
        self.store
            .user_by_id(id)
            .await?
            .ok_or_else(|| AccountsError::Unauthenticated("account no longer exists"))
    }

    /// The answer to a correct password when 2FA is on.
    pub fn challenge(&self, user: &UserRecord) -> AccountsResult<LoginOutcome> {
        let (token, _) = self
            .jwt
            .issue(
                TokenType::Challenge,
                &user.id,
                None,
                Duration::seconds(CHALLENGE_TTL_SECS),
            )
            .map_err(AccountsError::internal)?;
        Ok(LoginOutcome::Challenge {
            challenge_token: token,
            expires_in: CHALLENGE_TTL_SECS as u64,
        })
    }

    /// Finishes a login: checks the challenge, the lock, then the code; a wrong
    /// code counts as a failed login. Returns the tokens and, for a backup code,
    /// how many backup codes remain.
    pub async fn finish_login(
        &self,
        challenge_token: &str,
        factor: SecondFactor<'_>,
        client: &ClientInfo,
        device_token: Option<&str>,
    ) -> AccountsResult<(AuthSuccess, Option<usize>)> {
        self.synced(async {
            let claims = self
                .jwt
                .verify(challenge_token, TokenType::Challenge)
                .ok_or(AccountsError::ChallengeExpired)?;
            if self.store.challenge_spent(&claims.jti).await? {
                return Err(AccountsError::ChallengeExpired);
            }
            let user = self
                .store
                .user_by_id(&claims.sub)
                .await?
                .ok_or(AccountsError::ChallengeExpired)?;
            if user.disabled {
                return Err(AccountsError::Disabled);
            }
            if !user.two_factor_enabled {
                return Err(AccountsError::ChallengeExpired);
            }
            let key = self.throttle_key(&user.email_key, Some(&user), device_token).await?;
            let attempt = second_factor_attempt(&user, client);
            let slot = self.reserve_attempt(&key, &attempt).await?;
            let (accepted, remaining, wrong): (bool, Option<usize>, Wrong) = match factor {
                SecondFactor::Totp(code) => (self.spend_totp_code(&user, code).await?, None, Wrong::TOTP_CODE),
                SecondFactor::Backup(code) => {
                    let left = self
                        .store
                        .use_backup_code(&user.id, &totp::backup_code_hash(code.expose()))
                        .await?;
                    (left.is_some(), left, Wrong::BACKUP_CODE)
                }
            };
            if !accepted {
                return Err(self.failed_attempt(slot, attempt, wrong).await);
            }
            if !self.store.consume_challenge(&claims.jti, claims.expires_at()).await? {
                return Err(AccountsError::ChallengeExpired);
            }
            self.passed_attempt(slot, true).await?;
            if let Some(left) = remaining {
                self.events
                    .emit(
                        NewEvent::success(EventType::BackupCodeUsed)
                            .user(&user)
                            .client(client)
                            .detail("backup_codes_remaining", left),
                    )
                    .await;
            }
            let out = self.start_session(user, client, Origin::Login).await?;
            Ok((out, remaining))
        })
        .await
    }
}
