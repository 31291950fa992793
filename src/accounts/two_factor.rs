//! Two-factor flows (SPEC §2): enrolment (enable → verify), disable, and
//! finishing a login with a TOTP or backup code after the password passed.

use axum::http::StatusCode;
use chrono::{Duration, Utc};
use serde::Serialize;

use super::{
    account_disabled, check_current_password, failed_attempt, invalid_credentials, passed_attempt, reserve_attempt,
    start_session, throttle_key, Attempt, AuthContext, AuthSuccess, LoginOutcome, Origin,
};
use crate::app::AppState;
use crate::domain::Secret;
use crate::error::{ApiError, ApiResult};
use crate::security::client::ClientInfo;
use crate::security::events::{EventType, NewEvent};
use crate::security::jwt::TokenType;
use crate::security::totp;
use crate::store::{TotpChange, UserRecord};

pub const CHALLENGE_TTL_SECS: i64 = 300;

#[derive(Debug, Serialize)]
pub struct Enrollment {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_png: String,
    pub qr_svg: String,
}

fn already_enabled() -> ApiError {
    ApiError::conflict(
        "two_factor_already_enabled",
        "two-factor authentication is already enabled",
    )
}

fn not_enabled() -> ApiError {
    ApiError::conflict("two_factor_not_enabled", "two-factor authentication is not enabled")
}

pub fn invalid_code(attempts_remaining: u32) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_2fa_code",
        "the two-factor code is wrong or already used",
    )
    .with("attempts_remaining", attempts_remaining)
}

pub fn invalid_backup_code(attempts_remaining: u32) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_backup_code",
        "the backup code is wrong or already used",
    )
    .with("attempts_remaining", attempts_remaining)
}

fn challenge_expired() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "challenge_expired",
        "the login challenge is expired, already used or invalid; log in again",
    )
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(e)
}

fn now_secs() -> u64 {
    Utc::now().timestamp().max(0) as u64
}

fn secret_of(state: &AppState, user: &UserRecord) -> ApiResult<Vec<u8>> {
    let t = user.totp.as_ref().ok_or_else(not_enabled)?;
    state.totp_box.open(&user.id, &t.sealed_secret).map_err(internal)
}

/// A second-factor (or step-up) attempt by `user`, for lockout and events.
fn second_factor_attempt<'a>(user: &'a UserRecord, client: &'a ClientInfo) -> Attempt<'a> {
    Attempt {
        user: Some(user),
        email: &user.email,
        client,
        event: EventType::TwoFactorFailure,
    }
}

/// The step-up check before a 2FA change: the current password (a stolen
/// access token alone must not turn 2FA on or off).
async fn step_up(
    state: &AppState,
    ctx: &AuthContext,
    password: &Secret,
    client: &ClientInfo,
) -> ApiResult<crate::security::lockout::Reservation> {
    let wrong = |n| invalid_credentials(n).with("field", "password");
    check_current_password(
        state,
        &ctx.user,
        password,
        second_factor_attempt(&ctx.user, client),
        wrong,
    )
    .await
}

/// A wrong code during enrolment or disable: counted toward lockout.
async fn wrong_code(
    state: &AppState,
    ctx: &AuthContext,
    slot: crate::security::lockout::Reservation,
    client: &ClientInfo,
) -> ApiError {
    let attempt = second_factor_attempt(&ctx.user, client);
    failed_attempt(state, slot, attempt, invalid_code).await
}

/// Starts enrolment: a new secret, pending until `verify`. Needs the
/// current password.
pub async fn enable(
    state: &AppState,
    ctx: &AuthContext,
    password: &Secret,
    client: &ClientInfo,
) -> ApiResult<Enrollment> {
    if ctx.user.two_factor_enabled {
        return Err(already_enabled());
    }
    let slot = step_up(state, ctx, password, client).await?;
    passed_attempt(state, slot, false).await?;
    let secret = totp::new_secret();
    let sealed = state.totp_box.seal(&ctx.user.id, &secret).map_err(internal)?;
    match state.store.set_pending_totp(&ctx.user.id, sealed).await? {
        TotpChange::Done => {}
        TotpChange::AlreadyEnabled => return Err(already_enabled()),
        other => return Err(internal(format!("unexpected 2FA state {other:?}"))),
    }
    let b32 = totp::base32(&secret);
    let uri = totp::otpauth_uri(&state.config.auth.issuer, &ctx.user.email, &b32);
    let (qr_svg, qr_png) = totp::qr_codes(&uri).map_err(internal)?;
    Ok(Enrollment {
        secret: b32,
        otpauth_uri: uri,
        qr_png,
        qr_svg,
    })
}

