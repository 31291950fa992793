//! What the account rules can refuse, in their own terms; the http layer
//! maps each case to its SPEC status and problem code.

use chrono::{DateTime, Utc};

use crate::domain::PasswordRejection;
use crate::state::StateError;
use crate::store::StoreError;

/// Which secret a client got wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    Password,
    TotpCode,
    BackupCode,
}

/// How to report a wrong secret: its kind and, for a signed-in user's
/// step-up, the request field that held it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wrong {
    pub kind: SecretKind,
    pub field: Option<&'static str>,
}

impl Wrong {
    pub const PASSWORD: Wrong = Wrong {
        kind: SecretKind::Password,
        field: None,
    };
    pub const TOTP_CODE: Wrong = Wrong {
        kind: SecretKind::TotpCode,
        field: None,
    };
    pub const BACKUP_CODE: Wrong = Wrong {
        kind: SecretKind::BackupCode,
        field: None,
    };

    pub fn in_field(self, field: &'static str) -> Wrong {
        Wrong {
            field: Some(field),
            ..self
        }
    }

    /// The SPEC code of this wrong secret.
    pub fn code(self) -> &'static str {
        match self.kind {
            SecretKind::Password => "invalid_credentials",
            SecretKind::TotpCode => "invalid_2fa_code",
            SecretKind::BackupCode => "invalid_backup_code",
        }
    }

    pub fn error(self, attempts_remaining: u32) -> AccountsError {
        AccountsError::WrongSecret {
            wrong: self,
            attempts_remaining,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// A request field is malformed.
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("{field}: {}", rejection.reason)]
    WeakPassword {
        field: &'static str,
        rejection: PasswordRejection,
    },
    #[error("the new password must differ from the current one")]
    SamePassword,
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error("wrong {:?}", wrong.kind)]
    WrongSecret { wrong: Wrong, attempts_remaining: u32 },
    #[error("locked until {until}")]
    Locked { until: DateTime<Utc> },
    #[error("this account has been disabled")]
    Disabled,
    /// No valid credentials (the reason is safe to show).
    #[error("{0}")]
    Unauthenticated(&'static str),
    #[error("this refresh token was already used; the session has been revoked")]
    RefreshTokenReused,
    #[error("the login challenge is expired, already used or invalid; log in again")]
    ChallengeExpired,
    #[error("two-factor authentication is already enabled")]
    TwoFactorAlreadyEnabled,
    #[error("two-factor authentication is not enabled")]
    TwoFactorNotEnabled { hint: Option<&'static str> },
    /// An admin named an account or thing that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (role, or an action on themselves).
    #[error("{0}")]
    Forbidden(String),
    /// The action needs a password or code proven within the last minutes.
    #[error("this action needs a recent authentication: POST /api/v1/auth/reauthenticate with your password or a current 2FA code, then retry")]
    ReauthenticationRequired { authenticated_at: DateTime<Utc> },
    /// A mailed token that is unknown, spent, expired or retired.
    #[error("this link is invalid, expired or already used; ask for a new one")]
    InvalidToken,
    /// Mailed links need an SMTP server.
    #[error("this server cannot send mail (no smtp.host configured); ask an administrator")]
    EmailUnavailable,
    /// `auth.require_email_verification` and the address is not proven.
    #[error("confirm your email address first: open the link mailed to you, or POST /api/v1/auth/verify-email/resend")]
    EmailNotVerified,
    /// Password hashing is at capacity (`auth.hash_max_wait`).
    #[error("the server is busy checking passwords; retry in a moment")]
    Overloaded { retry_after: std::time::Duration },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    /// A fault whose cause stays server-side.
    #[error("{0}")]
    Internal(String),
}

impl AccountsError {
    pub fn invalid(field: &'static str, message: impl std::fmt::Display) -> Self {
        AccountsError::Invalid {
            field,
            message: message.to_string(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        AccountsError::Internal(cause.to_string())
    }

    /// The SPEC's stable code for this refusal (also a security event's
    /// `reason`).
    pub fn code(&self) -> &'static str {
        match self {
            AccountsError::Invalid { .. } => "validation_failed",
            AccountsError::WeakPassword { .. } | AccountsError::SamePassword => "weak_password",
            AccountsError::EmailTaken => "email_taken",
            AccountsError::WrongSecret { wrong, .. } => wrong.code(),
            AccountsError::Locked { .. } => "account_locked",
            AccountsError::Disabled => "account_disabled",
            AccountsError::Unauthenticated(_) => "unauthorized",
            AccountsError::RefreshTokenReused => "refresh_token_reused",
            AccountsError::ChallengeExpired => "challenge_expired",
            AccountsError::TwoFactorAlreadyEnabled => "two_factor_already_enabled",
            AccountsError::TwoFactorNotEnabled { .. } => "two_factor_not_enabled",
            AccountsError::NotFound(_) => "not_found",
            AccountsError::Forbidden(_) => "forbidden",
            AccountsError::ReauthenticationRequired { .. } => "reauthentication_required",
            AccountsError::InvalidToken => "invalid_token",
            AccountsError::EmailUnavailable => "email_unavailable",
            AccountsError::EmailNotVerified => "email_not_verified",
            AccountsError::Overloaded { .. } => "overloaded",
            AccountsError::Store(_) | AccountsError::State(_) | AccountsError::Internal(_) => "internal",
        }
    }
}

impl From<crate::security::password::HashError> for AccountsError {
    fn from(e: crate::security::password::HashError) -> Self {
        use crate::security::password::HashError;
        match e {
            HashError::Overloaded { retry_after } => AccountsError::Overloaded { retry_after },
            e @ HashError::Failed(_) => AccountsError::internal(e),
        }
    }
}

pub type AccountsResult<T> = Result<T, AccountsError>;
