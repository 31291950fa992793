//! `/auth/2fa/*` and `/auth/login/2fa`: TOTP enrolment and the second step
//! of a login.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::{auth_response, device_token};
use super::limited;
use crate::accounts::two_factor::{Enrollment, SecondFactor};
use crate::domain::Secret;
use crate::http::error::ApiResult;
use crate::http::extract::{AppJson, AuthUser};
use crate::http::state::AppState;
use crate::security::client::ClientInfo;
use crate::security::rate_limit::Group;

pub fn router(state: &AppState) -> Router<AppState> {
    let manage = Router::new()
        .route("/auth/2fa/enable", post(enable))
        .route("/auth/2fa/verify", post(verify))
        .route("/auth/2fa/disable", post(disable));
    let login = Router::new()
        .route("/auth/login/2fa", post(login_totp))
        .route("/auth/2fa/backup-code", post(login_backup));
    Router::new()
        .merge(limited(state, Group::TwoFactor, manage))
        .merge(limited(state, Group::Login, login))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EnableBody {
    password: Secret,
}

async fn enable(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppJson(b): AppJson<EnableBody>,
) -> ApiResult<Json<Enrollment>> {
    Ok(Json(state.accounts.enable(&auth.ctx, &b.password, &client).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeBody {
    code: Secret,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DisableBody {
    password: Secret,
    code: Secret,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpLogin {
    challenge_token: String,
    code: Secret,
}

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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupLogin {
    challenge_token: String,
    backup_code: Secret,
}

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

#[derive(Serialize)]
struct TwoFactorState {
    two_factor_enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_codes: Option<Vec<String>>,
}

/// A login finished with a backup code: the usual answer plus how many
/// backup codes are left.
#[derive(Serialize)]
struct BackupLoginAnswer<'a> {
    #[serde(flatten)]
    success: &'a crate::accounts::AuthSuccess,
    backup_codes_remaining: usize,
}
