//! Accounts and sessions (SPEC §2): the rules behind register, login,
//! refresh with rotation and reuse detection, logout and password change.
//! Handlers in `api/` only translate HTTP to these functions and back.

use std::sync::Arc;

use chrono::{Duration, Utc};
use serde::Serialize;

pub mod error;
pub mod profile;
pub mod recovery;
pub mod step_up;
pub mod two_factor;
pub mod verified;

use crate::domain::{new_id, ts, Email, NewPassword, PasswordRejection, Secret};
pub use error::{AccountsError, AccountsResult, SecretKind, Wrong};

use crate::config::AuthConfig;
use crate::security::client::ClientInfo;
use crate::security::events::SecurityLog;
use crate::security::events::{EventType, NewEvent};
use crate::security::jwt::JwtKeys;
use crate::security::jwt::{Claims, TokenType};
use crate::security::lockout::LoginThrottle;
use crate::security::lockout::{Refusal, Reservation};
use crate::security::password::PasswordHasher;
use crate::security::revocation::RevocationList;
use crate::security::token_hash;
use crate::security::totp::SecretBox;
use crate::store::Store;
use crate::store::{
    CreateUserError, RefreshRecord, Role, Rotation, SessionRecord, SignInEvents, StoreResult, UserRecord,
};

/// A user as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
pub struct UserView {
    #[schema(format = Uuid, example = "01937c5e-8a41-7cc2-b7a4-6f1f2d1e9a10")]
    pub id: String,
    #[schema(example = "ann@example.com")]
    pub email: String,
    #[schema(example = "Ann Example")]
    pub full_name: Option<String>,
    pub role: Role,
    pub two_factor_enabled: bool,
    /// Whether the address was proven by a mailed link (SPEC §12).
    pub email_verified: bool,
    #[serde(with = "ts")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-28T09:30:00.123456Z")]
    pub created_at: chrono::DateTime<Utc>,
    #[serde(serialize_with = "ts::option::serialize")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_login_at: Option<chrono::DateTime<Utc>>,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            full_name: u.full_name.clone(),
            role: u.role,
            two_factor_enabled: u.two_factor_enabled,
            email_verified: u.email_verified_at.is_some(),
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

/// A fresh access/refresh pair.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// A JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// Single-use: each refresh returns a new one; presenting a used one
    /// revokes the session.
    pub refresh_token: String,
    #[schema(value_type = String, pattern = "^Bearer$", example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
    /// The session the pair belongs to (CSRF tokens are bound to it).
    #[serde(skip)]
    pub session_id: String,
}

/// The body of a successful register or login.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuthSuccess {
    pub user: UserView,
    #[serde(flatten)]
    pub tokens: TokenPair,
    /// Proves this device on later logins (`X-Device-Token`), exempting it
    /// from locks that other clients cause.
    pub device_token: String,
}

/// An authenticated request's identity.
#[derive(Clone)]
pub struct AuthContext {
    pub user: UserRecord,
    pub session_id: String,
    /// When the user last proved a secret in this session (login or
    /// reauthentication).
    pub authenticated_at: chrono::DateTime<Utc>,
    pub claims: Claims,
    pub token_hash: String,
}

pub fn weak_password(field: &'static str, rejection: PasswordRejection) -> AccountsError {
    AccountsError::WeakPassword { field, rejection }
}

pub fn validate_full_name(name: Option<String>) -> AccountsResult<Option<String>> {
    let Some(name) = name else { return Ok(None) };
    if name.chars().count() > 200 {
        return Err(AccountsError::invalid(
            "full_name",
            "full_name must be at most 200 characters",
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AccountsError::invalid(
            "full_name",
            "full_name must not contain control characters",
        ));
    }
    let name = name.trim();
    Ok((!name.is_empty()).then(|| name.to_string()))
}

/// The account rules: registration, login with lockout and second factor,
/// sessions with rotating refresh tokens, logout, password change. Holds
/// only what those rules use.
pub struct Accounts {
    pub store: Arc<dyn Store>,
    pub config: AuthConfig,
    pub jwt: JwtKeys,
    pub hasher: PasswordHasher,
    pub throttle: LoginThrottle,
    pub revocations: RevocationList,
    pub events: Arc<SecurityLog>,
    /// Seals TOTP secrets at rest (and mailed tokens in the outbox).
    pub totp_box: std::sync::Arc<SecretBox>,
    /// Whether an SMTP server is configured (mailed links are possible).
    pub mail_enabled: bool,
    /// Where mailed links point (`server.public_url`).
    pub public_url: String,
    /// Access tokens checked in full since the store's last write.
    pub verified: verified::VerifiedTokens,
}

/// The lookup key for a login email: no validation, so a malformed address
/// is simply an unknown account (and costs the same dummy hash).
pub fn login_key(email: &str) -> String {
    email.trim_matches(|c: char| c.is_ascii_whitespace()).to_lowercase()
}

/// Why a session is being opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The account was just created: its device is known, not new.
    Registration,
    Login,
}