/// Activates the pending secret with a first code; returns the backup codes.
/// A wrong code counts toward lockout.
pub async fn verify(state: &AppState, ctx: &AuthContext, code: &Secret, client: &ClientInfo) -> ApiResult<Vec<String>> {
    let user = fresh(state, &ctx.user.id).await?;
    if user.two_factor_enabled {
        return Err(already_enabled());
    }
    if user.totp.is_none() {
        return Err(not_enabled().with("detail_hint", "call POST /auth/2fa/enable first"));
    }
    let secret = secret_of(state, &user)?;
    let key = crate::security::lockout::account_key(&user.email_key);
    let attempt = second_factor_attempt(&user, client);
    let slot = reserve_attempt(state, &key, &attempt).await?;
    let Some(step) = totp::matching_step(&secret, code.expose(), now_secs()) else {
        return Err(wrong_code(state, ctx, slot, client).await);
    };
    let (codes, hashes) = totp::backup_codes();
    match state.store.activate_totp(&user.id, step, hashes).await? {
        TotpChange::Done => {
            passed_attempt(state, slot, false).await?;
            state
                .events
                .emit(
                    NewEvent::success(EventType::TwoFactorEnabled)
                        .user(&user)
                        .client(client),
                )
                .await;
            Ok(codes)
        }
        TotpChange::AlreadyEnabled => Err(already_enabled()),
        TotpChange::Replayed => Err(wrong_code(state, ctx, slot, client).await),
        _ => Err(not_enabled()),
    }
}

/// Turns 2FA off; needs the current password and a current TOTP code or an
/// unused backup code. Wrong ones count toward lockout.
pub async fn disable(
    state: &AppState,
    ctx: &AuthContext,
    password: &Secret,
    code: &Secret,
    client: &ClientInfo,
) -> ApiResult<()> {
    let user = fresh(state, &ctx.user.id).await?;
    if !user.two_factor_enabled {
        return Err(not_enabled());
    }
    let slot = step_up(state, ctx, password, client).await?;
    let secret = secret_of(state, &user)?;
    let accepted = match totp::matching_step(&secret, code.expose(), now_secs()) {
        Some(step) => state.store.use_totp_step(&user.id, step).await? == TotpChange::Done,
        None => state
            .store
            .use_backup_code(&user.id, &totp::backup_code_hash(code.expose()))
            .await?
            .is_some(),
    };
    if !accepted {
        return Err(wrong_code(state, ctx, slot, client).await);
    }
    passed_attempt(state, slot, true).await?;
    match state.store.disable_totp(&user.id).await? {
        TotpChange::Done => {
            state
                .events
                .emit(
                    NewEvent::success(EventType::TwoFactorDisabled)
                        .user(&user)
                        .client(client),
                )
                .await;
            Ok(())
        }
        _ => Err(not_enabled()),
    }
}

async fn fresh(state: &AppState, id: &str) -> ApiResult<UserRecord> {
    state
        .store
        .user_by_id(id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("account no longer exists"))
}

/// The answer to a correct password when 2FA is on.
pub fn challenge(state: &AppState, user: &UserRecord) -> ApiResult<LoginOutcome> {
    let (token, _) = state
        .jwt
        .issue(
            TokenType::Challenge,
            &user.id,
            None,
            Duration::seconds(CHALLENGE_TTL_SECS),
        )
        .map_err(internal)?;
    Ok(LoginOutcome::Challenge {
        challenge_token: token,
        expires_in: CHALLENGE_TTL_SECS as u64,
    })
}

/// Which second factor the client presents.
pub enum SecondFactor<'a> {
    Totp(&'a Secret),
    Backup(&'a Secret),
}

/// Finishes a login: checks the challenge, the lock, then the code; a wrong
/// code counts as a failed login. Returns the tokens and, for a backup code,
/// how many backup codes remain.
pub async fn finish_login(
    state: &AppState,
    challenge_token: &str,
    factor: SecondFactor<'_>,
    client: &ClientInfo,
    device_token: Option<&str>,
) -> ApiResult<(AuthSuccess, Option<usize>)> {
    let claims = state
        .jwt
        .verify(challenge_token, TokenType::Challenge)
        .ok_or_else(challenge_expired)?;
    if state.store.challenge_spent(&claims.jti).await? {
        return Err(challenge_expired());
    }
    let user = state
        .store
        .user_by_id(&claims.sub)
        .await?
        .ok_or_else(challenge_expired)?;
    if user.disabled {
        return Err(account_disabled());
    }
    if !user.two_factor_enabled {
        return Err(challenge_expired());
    }
    let key = throttle_key(state, &user.email_key, Some(&user), device_token).await?;
    let attempt = second_factor_attempt(&user, client);
    let slot = reserve_attempt(state, &key, &attempt).await?;
    let (accepted, remaining, wrong): (bool, Option<usize>, fn(u32) -> ApiError) = match factor {
        SecondFactor::Totp(code) => {
            let secret = secret_of(state, &user)?;
            let ok = match totp::matching_step(&secret, code.expose(), now_secs()) {
                Some(step) => state.store.use_totp_step(&user.id, step).await? == TotpChange::Done,
                None => false,
            };
            (ok, None, invalid_code)
        }
        SecondFactor::Backup(code) => {
            let left = state
                .store
                .use_backup_code(&user.id, &totp::backup_code_hash(code.expose()))
                .await?;
            (left.is_some(), left, invalid_backup_code)
        }
    };
    if !accepted {
        return Err(failed_attempt(state, slot, attempt, wrong).await);
    }
    if !state.store.consume_challenge(&claims.jti, claims.expires_at()).await? {
        return Err(challenge_expired());
    }
    passed_attempt(state, slot, true).await?;
    if let Some(left) = remaining {
        state
            .events
            .emit(
                NewEvent::success(EventType::BackupCodeUsed)
                    .user(&user)
                    .client(client)
                    .detail("backup_codes_remaining", left),
            )
            .await;
    }
    let out = start_session(state, user, client, Origin::Login).await?;
    Ok((out, remaining))
}
