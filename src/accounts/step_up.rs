//! Step-up authentication (SPEC §11): a signed-in user proves their
//! password or a current TOTP code again, and for the next minutes the
//! session may do what a stolen access token alone must not (admin actions).
//!
//! The proof is kept on the session in the store, so it holds on every
//! instance and survives a restart; a wrong secret counts toward the
//! account's lockout like a login.

use chrono::{DateTime, Duration, Utc};

use super::two_factor::second_factor_attempt;
use super::{Accounts, AccountsError, AccountsResult, Attempt, AuthContext, Wrong};
use crate::domain::Secret;
use crate::security::client::ClientInfo;
use crate::security::events::{EventType, NewEvent};

/// What the user proves.
pub enum Proof<'a> {
    Password(&'a Secret),
    /// A current TOTP code (backup codes are for lost devices, not step-up).
    Code(&'a Secret),
}

impl Proof<'_> {
    fn method(&self) -> &'static str {
        match self {
            Proof::Password(_) => "password",
            Proof::Code(_) => "totp",
        }
    }
}

impl Accounts {
    /// Until when an authentication at `at` counts as recent
    /// (`auth.reauth_max_age`, 10 minutes by default).
    pub fn fresh_until(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at + Duration::from_std(self.config.reauth_max_age.0).unwrap_or(Duration::minutes(10))
    }

    /// `403 reauthentication_required` unless the caller proved a secret in
    /// this session recently enough.
    pub fn require_recent(&self, ctx: &AuthContext) -> AccountsResult<()> {
        if Utc::now() < self.fresh_until(ctx.authenticated_at) {
            Ok(())
        } else {
            Err(AccountsError::ReauthenticationRequired {
                authenticated_at: ctx.authenticated_at,
            })
        }
    }

    /// Checks the proof (counted toward lockout when wrong) and records it
    /// on the caller's session; returns when it was recorded.
    pub async fn reauthenticate(
        &self,
        ctx: &AuthContext,
        proof: Proof<'_>,
        client: &ClientInfo,
    ) -> AccountsResult<DateTime<Utc>> {
        let attempt = || Attempt {
            event: EventType::Reauthenticated,
            ..second_factor_attempt(&ctx.user, client)
        };
        match proof {
            Proof::Password(password) => {
                let wrong = Wrong::PASSWORD.in_field("password");
                let slot = self
                    .check_current_password(&ctx.user, password, attempt(), wrong)
                    .await?;
                self.passed_attempt(slot, false).await?;
            }
            Proof::Code(code) => {
                let user = self.fresh(&ctx.user.id).await?;
                if !user.two_factor_enabled {
                    return Err(AccountsError::TwoFactorNotEnabled {
                        hint: Some("reauthenticate with your password"),
                    });
                }
                let key = crate::security::lockout::account_key(&user.email_key);
                let slot = self.reserve_attempt(&key, &attempt()).await?;
                if !self.spend_totp_code(&user, code).await? {
                    let wrong = Wrong::TOTP_CODE.in_field("code");
                    return Err(self.failed_attempt(slot, attempt(), wrong).await);
                }
                self.passed_attempt(slot, false).await?;
            }
        }
        let now = crate::domain::now();
        if !self.store.mark_reauthenticated(&ctx.session_id, now).await? {
            return Err(AccountsError::Unauthenticated("this session has ended"));
        }
        self.events
            .emit(
                NewEvent::success(EventType::Reauthenticated)
                    .user(&ctx.user)
                    .client(client)
                    .detail("method", proof.method())
                    .detail("session_id", ctx.session_id.as_str()),
            )
            .await;
        Ok(now)
    }
}