/// What a correct password leads to.
pub enum LoginOutcome {
    Tokens(AuthSuccess),
    /// 2FA is on: the client must finish with a code.
    Challenge {
        challenge_token: String,
        expires_in: u64,
    },
}

/// Who made a failed attempt, for the security events.
pub struct Attempt<'a> {
    pub user: Option<&'a UserRecord>,
    /// The email as the client typed it.
    pub email: &'a str,
    pub client: &'a ClientInfo,
    pub event: EventType,
}

impl Accounts {
    /// Creates an account (register, or `admin user create`, whose address
    /// the admin vouches for: `verified`).
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        full_name: Option<String>,
        role: Role,
        verified: bool,
    ) -> AccountsResult<UserRecord> {
        let email = Email::parse(email).map_err(|e| AccountsError::invalid("email", e))?;
        let full_name = validate_full_name(full_name)?;
        let password =
            NewPassword::parse(password, &email, full_name.as_deref()).map_err(|r| weak_password("password", r))?;
        let hash = self.hasher.hash(password.secret()).await?;
        let now = Utc::now();
        let user = UserRecord {
            id: new_id(),
            email_key: email.key(),
            email: email.as_str().to_string(),
            full_name,
            role,
            password_hash: hash,
            disabled: false,
            created_at: now,
            last_login_at: None,
            password_changed_at: now,
            two_factor_enabled: false,
            totp: None,
            email_verified_at: verified.then_some(now),
        };
        match self.store.create_user(user.clone()).await {
            Ok(()) => Ok(user),
            Err(CreateUserError::EmailTaken) => Err(AccountsError::EmailTaken),
            Err(CreateUserError::Store(e)) => Err(e.into()),
        }
    }

    pub async fn register(
        &self,
        email: &str,
        password: &str,
        full_name: Option<String>,
        client: &ClientInfo,
    ) -> AccountsResult<AuthSuccess> {
        self.synced(async {
            let user = self.create_user(email, password, full_name, Role::User, false).await?;
            self.events
                .emit(NewEvent::success(EventType::Register).user(&user).client(client))
                .await;
            if self.mail_enabled {
                // The account exists either way; a link can be asked for again.
                if let Err(e) = self.send_verification(&user, client).await {
                    tracing::error!(error = %e, "cannot mail the verification link");
                }
            }
            self.start_session(user, client, Origin::Registration).await
        })
        .await
    }

    /// Runs `work` with the disk waited for once, at its end, instead of
    /// after each write ([`crate::store::sync_once`]): a sign-in writes a
    /// session, a device and its events.
    async fn synced<T>(&self, work: impl std::future::Future<Output = AccountsResult<T>>) -> AccountsResult<T> {
        crate::store::sync_once(&self.store, work).await?
    }

    /// Opens a session for a user whose credentials (and second factor) passed,
    /// and records the device it came from.
    pub async fn start_session(
        &self,
        user: UserRecord,
        client: &ClientInfo,
        origin: Origin,
    ) -> AccountsResult<AuthSuccess> {
        let now = Utc::now();
        let cfg = &self.config;
        let refresh_ttl = Duration::from_std(cfg.refresh_ttl.0).map_err(AccountsError::internal)?;
        let session_id = new_id();
        let (refresh_token, refresh_claims) = self
            .jwt
            .issue(TokenType::Refresh, &user.id, Some(&session_id), refresh_ttl)
            .map_err(AccountsError::internal)?;
        let session = SessionRecord {
            id: session_id.clone(),
            user_id: user.id.clone(),
            created_at: now,
            last_used_at: now,
            ip: client.ip.to_string(),
            user_agent: client.user_agent.clone(),
            expires_at: refresh_claims.expires_at(),
            revoked_at: None,
            reauthenticated_at: None,
        };
        let refresh = RefreshRecord {
            session_id: session_id.clone(),
            user_id: user.id.clone(),
            expires_at: refresh_claims.expires_at(),
            rotated_at: None,
        };
        let device_id = crate::security::devices::fingerprint(&client.user_agent, client.ip);
        let (device_token, device_claims) = self
            .jwt
            .issue_device(&user.id, &device_id, Duration::days(365))
            .map_err(AccountsError::internal)?;
        let device = Self::device_record(&user, client, device_id.clone(), device_claims.jti, now);
        let then: SignInEvents = if origin == Origin::Login {
            let (events, client, session_id) = (self.events.clone(), client.clone(), session_id.clone());
            Box::new(move |user: &UserRecord, new_device: bool| {
                let mut out = events.prepare(
                    &NewEvent::success(EventType::LoginSuccess)
                        .user(user)
                        .client(&client)
                        .detail("session_id", session_id),
                );
                if new_device {
                    out.extend(
                        events.prepare(
                            &NewEvent::success(EventType::NewDeviceLogin)
                                .user(user)
                                .client(&client)
                                .detail("device_id", device_id),
                        ),
                    );
                }
                out
            })
        } else {
            Box::new(|_: &UserRecord, _: bool| Vec::new())
        };
        let (user, new_device) = self
            .store
            .open_session(session, token_hash(&refresh_token), refresh, device, then)
            .await?
            .ok_or_else(|| AccountsError::Unauthenticated("account no longer exists"))?;
        if new_device && origin == Origin::Login {
            // `new_device_login` queued its alert (with SMTP configured).
            self.events.wake_mailer();
        }
        let access_token = self.issue_access(&user.id, &session_id)?;
        Ok(AuthSuccess {
            user: UserView::from(&user),
            tokens: TokenPair {
                access_token,
                refresh_token,
                token_type: "Bearer",
                expires_in: cfg.access_ttl.0.as_secs(),
                session_id,
            },
            device_token,
        })
    }

    /// The device of a successful sign-in, bound to the device token just
    /// issued for it.
    fn device_record(
        user: &UserRecord,
        client: &ClientInfo,
        id: String,
        token_jti: String,
        now: chrono::DateTime<Utc>,
    ) -> crate::store::DeviceRecord {
        use crate::security::devices;
        crate::store::DeviceRecord {
            id,
            user_id: user.id.clone(),
            user_agent: client.user_agent.clone(),
            ip_network: devices::network(client.ip),
            last_ip: client.ip.to_string(),
            first_seen: now,
            last_seen: now,
            token_jtis: vec![token_jti],
        }
    }

    fn issue_access(&self, user_id: &str, session_id: &str) -> AccountsResult<String> {
        let ttl = Duration::from_std(self.config.access_ttl.0).map_err(AccountsError::internal)?;
        self.jwt
            .issue(TokenType::Access, user_id, Some(session_id), ttl)
            .map(|(t, _)| t)
            .map_err(AccountsError::internal)
    }

    /// Exchanges a refresh token for a new pair; a retired token revokes the
    /// whole session (theft detection).
    pub async fn refresh(&self, refresh_token: &str, client: &ClientInfo) -> AccountsResult<TokenPair> {
        self.synced(async {
            let invalid = || AccountsError::Unauthenticated("the refresh token is invalid or expired");
            let claims = self.jwt.verify(refresh_token, TokenType::Refresh).ok_or_else(invalid)?;
            let session_id = claims.sid.clone().ok_or_else(invalid)?;
            let refresh_ttl = Duration::from_std(self.config.refresh_ttl.0).map_err(AccountsError::internal)?;
            let (new_refresh, new_claims) = self
                .jwt
                .issue(TokenType::Refresh, &claims.sub, Some(&session_id), refresh_ttl)
                .map_err(AccountsError::internal)?;
            let rotation = self
                .store
                .rotate_refresh(
                    &token_hash(refresh_token),
                    token_hash(&new_refresh),
                    new_claims.expires_at(),
                    Utc::now(),
                )
                .await?;
            match rotation {
                Rotation::Rotated(session) => {
                    let user = self.store.user_by_id(&session.user_id).await?.ok_or_else(invalid)?;
                    if user.disabled {
                        self.store.revoke_session(&session.id, Utc::now()).await?;
                        return Err(AccountsError::Disabled);
                    }
                    self.events
                        .emit(
                            NewEvent::success(EventType::TokenRefreshed)
                                .user(&user)
                                .client(client)
                                .detail("session_id", session.id.as_str()),
                        )
                        .await;
                    Ok(TokenPair {
                        access_token: self.issue_access(&user.id, &session.id)?,
                        refresh_token: new_refresh,
                        token_type: "Bearer",
                        expires_in: self.config.access_ttl.0.as_secs(),
                        session_id: session.id,
                    })
                }
                Rotation::Reused { session_id, user_id } => {
                    let mut ev = NewEvent::failure(EventType::RefreshTokenReused)
                        .user_id(&user_id)
                        .client(client)
                        .detail("session_id", session_id.as_str())
                        .detail("action", "session revoked");
                    if let Some(u) = self.store.user_by_id(&user_id).await? {
                        ev = ev.user(&u);
                    }
                    self.events.emit(ev).await;
                    Err(AccountsError::RefreshTokenReused)
                }
                Rotation::Invalid => Err(invalid()),
            }
        })
        .await
    }

    /// Resolves an access token to its user and live session.
    pub async fn authenticate(&self, token: &str) -> AccountsResult<Arc<AuthContext>> {
        let unauthorized = || AccountsError::Unauthenticated("missing, invalid, expired or revoked access token");
        let hash = token_hash(token);
        if self.revocations.is_revoked(&hash).await? {
            return Err(unauthorized());
        }
        // Read before the checks below, so a write committed while they run
        // makes what they find unservable from the cache.
        let epoch = self.store.write_epoch();
        if let Some(ctx) = epoch.and_then(|e| self.verified.get(&hash, e, Utc::now())) {
            return Ok(ctx);
        }
        let claims = self.jwt.verify(token, TokenType::Access).ok_or_else(unauthorized)?;
        let session_id = claims.sid.clone().ok_or_else(unauthorized)?;
        let (session, user) = self
            .store
            .session_with_user(&session_id)
            .await?
            .ok_or_else(unauthorized)?;
        if !session.is_active(Utc::now()) || session.user_id != claims.sub || user.disabled {
            return Err(unauthorized());
        }
        let ctx = Arc::new(AuthContext {
            user,
            authenticated_at: session.authenticated_at(),
            session_id,
            claims,
            token_hash: hash,
        });
        if let Some(epoch) = epoch {
            self.verified.insert(epoch, session.expires_at, &ctx);
        }
        Ok(ctx)
    }

    /// Ends the caller's session and revokes the presented access token.
    pub async fn logout(&self, ctx: &AuthContext, client: &ClientInfo) -> AccountsResult<()> {
        self.synced(async {
            self.revocations
                .revoke(&ctx.token_hash, ctx.claims.expires_at())
                .await?;
            self.store.revoke_session(&ctx.session_id, Utc::now()).await?;
            self.events
                .emit(
                    NewEvent::success(EventType::Logout)
                        .user(&ctx.user)
                        .client(client)
                        .detail("session_id", ctx.session_id.as_str()),
                )
                .await;
            Ok(())
        })
        .await
    }

    /// Ends every session of the caller; returns how many ended.
    pub async fn logout_all(&self, ctx: &AuthContext, client: &ClientInfo) -> AccountsResult<usize> {
        self.revocations
            .revoke(&ctx.token_hash, ctx.claims.expires_at())
            .await?;
        let ended = self.store.revoke_user_sessions(&ctx.user.id, None, Utc::now()).await?;
        self.events
            .emit(
                NewEvent::success(EventType::Logout)
                    .user(&ctx.user)
                    .client(client)
                    .detail("all_sessions", true)
                    .detail("sessions_ended", ended.len()),
            )
            .await;
        Ok(ended.len())
    }

    /// Changes the password and ends every other session of the user.
    pub async fn change_password(
        &self,
        ctx: &AuthContext,
        current: &Secret,
        new: &str,
        client: &ClientInfo,
    ) -> AccountsResult<usize> {
        let attempt = Attempt {
            user: Some(&ctx.user),
            email: &ctx.user.email,
            client,
            event: EventType::LoginFailure,
        };
        let wrong = Wrong::PASSWORD.in_field("current_password");
        let slot = self.check_current_password(&ctx.user, current, attempt, wrong).await?;
        self.passed_attempt(slot, false).await?;
        let email = Email::parse(&ctx.user.email).map_err(AccountsError::internal)?;
        let new = NewPassword::parse(new, &email, ctx.user.full_name.as_deref())
            .map_err(|r| weak_password("new_password", r))?;
        if self.hasher.verify(new.secret(), Some(&ctx.user.password_hash)).await? {
            return Err(AccountsError::SamePassword);
        }
        let hash = self.hasher.hash(new.secret()).await?;
        self.store
            .set_password_hash(&ctx.user.id, hash, Utc::now())
            .await?
            .ok_or_else(|| AccountsError::Unauthenticated("account no longer exists"))?;
        let ended = self
            .store
            .revoke_user_sessions(&ctx.user.id, Some(&ctx.session_id), Utc::now())
            .await?;
        self.events
            .emit(
                NewEvent::success(EventType::PasswordChanged)
                    .user(&ctx.user)
                    .client(client)
                    .detail("other_sessions_ended", ended.len()),
            )
            .await;
        Ok(ended.len())
    }

    /// The throttle key for a login: the device token's own key when the client
    /// presents a live device token of this account (signed, unexpired, and
    /// still bound to its device), else the account's.
    pub async fn throttle_key(
        &self,
        email_key: &str,
        user: Option<&UserRecord>,
        device_token: Option<&str>,
    ) -> StoreResult<String> {
        use crate::security::lockout::{account_key, device_key};
        let claims = device_token
            .and_then(|t| self.jwt.verify(t, TokenType::Device))
            .filter(|c| user.is_some_and(|u| u.id == c.sub));
        if let Some(c) = claims {
            if let Some(did) = &c.did {
                let bound = self.store.device(&c.sub, did).await?;
                if bound.is_some_and(|d| d.speaks_for(&c.jti)) {
                    return Ok(device_key(&c.jti));
                }
            }
        }
        Ok(account_key(email_key))
    }

    /// Checks a signed-in user's current password before a sensitive change,
    /// counted toward the account's lockout like a login (a stolen access token
    /// alone must not be enough). Returns the still-open attempt, so a check
    /// that follows (a 2FA code) is settled with it.
    pub async fn check_current_password(
        &self,
        user: &UserRecord,
        password: &Secret,
        attempt: Attempt<'_>,
        wrong: Wrong,
    ) -> AccountsResult<Reservation> {
        let key = crate::security::lockout::account_key(&user.email_key);
        let slot = self.reserve_attempt(&key, &attempt).await?;
        if self.hasher.verify(password, Some(&user.password_hash)).await? {
            Ok(slot)
        } else {
            Err(self.failed_attempt(slot, attempt, wrong).await)
        }
    }

    /// Reserves one attempt under `key` before anything is verified, or answers
    /// `423` (recording the refusal) when the key is locked or as many attempts
    /// as may still fail are already being checked.
    pub async fn reserve_attempt(&self, key: &str, attempt: &Attempt<'_>) -> AccountsResult<Reservation> {
        let until = match self.throttle.reserve(key).await? {
            Ok(slot) => return Ok(slot),
            Err(Refusal::Locked(until)) => until,
            Err(Refusal::Saturated) => Utc::now() + Duration::seconds(1),
        };
        self.events
            .emit(
                NewEvent::failure(attempt.event)
                    .who(attempt.user, attempt.email)
                    .client(attempt.client)
                    .detail("reason", "account_locked"),
            )
            .await;
        Err(AccountsError::Locked { until })
    }

    /// Settles a reserved attempt that passed; `423` if failures it raced locked
    /// the key meanwhile (the lock stands).
    pub async fn passed_attempt(&self, slot: Reservation, forget_failures: bool) -> AccountsResult<()> {
        match self.throttle.succeed(slot, forget_failures).await? {
            Ok(()) => Ok(()),
            Err(until) => Err(AccountsError::Locked { until }),
        }
    }

    /// Records a failed attempt (and its security events) and returns the error
    /// to answer: `wrong(attempts_remaining)`, or `423` once the key is locked.
    pub async fn failed_attempt(&self, slot: Reservation, attempt: Attempt<'_>, wrong: Wrong) -> AccountsError {
        use crate::security::lockout::Failure;
        let Attempt {
            user,
            email,
            client,
            event,
        } = attempt;
        let with_who = |ev: NewEvent| ev.who(user, email).client(client);
        let scope = if slot.key().starts_with("device:") {
            "device"
        } else {
            "account"
        };
        let outcome = self
            .throttle
            .fail(slot, user.map(|u| u.id.clone()), &client.ip.to_string())
            .await;
        let reason = match &outcome {
            Ok(Failure::Remaining(_)) => wrong.code(),
            Ok(Failure::Locked { .. }) => "account_locked",
            Err(_) => "internal",
        };
        self.events
            .emit(with_who(NewEvent::failure(event)).detail("reason", reason))
            .await;
        match outcome {
            Ok(Failure::Remaining(n)) => wrong.error(n),
            Ok(Failure::Locked { until, newly }) => {
                if newly {
                    self.events
                        .emit(
                            with_who(NewEvent::success(EventType::AccountLocked))
                                .detail("locked_until", crate::domain::rfc3339(until))
                                .detail("scope", scope),
                        )
                        .await;
                }
                AccountsError::Locked { until }
            }
            Err(e) => e.into(),
        }
    }

    /// The account under a [`login_key`]; a key longer than any address is
    /// simply no account (and is not looked up).
    async fn account_at(&self, key: &str) -> AccountsResult<Option<UserRecord>> {
        if key.len() > 254 {
            return Ok(None);
        }
        Ok(self.store.user_by_email(key).await?)
    }

    pub async fn login(
        &self,
        email: &str,
        password: &Secret,
        client: &ClientInfo,
        device_token: Option<&str>,
    ) -> AccountsResult<LoginOutcome> {
        self.synced(async {
            let email_key = login_key(email);
            let user = self.account_at(&email_key).await?;
            let key = self.throttle_key(&email_key, user.as_ref(), device_token).await?;
            let attempt = Attempt {
                user: user.as_ref(),
                email,
                client,
                event: EventType::LoginFailure,
            };
            let slot = self.reserve_attempt(&key, &attempt).await?;
            let ok = self
                .hasher
                .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
                .await?;
            let user = match user {
                Some(u) if ok => u,
                _ => return Err(self.failed_attempt(slot, attempt, Wrong::PASSWORD).await),
            };
            if user.disabled {
                self.events
                    .emit(
                        NewEvent::failure(EventType::LoginFailure)
                            .user(&user)
                            .client(client)
                            .detail("reason", "account_disabled"),
                    )
                    .await;
                return Err(AccountsError::Disabled);
            }
            // The password alone clears nothing when 2FA is on: the failure count
            // stays until the second factor succeeds too.
            self.passed_attempt(slot, !user.two_factor_enabled).await?;
            if user.two_factor_enabled {
                self.events
                    .emit(
                        NewEvent::success(EventType::TwoFactorChallenge)
                            .user(&user)
                            .client(client),
                    )
                    .await;
                return self.challenge(&user);
            }
            self.start_session(user, client, Origin::Login)
                .await
                .map(LoginOutcome::Tokens)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::state::memory::MemoryState;
    use crate::store::redb::RedbStore;

    const PASSWORD: &str = "violet-anchor-tundra-41";

    async fn accounts(dir: &std::path::Path) -> Accounts {
        let store: Arc<dyn Store> = Arc::new(RedbStore::open(dir).unwrap());
        let state: Arc<dyn crate::state::State> =
            Arc::new(MemoryState::new(store.clone(), std::time::Duration::from_secs(60)));
        let config = AuthConfig {
            lockout_threshold: 3,
            ..AuthConfig::default()
        };
        let rt_state = state.clone();
        Accounts {
            events: Arc::new(
                SecurityLog::open(
                    crate::security::events::LogSetup {
                        dir: dir.join("logs"),
                        retention_days: 30,
                        key: crate::security::audit::AuditKey::derive(b"test"),
                        chain: "main".into(),
                    },
                    store.clone(),
                    None,
                )
                .await,
            ),
            throttle: LoginThrottle::new(rt_state, &config),
            revocations: RevocationList::load(store.clone(), state).await.unwrap(),
            jwt: JwtKeys::new(&[7u8; 32], "fortfolio-test"),
            hasher: PasswordHasher::new(
                crate::config::HashPriority::Normal,
                std::time::Duration::from_secs(2),
                false,
            )
            .unwrap(),
            totp_box: Arc::new(SecretBox::new(&[9u8; 32]).unwrap()),
            mail_enabled: false,
            public_url: "https://127.0.0.1:8443".into(),
            verified: verified::VerifiedTokens::new(1000, std::time::Duration::from_secs(900)),
            config,
            store,
        }
    }

    fn client() -> ClientInfo {
        ClientInfo {
            ip: std::net::IpAddr::from([192, 0, 2, 7]),
            user_agent: "unit".into(),
            request_id: None,
        }
    }

    #[tokio::test]
    async fn wrong_passwords_count_down_then_lock() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path()).await;
        a.register("ann@example.com", PASSWORD, None, &client()).await.unwrap();
        let wrong = Secret::new("not-the-password");
        for left in [2, 1] {
            match a.login("ann@example.com", &wrong, &client(), None).await {
                Err(e @ AccountsError::WrongSecret { .. }) => {
                    assert_eq!(e.code(), "invalid_credentials");
                    let AccountsError::WrongSecret { attempts_remaining, .. } = e else {
                        unreachable!()
                    };
                    assert_eq!(attempts_remaining, left);
                }
                other => panic!("expected a wrong secret, got {:?}", other.err()),
            }
        }
        assert!(matches!(
            a.login("ann@example.com", &wrong, &client(), None).await,
            Err(AccountsError::Locked { .. })
        ));
        let right = Secret::new(PASSWORD);
        assert!(
            matches!(
                a.login("ann@example.com", &right, &client(), None).await,
                Err(AccountsError::Locked { .. })
            ),
            "the lock stands against the right password"
        );
        // An unknown email costs a failure too, with no hint it is unknown.
        assert!(matches!(
            a.login("nobody@example.com", &wrong, &client(), None).await,
            Err(AccountsError::WrongSecret { .. })
        ));
    }

    #[tokio::test]
    async fn a_refresh_token_works_once_then_revokes_its_session() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path()).await;
        let first = a.register("bo@example.com", PASSWORD, None, &client()).await.unwrap();
        let second = a.refresh(&first.tokens.refresh_token, &client()).await.unwrap();
        assert!(matches!(
            a.refresh(&first.tokens.refresh_token, &client()).await,
            Err(AccountsError::RefreshTokenReused)
        ));
        assert!(
            matches!(
                a.authenticate(&second.access_token).await,
                Err(AccountsError::Unauthenticated(_))
            ),
            "reuse ends the session the thief shares"
        );
    }

    #[tokio::test]
    async fn logout_revokes_the_access_token_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path()).await;
        let s = a.register("cy@example.com", PASSWORD, None, &client()).await.unwrap();
        let ctx = a.authenticate(&s.tokens.access_token).await.unwrap();
        a.logout(&ctx, &client()).await.unwrap();
        assert!(a.authenticate(&s.tokens.access_token).await.is_err());
    }

    /// A sign-in is one commit: its session, device and events together,
    /// durable, with nothing left for its scope to sync after it.
    #[tokio::test]
    async fn a_sign_in_is_one_commit_with_its_events() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path()).await;
        a.register("fay@example.com", PASSWORD, None, &client()).await.unwrap();
        let before = a.store.write_epoch().unwrap();
        let outcome = a
            .login("fay@example.com", &Secret::new(PASSWORD), &client(), None)
            .await
            .unwrap();
        let LoginOutcome::Tokens(signed_in) = outcome else {
            panic!("no second factor here")
        };
        assert_eq!(a.store.write_epoch().unwrap(), before + 1, "one commit");
        let events = a
            .store
            .events(crate::store::EventFilter {
                user_id: Some(signed_in.user.id.clone()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
        assert_eq!(
            kinds,
            ["login_success", "register"],
            "newest first; the device is known"
        );
        let ctx = a.authenticate(&signed_in.tokens.access_token).await.unwrap();
        assert_eq!(events[0].details["session_id"], ctx.session_id.as_str());
    }

    /// A token served from the verified cache is refused as soon as any
    /// write changes what a full check would find, even one that bypasses
    /// the revocation list.
    #[tokio::test]
    async fn a_cached_token_check_stays_exact() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path()).await;
        let s = a.register("dee@example.com", PASSWORD, None, &client()).await.unwrap();
        let token = &s.tokens.access_token;
        let ctx = a.authenticate(token).await.unwrap();
        let epoch = a.store.write_epoch().unwrap();
        assert!(a.verified.get(&ctx.token_hash, epoch, Utc::now()).is_some(), "cached");
        assert_eq!(a.authenticate(token).await.unwrap().user.id, ctx.user.id);
        a.store.set_disabled(&ctx.user.id, true).await.unwrap();
        assert!(a
            .verified
            .get(&ctx.token_hash, a.store.write_epoch().unwrap(), Utc::now())
            .is_none());
        assert!(a.authenticate(token).await.is_err(), "a disabled user");
        a.store.set_disabled(&ctx.user.id, false).await.unwrap();
        a.authenticate(token).await.unwrap();
        a.store.revoke_session(&ctx.session_id, Utc::now()).await.unwrap();
        assert!(a.authenticate(token).await.is_err(), "a revoked session");
        // Past the token's expiry the entry is not served, whatever the epoch.
        let s = a.register("eve@example.com", PASSWORD, None, &client()).await.unwrap();
        let ctx = a.authenticate(&s.tokens.access_token).await.unwrap();
        let later = ctx.claims.expires_at() + chrono::Duration::seconds(1);
        assert!(a
            .verified
            .get(&ctx.token_hash, a.store.write_epoch().unwrap(), later)
            .is_none());
    }

    /// The caller's `AuthContext` holds the user as it was when the request
    /// was authenticated; changing the password or profile from it must not
    /// bring back a backup code spent since.
    #[tokio::test]
    async fn changes_from_a_stale_context_keep_a_spent_backup_code_spent() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path()).await;
        let s = a.register("di@example.com", PASSWORD, None, &client()).await.unwrap();
        let uid = s.user.id.clone();
        a.store.set_pending_totp(&uid, "sealed".into()).await.unwrap();
        let codes = vec!["h1".to_string(), "h2".to_string()];
        a.store.activate_totp(&uid, 1, codes).await.unwrap();
        let stale = a.authenticate(&s.tokens.access_token).await.unwrap();
        assert_eq!(a.store.use_backup_code(&uid, "h1").await.unwrap(), Some(1));
        let current = Secret::new(PASSWORD);
        a.change_password(&stale, &current, "quartz-meadow-lantern-77", &client())
            .await
            .unwrap();
        a.update_profile(&uid, Some(Some("Di".into()))).await.unwrap();
        let now = a.store.user_by_id(&uid).await.unwrap().unwrap();
        assert_eq!(now.totp.unwrap().backup_codes, vec!["h2".to_string()]);
        assert_eq!(now.full_name.as_deref(), Some("Di"));
    }

    #[tokio::test]
    async fn weak_and_reused_passwords_name_their_field() {
        let dir = tempfile::tempdir().unwrap();
        let a = accounts(dir.path()).await;
        match a.register("ed@example.com", "password", None, &client()).await {
            Err(AccountsError::WeakPassword { field: "password", .. }) => {}
            other => panic!("expected a weak password, got {:?}", other.err()),
        }
        let s = a.register("ed@example.com", PASSWORD, None, &client()).await.unwrap();
        let ctx = a.authenticate(&s.tokens.access_token).await.unwrap();
        let current = Secret::new(PASSWORD);
        assert!(matches!(
            a.change_password(&ctx, &current, PASSWORD, &client()).await,
            Err(AccountsError::SamePassword)
        ));
        assert!(matches!(
            a.register("ed@example.com", PASSWORD, None, &client()).await,
            Err(AccountsError::EmailTaken)
        ));
    }
}
