//! `/auth/2fa/*` and `/auth/login/2fa`: TOTP enrolment and the second step
//! of a login.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::auth::{auth_response, device_token, DeviceTokenHeader};
use super::Limits;
use crate::accounts::two_factor::{Enrollment, SecondFactor};
use crate::accounts::AuthSuccess;
use crate::domain::Secret;
use crate::http::error::ApiResult;
use crate::http::extract::{AppJson, AuthUser};
use crate::http::state::AppState;
use crate::security::client::ClientInfo;
use crate::security::rate_limit::Group;

pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    let manage = OpenApiRouter::new()
        .routes(routes!(enable))
        .routes(routes!(verify))
        .routes(routes!(disable));
    let login = OpenApiRouter::new()
        .routes(routes!(login_totp))
        .routes(routes!(login_backup));
    OpenApiRouter::new()
        .merge(limits.apply(Group::TwoFactor, manage))
        .merge(limits.apply(Group::Login, login))
}

/// A TOTP code: 6 digits.
const TOTP_EXAMPLE: &str = "123456";

problems!(EnableProblems {
    401 => ["invalid_credentials"],
    409 => ["two_factor_already_enabled"],
    423 => ["account_locked"],
});

problems!(VerifyProblems {
    401 => ["invalid_2fa_code"],
    409 => ["two_factor_already_enabled", "two_factor_not_enabled"],
    423 => ["account_locked"],
});

problems!(DisableProblems {
    401 => ["invalid_credentials", "invalid_2fa_code"],
    409 => ["two_factor_not_enabled"],
    423 => ["account_locked"],
});

problems!(TotpLoginProblems {
    401 => ["invalid_2fa_code", "challenge_expired"],
    403 => ["account_disabled"],
    423 => ["account_locked"],
});

problems!(BackupLoginProblems {
    401 => ["invalid_backup_code", "challenge_expired"],
    403 => ["account_disabled"],
    423 => ["account_locked"],
});

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordOnly)]
struct EnableBody {
    #[schema(value_type = String, format = Password)]
    password: Secret,
}

/// Start TOTP enrolment
///
/// Needs the current password. Answers the secret as text, URI and QR
/// code; 2FA is on only after `POST /auth/2fa/verify` with a first code.
#[utoipa::path(
    post,
    path = "/auth/2fa/enable",
    operation_id = "enableTwoFactor",
    tag = "two-factor",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = EnableBody, example = json!({"password": "correct horse battery staple 42"})),
    responses((status = 200, description = "The secret to enrol", body = Enrollment), EnableProblems),
)]
async fn enable(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppJson(b): AppJson<EnableBody>,
) -> ApiResult<Json<Enrollment>> {
    Ok(Json(state.accounts.enable(&auth.ctx, &b.password, &client).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Code)]
struct CodeBody {
    /// The authenticator's current code.
    #[schema(value_type = String, example = "123456")]
    code: Secret,
}

/// Turn TOTP on with a first code
///
/// Answers the 10 single-use backup codes, shown only this once.
#[utoipa::path(
    post,
    path = "/auth/2fa/verify",
    operation_id = "verifyTwoFactor",
    tag = "two-factor",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = CodeBody, example = json!({"code": TOTP_EXAMPLE})),
    responses((status = 200, description = "2FA is on", body = TwoFactorState), VerifyProblems),
)]
async fn verify(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppJson(b): AppJson<CodeBody>,
) -> ApiResult<Json<TwoFactorState>> {
    let codes = state.accounts.verify(&auth.ctx, &b.code, &client).await?;
    Ok(Json(TwoFactorState {
        two_factor_enabled: true,
        backup_codes: Some(codes),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordAndCode)]
struct DisableBody {
    #[schema(value_type = String, format = Password)]
    password: Secret,
    /// A TOTP code or an unused backup code.
    #[schema(value_type = String)]
    code: Secret,
}

/// Turn TOTP off
///
/// Needs the password and a TOTP or backup code.
#[utoipa::path(
    post,
    path = "/auth/2fa/disable",
    operation_id = "disableTwoFactor",
    tag = "two-factor",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = DisableBody, example = json!({"password": "correct horse battery staple 42", "code": TOTP_EXAMPLE})),
    responses((status = 200, description = "2FA is off", body = TwoFactorState, example = json!({"two_factor_enabled": false})), DisableProblems),
)]
async fn disable(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppJson(b): AppJson<DisableBody>,
) -> ApiResult<Json<TwoFactorState>> {
    state.accounts.disable(&auth.ctx, &b.password, &b.code, &client).await?;
    Ok(Json(TwoFactorState {
        two_factor_enabled: false,
        backup_codes: None,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct TotpLogin {
    /// From the login's answer.
    challenge_token: String,
    #[schema(value_type = String, example = "123456")]
    code: Secret,
}

/// Finish a login with a TOTP code
#[utoipa::path(
    post,
    path = "/auth/login/2fa",
    operation_id = "loginTwoFactor",
    tag = "two-factor",
    request_body(content = TotpLogin),
    params(DeviceTokenHeader),
    responses(
        (status = 200, description = "Signed in", body = AuthSuccess, headers(("Set-Cookie" = String, description = "Session cookies"))),
        TotpLoginProblems,
    ),
)]
async fn login_totp(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    AppJson(b): AppJson<TotpLogin>,
) -> ApiResult<Response> {
    let (out, _) = state
        .accounts
        .finish_login(
            &b.challenge_token,
            SecondFactor::Totp(&b.code),
            &client,
            device_token(&headers),
        )
        .await?;
    Ok(auth_response(&state, StatusCode::OK, out))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct BackupLogin {
    /// From the login's answer.
    challenge_token: String,
    /// One of the backup codes; each works once.
    #[schema(value_type = String, example = "k7rm-2q9x")]
    backup_code: Secret,
}

/// Finish a login with a backup code
#[utoipa::path(
    post,
    path = "/auth/2fa/backup-code",
    operation_id = "loginBackupCode",
    tag = "two-factor",
    request_body(content = BackupLogin),
    params(DeviceTokenHeader),
    responses(
        (status = 200, description = "Signed in; says how many backup codes are left", body = BackupLoginAnswer, headers(("Set-Cookie" = String, description = "Session cookies"))),
        BackupLoginProblems,
    ),
)]
async fn login_backup(
    State(state): State<AppState>,
    client: ClientInfo,
    headers: HeaderMap,
    AppJson(b): AppJson<BackupLogin>,
) -> ApiResult<Response> {
    let (out, remaining) = state
        .accounts
        .finish_login(
            &b.challenge_token,
            SecondFactor::Backup(&b.backup_code),
            &client,
            device_token(&headers),
        )
        .await?;
    let body = BackupLoginAnswer {
        backup_codes_remaining: remaining.unwrap_or(0),
        success: &out,
    };
    let json = serde_json::to_vec(&body).map_err(crate::http::error::ApiError::internal)?;
    let mut resp = auth_response(&state, StatusCode::OK, out);
    *resp.body_mut() = axum::body::Body::from(json);
    resp.headers_mut().remove(axum::http::header::CONTENT_LENGTH);
    Ok(resp.into_response())
}

#[derive(Serialize, ToSchema)]
struct TwoFactorState {
    two_factor_enabled: bool,
    /// The backup codes (`verify` only): store them safely, each works once.
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_codes: Option<Vec<String>>,
}

/// A login finished with a backup code: the usual answer plus how many
/// backup codes are left.
#[derive(Serialize, ToSchema)]
struct BackupLoginAnswer<'a> {
    #[serde(flatten)]
    success: &'a AuthSuccess,
    backup_codes_remaining: usize,
}
