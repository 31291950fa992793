//! The account lifecycle (SPEC §12): email verification, password reset,
//! email change. Every route is in the `recovery` rate-limit group.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Limits;
use crate::accounts::AccountsError;
use crate::domain::Secret;
use crate::http::error::ApiResult;
use crate::http::extract::{AppJson, AuthUser};
use crate::http::state::AppState;
use crate::security::client::ClientInfo;
use crate::security::rate_limit::Group;

pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(verify_email))
        .routes(routes!(resend_verification))
        .routes(routes!(request_reset))
        .routes(routes!(confirm_reset))
        .routes(routes!(change_email))
        .routes(routes!(confirm_email))
        .routes(routes!(cancel_email_change));
    limits.apply(Group::Recovery, routes)
}

/// A mailed token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = MailedToken)]
struct TokenBody {
    /// The token at the end of the mailed link.
    #[schema(value_type = String, format = Password, example = "q3Jx0m6Yb1c2-rWc8E5w0nq9bS0rX1QyP4n5dG7hL2k")]
    token: Secret,
}

/// An address to mail a link to.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EmailOnly)]
struct EmailBody {
    /// Any string: an address that is no account's is answered the same.
    #[schema(example = "ann@example.com")]
    email: String,
}

/// The answer that says nothing about whether an account exists.
#[derive(Serialize, ToSchema)]
struct Accepted {
    /// Always `true`.
    accepted: bool,
    /// What happens next.
    detail: &'static str,
}

fn accepted(detail: &'static str) -> Response {
    (StatusCode::ACCEPTED, Json(Accepted { accepted: true, detail })).into_response()
}

/// Answers `202` at once (or `503` without SMTP), and runs the mail work
/// after the answer: it takes the same time whether or not the address is
/// an account's.
fn after_answer<F>(mail_enabled: bool, what: &'static str, detail: &'static str, work: F) -> ApiResult<Response>
where
    F: std::future::Future<Output = Result<(), AccountsError>> + Send + 'static,
{
    if !mail_enabled {
        return Err(AccountsError::EmailUnavailable.into());
    }
    tokio::spawn(async move {
        if let Err(e) = work.await {
            tracing::error!(error = %e, what, "mail work failed");
        }
    });
    Ok(accepted(detail))
}

problems!(TokenProblems {
    400 => ["invalid_token"],
});

problems!(MailProblems {
    503 => ["email_unavailable"],
});

#[derive(Serialize, ToSchema)]
struct Verified {
    #[schema(example = "ann@example.com")]
    email: String,
    /// Always `true`.
    email_verified: bool,
}

/// Prove an email address
///
/// The token of the link mailed at registration (or by resend), valid 24 h
/// and once.
#[utoipa::path(
    post,
    path = "/auth/verify-email",
    operation_id = "verifyEmail",
    tag = "recovery",
    request_body = TokenBody,
    responses((status = 200, description = "The address is proven", body = Verified), TokenProblems),
)]
async fn verify_email(
    State(state): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<TokenBody>,
) -> ApiResult<Json<Verified>> {
    let user = state.accounts.verify_email(body.token.expose(), &client).await?;
    Ok(Json(Verified {
        email: user.email,
        email_verified: true,
    }))
}

/// Mail a new verification link
///
/// Answers `202` at once, the same for every address; an unverified,
/// enabled account at that address gets a new link (the older one stops
/// working).
#[utoipa::path(
    post,
    path = "/auth/verify-email/resend",
    operation_id = "resendVerification",
    tag = "recovery",
    request_body(content = EmailBody, example = json!({"email": "ann@example.com"})),
    responses((status = 202, description = "Accepted (whether or not the address is an account's)", body = Accepted), MailProblems),
)]
async fn resend_verification(
    State(state): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<EmailBody>,
) -> ApiResult<Response> {
    let detail = "if an unverified account has this address, a new link is on its way";
    after_answer(state.accounts.mail_enabled, "verification resend", detail, async move {
        state.accounts.resend_verification(&body.email, &client).await
    })
}

/// Ask for a password reset link
///
/// Answers `202` at once with the same body for every address (the work
/// runs after the answer). An enabled account at that address gets a link
/// valid 30 minutes; a newer request retires older links.
#[utoipa::path(
    post,
    path = "/auth/password-reset/request",
    operation_id = "requestPasswordReset",
    tag = "recovery",
    request_body(content = EmailBody, example = json!({"email": "ann@example.com"})),
    responses((status = 202, description = "Accepted (whether or not the address is an account's)", body = Accepted), MailProblems),
)]
async fn request_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<EmailBody>,
) -> ApiResult<Response> {
    let detail = "if an account has this address, a reset link is on its way";
    after_answer(
        state.accounts.mail_enabled,
        "password reset request",
        detail,
        async move { state.accounts.request_password_reset(&body.email, &client).await },
    )
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordResetConfirm)]
struct ResetBody {
    #[schema(value_type = String, format = Password)]
    token: Secret,
    #[schema(value_type = crate::domain::schema::NewPassword)]
    new_password: Secret,
    /// With 2FA on: a current TOTP code or an unused backup code.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password, example = "123456")]
    code: Option<Secret>,
}

