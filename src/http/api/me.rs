//! `/me*`: the caller's account, password and sessions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Limits;
use crate::accounts::UserView;
use crate::domain::{ts, Secret};
use crate::http::error::ApiResult;
use crate::http::extract::{AppJson, AppPath, AppQuery, AuthUser};
use crate::http::pagination::{HexCursor, Page, PageQuery, UuidCursor};
use crate::http::state::AppState;
use crate::security::client::ClientInfo;
use crate::security::events::EventView;
use crate::security::rate_limit::Group;

pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    let account = OpenApiRouter::new()
        .routes(routes!(get_me, patch_me))
        .routes(routes!(sessions))
        .routes(routes!(delete_session))
        .routes(routes!(devices))
        .routes(routes!(delete_device))
        .routes(routes!(security_events));
    OpenApiRouter::new()
        .merge(limits.apply(Group::Account, account))
        .merge(limits.apply(Group::Password, OpenApiRouter::new().routes(routes!(change_password))))
}

problems!(PasswordProblems {
    401 => ["invalid_credentials"],
    422 => ["weak_password"],
    423 => ["account_locked"],
});

problems!(NotFoundProblems {
    404 => ["not_found"],
});

/// The caller's account
#[utoipa::path(
    get,
    path = "/me",
    operation_id = "getMe",
    tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The account", body = UserView)),
)]
async fn get_me(auth: AuthUser) -> Json<UserView> {
    Json(UserView::from(&auth.ctx.user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PatchMe {
    /// A new name; `null` clears it, absent leaves it.
    #[serde(default, with = "double_option")]
    #[schema(value_type = Option<crate::domain::schema::FullName>)]
    full_name: Option<Option<String>>,
}

/// Tells "absent" (leave as is) from `null` (clear).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

/// Change the caller's name
#[utoipa::path(
    patch,
    path = "/me",
    operation_id = "patchMe",
    tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = PatchMe, example = json!({"full_name": "Ann Example"})),
    responses((status = 200, description = "The account", body = UserView)),
)]
async fn patch_me(
    State(state): State<AppState>,
    auth: AuthUser,
    AppJson(body): AppJson<PatchMe>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(
        state.accounts.update_profile(&auth.ctx.user.id, body.full_name).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordChange)]
struct PasswordBody {
    #[schema(value_type = String, format = Password)]
    current_password: Secret,
    #[schema(value_type = crate::domain::schema::NewPassword)]
    new_password: Secret,
}

/// Change the password
///
/// Ends every other session of the account.
#[utoipa::path(
    post,
    path = "/me/password",
    operation_id = "changePassword",
    tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = PasswordBody, example = json!({"current_password": "correct horse battery staple 42", "new_password": "another long and unguessable phrase 7"})),
    responses((status = 200, description = "Changed", body = PasswordChanged), PasswordProblems),
)]
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

#[derive(Serialize, ToSchema)]
struct PasswordChanged {
    password_changed: bool,
    sessions_ended: usize,
}

#[derive(Serialize, ToSchema)]
#[schema(as = Session)]
struct SessionView {
    #[schema(format = Uuid)]
    id: String,
    #[serde(with = "ts")]
    #[schema(value_type = crate::domain::schema::Timestamp)]
    created_at: chrono::DateTime<Utc>,
    #[serde(with = "ts")]
    #[schema(value_type = crate::domain::schema::Timestamp)]
    last_used_at: chrono::DateTime<Utc>,
    ip: String,
    user_agent: String,
    current: bool,
}

/// The caller's active sessions
///
/// Paged by session id.
#[utoipa::path(
    get,
    path = "/me/sessions",
    operation_id = "listSessions",
    tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    params(PageQuery<UuidCursor>),
    responses((status = 200, description = "A page of sessions", body = Page<SessionView>)),
)]
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

/// End one of the caller's sessions
#[utoipa::path(
    delete,
    path = "/me/sessions/{id}",
    operation_id = "endSession",
    tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "A session id from `GET /me/sessions`")),
    responses((status = 204, description = "Ended"), NotFoundProblems),
)]
async fn delete_session(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppPath(id): AppPath<String>,
) -> ApiResult<Response> {
    state.accounts.end_session(&auth.ctx, &id, &client).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
#[schema(as = Device)]
struct DeviceView {
    /// A hash of the user agent and the client's network.
    id: String,
    user_agent: String,
    /// The client's /24 (IPv4) or /64 (IPv6) network.
    ip_network: String,
    last_ip: String,
    #[serde(with = "ts")]
    #[schema(value_type = crate::domain::schema::Timestamp)]
    first_seen: chrono::DateTime<Utc>,
    #[serde(with = "ts")]
    #[schema(value_type = crate::domain::schema::Timestamp)]
    last_seen: chrono::DateTime<Utc>,
    current: bool,
    /// A live device token speaks for this device (it is exempt from locks
    /// that strangers cause until revoked).
    trusted: bool,
}

/// Devices the account signed in from
///
/// Paged by device id.
#[utoipa::path(
    get,
    path = "/me/devices",
    operation_id = "listDevices",
    tag = "account",
    security(("bearer" = []), ("cookie" = [])),
    params(PageQuery<HexCursor>),
    responses((status = 200, description = "A page of devices", body = Page<DeviceView>)),
)]
async fn devices(
    State(state): State<AppState>,
    auth: AuthUser,
    client: ClientInfo,
    AppQuery(q): AppQuery<PageQuery<HexCursor>>,
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
#[utoipa::path(
    delete,
    path = "/me/devices/{id}",
    operation_id = "forgetDevice",
    tag = "account",
    summary = "Forget a device and revoke its device token",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "A device id from `GET /me/devices`")),
    responses((status = 204, description = "Forgotten"), NotFoundProblems),
)]
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
#[utoipa::path(
    get,
    path = "/me/security-events",
    operation_id = "listSecurityEvents",
    tag = "account",
    summary = "The caller's security events, newest first",
    security(("bearer" = []), ("cookie" = [])),
    params(PageQuery<UuidCursor>),
    responses((status = 200, description = "A page of events", body = Page<EventView>)),
)]
async fn security_events(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(q): AppQuery<PageQuery<UuidCursor>>,
) -> ApiResult<Json<Page<EventView>>> {
    let limit = q.limit()?;
    let events = state
        .accounts
        .own_events(&auth.ctx.user.id, q.cursor()?, limit + 1)
        .await?;
    Ok(Json(
        Page::from_overfetch(events, limit, |e| e.id.clone()).map(|e| EventView::from(&e)),
    ))
}
