//! `/me*`: the caller's account, password and sessions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::limited;
use crate::accounts::UserView;
use crate::domain::{ts, Secret};
use crate::http::error::ApiResult;
use crate::http::extract::{AppJson, AppPath, AppQuery, AuthUser};
use crate::http::pagination::{Page, PageQuery};
use crate::http::state::AppState;
use crate::security::client::ClientInfo;
use crate::security::events::event_json;
use crate::security::rate_limit::Group;

pub fn router(state: &AppState) -> Router<AppState> {
    let account = Router::new()
        .route("/me", get(get_me).patch(patch_me))
        .route("/me/sessions", get(sessions))
        .route("/me/sessions/{id}", delete(delete_session))
        .route("/me/devices", get(devices))
        .route("/me/devices/{id}", delete(delete_device))
        .route("/me/security-events", get(security_events));
    Router::new()
        .merge(limited(state, Group::Account, account))
        .merge(limited(
            state,
            Group::Password,
            Router::new().route("/me/password", post(change_password)),
        ))
}

async fn get_me(auth: AuthUser) -> Json<UserView> {
    Json(UserView::from(&auth.ctx.user))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchMe {
    #[serde(default, with = "double_option")]
    full_name: Option<Option<String>>,
}

/// Tells "absent" (leave as is) from `null` (clear).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

async fn patch_me(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(body): AppJson<PatchMe>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        state.accounts.update_profile(&auth.ctx.user.id, body.full_name).await?,
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: Secret,
    new_password: Secret,
}

async fn change_password(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppJson(body): AppJson<PasswordBody>,
) -> ApiResult<Json<PasswordChanged>> {
    let ended = state
        .accounts
        .change_password(&auth.ctx, &body.current_password, body.new_password.expose(), &client)
        .await?;
    Ok(Json(PasswordChanged {
        password_changed: true,
        sessions_ended: ended,
    }))
}

#[derive(Serialize)]
struct PasswordChanged {
    password_changed: bool,
    sessions_ended: usize,
}

#[derive(Serialize)]
struct SessionView {
    id: String,
    #[serde(with = "ts")]
    created_at: chrono::DateTime<Utc>,
    #[serde(with = "ts")]
    last_used_at: chrono::DateTime<Utc>,
    ip: String,
    user_agent: String,
    current: bool,
}

async fn sessions(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<Page<SessionView>>> {
    let items: Vec<SessionView> = state
        .accounts
        .sessions(&auth.ctx.user.id)
        .await?
        .into_iter()
        .map(|s| SessionView {
            current: s.id == auth.ctx.session_id,
            id: s.id,
            created_at: s.created_at,
            last_used_at: s.last_used_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect();
    Ok(Json(Page::paginate(items, &q, |s| s.id.clone())?))
}

async fn delete_session(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppPath(id): AppPath<String>,
) -> ApiResult<Response> {
    state.accounts.end_session(&auth.ctx, &id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize)]
struct DeviceView {
    id: String,
    user_agent: String,
    ip_network: String,
    last_ip: String,
    #[serde(with = "ts")]
    first_seen: chrono::DateTime<Utc>,
    #[serde(with = "ts")]
    last_seen: chrono::DateTime<Utc>,
    current: bool,
    /// A live device token speaks for this device (it is exempt from locks
    /// that strangers cause until revoked).
    trusted: bool,
}

async fn devices(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<Page<DeviceView>>> {
    let current = crate::security::devices::fingerprint(&client.user_agent, client.ip);
    let items: Vec<DeviceView> = state
        .accounts
        .devices(&auth.ctx.user.id)
        .await?
        .into_iter()
        .map(|d| DeviceView {
            current: d.id == current,
            trusted: !d.token_jtis.is_empty(),
            id: d.id,
            user_agent: d.user_agent,
            ip_network: d.ip_network,
            last_ip: d.last_ip,
            first_seen: d.first_seen,
            last_seen: d.last_seen,
        })
        .collect();
    Ok(Json(Page::paginate(items, &q, |d| d.id.clone())?))
}

/// Forgets one of the caller's devices: its device token stops working and
/// the next sign-in from it counts as a new device again.
async fn delete_device(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppPath(id): AppPath<String>,
) -> ApiResult<Response> {
    state.accounts.forget_device(&auth.ctx, &id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The caller's own security events, newest first.
async fn security_events(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<Page<serde_json::Value>>> {
    let limit = q.limit()?;
    let events = state
        .accounts
        .own_events(&auth.ctx.user.id, q.id_cursor()?, limit + 1)
        .await?;
    Ok(Json(
        Page::from_overfetch(events, limit, |e| e.id.clone()).map(|e| event_json(&e)),
    ))
}