#[derive(Serialize, ToSchema)]
struct ResetDone {
    /// Always `true`.
    password_reset: bool,
    /// Sessions ended (all of them).
    sessions_ended: usize,
}

problems!(ResetProblems {
    400 => ["invalid_token"],
    401 => ["invalid_2fa_code"],
    403 => ["account_disabled"],
    422 => ["weak_password"],
    423 => ["account_locked"],
});

/// Set a new password from a reset link
///
/// The password policy of register applies. With 2FA on, `code` (TOTP or
/// backup code) is required: a reset never bypasses 2FA, and wrong codes
/// count toward a lock. Ends every session, clears every lock of the
/// account, and mails an alert. A refused password or code leaves the link
/// usable.
#[utoipa::path(
    post,
    path = "/auth/password-reset/confirm",
    operation_id = "confirmPasswordReset",
    tag = "recovery",
    request_body(content = ResetBody, example = json!({"token": "q3Jx0m6Yb1c2-rWc8E5w0nq9bS0rX1QyP4n5dG7hL2k", "new_password": "correct horse battery staple 42"})),
    responses((status = 200, description = "The new password is set", body = ResetDone), ResetProblems),
)]
async fn confirm_reset(
    State(state): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<ResetBody>,
) -> ApiResult<Json<ResetDone>> {
    let ended = state
        .accounts
        .confirm_password_reset(
            body.token.expose(),
            body.new_password.expose(),
            body.code.as_ref(),
            &client,
        )
        .await?;
    Ok(Json(ResetDone {
        password_reset: true,
        sessions_ended: ended,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EmailChangeRequest)]
struct ChangeEmailBody {
    #[schema(value_type = crate::domain::schema::EmailAddress)]
    new_email: String,
    /// The current password.
    #[schema(value_type = String, format = Password)]
    password: Secret,
}

problems!(ChangeEmailProblems {
    401 => ["invalid_credentials"],
    422 => ["validation_failed"],
    423 => ["account_locked"],
    503 => ["email_unavailable"],
});

/// Change the account's email address
///
/// Needs the current password. The new address gets a confirmation link
/// (24 h); the change takes effect only when it is opened. The current
/// address gets an alert with a link that cancels the change for 24 h (even
/// after it was confirmed). The answer is the same when another account
/// has the new address (it then gets no link).
#[utoipa::path(
    post,
    path = "/me/email",
    operation_id = "changeEmail",
    tag = "recovery",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = ChangeEmailBody, example = json!({"new_email": "ann@new.example", "password": "correct horse battery staple 42"})),
    responses((status = 202, description = "Links mailed; nothing changed yet", body = Accepted), ChangeEmailProblems),
)]
async fn change_email(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppJson(body): AppJson<ChangeEmailBody>,
) -> ApiResult<Response> {
    state
        .accounts
        .request_email_change(&auth.ctx, &body.new_email, &body.password, &client)
        .await?;
    Ok(accepted(
        "open the link mailed to the new address to confirm it; until then the current address stays",
    ))
}

problems!(ConfirmEmailProblems {
    400 => ["invalid_token"],
    409 => ["email_taken"],
});

/// Confirm a new email address
///
/// The token mailed to the new address; the account moves to it (and it
/// counts as verified). The old address gets an alert.
#[utoipa::path(
    post,
    path = "/auth/confirm-email",
    operation_id = "confirmEmailChange",
    tag = "recovery",
    request_body = TokenBody,
    responses((status = 200, description = "The account's address changed", body = Verified), ConfirmEmailProblems),
)]
async fn confirm_email(
    State(state): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<TokenBody>,
) -> ApiResult<Json<Verified>> {
    let user = state
        .accounts
        .confirm_email_change(body.token.expose(), &client)
        .await?;
    Ok(Json(Verified {
        email: user.email,
        email_verified: true,
    }))
}

#[derive(Serialize, ToSchema)]
struct Cancelled {
    /// Always `true`.
    cancelled: bool,
    /// The account's address now.
    #[schema(example = "ann@example.com")]
    email: String,
}

/// Cancel an email change
///
/// The token of the alert mailed to the old address: retires a pending
/// change, or moves a confirmed one back, within 24 h; ends every session.
#[utoipa::path(
    post,
    path = "/auth/cancel-email-change",
    operation_id = "cancelEmailChange",
    tag = "recovery",
    request_body = TokenBody,
    responses((status = 200, description = "Cancelled", body = Cancelled), ConfirmEmailProblems),
)]
async fn cancel_email_change(
    State(state): State<AppState>,
    client: ClientInfo,
    AppJson(body): AppJson<TokenBody>,
) -> ApiResult<Json<Cancelled>> {
    let user = state.accounts.cancel_email_change(body.token.expose(), &client).await?;
    Ok(Json(Cancelled {
        cancelled: true,
        email: user.email,
    }))
}
