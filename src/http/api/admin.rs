//! `/admin/*` over TCP (SPEC §11): for accounts whose stored role is
//! `admin`, read on every request with the session (a token minted before a
//! demotion carries no power). Actions that change an account also need an
//! authentication within the last 10 minutes (`POST /auth/reauthenticate`).

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Limits;
use crate::admin::{self, Actor, AdminUser, EventQuery, Status};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppJson, AppPath, AppQuery, AuthUser};
use crate::http::pagination::{param, Page, PageQuery, UuidCursor};
use crate::http::state::AppState;
use crate::security::client::ClientInfo;
use crate::security::events::EventView;
use crate::security::rate_limit::Group;
use crate::store::{Role, UserRecord};

pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    let routes = OpenApiRouter::new()
        .routes(routes!(users))
        .routes(routes!(disable))
        .routes(routes!(enable))
        .routes(routes!(unlock))
        .routes(routes!(reset_two_factor))
        .routes(routes!(revoke_sessions))
        .routes(routes!(set_role))
        .routes(routes!(security_events))
        .routes(routes!(status));
    limits.apply(Group::Admin, routes)
}

/// A caller whose stored role is `admin`.
pub struct AdminCaller(AuthUser);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let auth = AuthUser::from_request_parts(parts, state).await?;
        if auth.ctx.user.role != Role::Admin {
            return Err(ApiError::forbidden("this endpoint is for accounts with the admin role"));
        }
        Ok(AdminCaller(auth))
    }
}

impl AdminCaller {
    fn user(&self) -> &UserRecord {
        &self.0.ctx.user
    }

    fn actor<'a>(&'a self, client: &'a ClientInfo) -> Actor<'a> {
        Actor::Account {
            admin: self.user(),
            client,
        }
    }
}

problems!(ReadProblems {
    403 => ["forbidden"],
});

problems!(EventProblems {
    403 => ["forbidden"],
    404 => ["not_found"],
});

problems!(ActionProblems {
    403 => ["forbidden", "reauthentication_required"],
    404 => ["not_found"],
});

#[derive(Deserialize)]
struct UsersQuery {
    q: Option<String>,
    #[serde(flatten)]
    page: PageQuery<UuidCursor>,
}

impl utoipa::IntoParams for UsersQuery {
    fn into_params(
        in_provider: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        let q = json!({
            "name": "q", "in": "query", "required": false,
            "description": "Only users whose email or name contains this text (case-insensitive).",
            "schema": {"type": "string", "maxLength": 254},
        });
        param(q)
            .into_iter()
            .chain(PageQuery::<UuidCursor>::into_params(in_provider))
            .collect()
    }
}

/// List or search users
///
/// Oldest account first (ids are time-ordered), paged by id.
#[utoipa::path(
    get,
    path = "/admin/users",
    operation_id = "adminListUsers",
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(UsersQuery),
    responses((status = 200, description = "A page of users", body = Page<AdminUser>), ReadProblems),
)]
async fn users(
    State(state): State<AppState>,
    _caller: AdminCaller,
    AppQuery(q): AppQuery<UsersQuery>,
) -> ApiResult<Json<Page<AdminUser>>> {
    if q.q.as_ref().is_some_and(|q| q.chars().count() > 254) {
        return Err(ApiError::validation("q", "q is longer than 254 characters"));
    }
    let found = admin::list_users(&state.accounts, q.q.as_deref()).await?;
    let page = Page::paginate(found, &q.page, |u| u.id.clone())?;
    let items = admin::views(&state.accounts, &page.items).await?;
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// What an admin does to one account.
#[derive(Clone, Copy)]
enum Action {
    Disable,
    Enable,
    Unlock,
    ResetTwoFactor,
    RevokeSessions,
    SetRole(Role),
}

/// Runs `action` on user `id` for a recently authenticated admin and
/// answers the user as it is afterwards.
async fn act(
    state: &AppState,
    caller: &AdminCaller,
    client: &ClientInfo,
    id: &str,
    action: Action,
) -> ApiResult<Json<AdminUser>> {
    let accounts = &state.accounts;
    accounts.require_recent(&caller.0.ctx)?;
    let target = admin::user_by_id(accounts, id).await?;
    let actor = caller.actor(client);
    match action {
        Action::Disable => admin::set_disabled(accounts, &actor, &target, true).await?,
        Action::Enable => admin::set_disabled(accounts, &actor, &target, false).await?,
        Action::Unlock => drop(admin::unlock(accounts, &actor, &target).await?),
        Action::ResetTwoFactor => drop(admin::reset_two_factor(accounts, &actor, &target).await?),
        Action::RevokeSessions => drop(admin::revoke_sessions(accounts, &actor, &target).await?),
        Action::SetRole(role) => admin::set_role(accounts, &actor, &target, role).await?,
    }
    Ok(Json(admin::reread(accounts, &target).await?))
}

/// One documented `POST /admin/users/{id}/<action>` without a body.
macro_rules! user_action {
    ($handler:ident, $path:literal, $operation:literal, $summary:literal, $description:literal, $action:expr) => {
        #[utoipa::path(
                    post,
                    path = $path,
                    operation_id = $operation,
                    tag = "admin",
                    summary = $summary,
                    description = $description,
                    security(("bearer" = []), ("cookie" = [])),
                    params(("id" = String, Path, description = "A user id from `GET /admin/users`")),
                    responses((status = 200, description = "The user afterwards", body = AdminUser), ActionProblems),
                )]
        async fn $handler(
            State(state): State<AppState>,
            caller: AdminCaller,
            client: ClientInfo,
            AppPath(id): AppPath<String>,
        ) -> ApiResult<Json<AdminUser>> {
            act(&state, &caller, &client, &id, $action).await
        }
    };
}

user_action!(
    disable,
    "/admin/users/{id}/disable",
    "adminDisableUser",
    "Disable an account",
    "Ends every session at once and mails the user. An admin cannot disable their own account.",
    Action::Disable
);
user_action!(
    enable,
    "/admin/users/{id}/enable",
    "adminEnableUser",
    "Enable a disabled account",
    "The user signs in again as before.",
    Action::Enable
);
user_action!(
    unlock,
    "/admin/users/{id}/unlock",
    "adminUnlockUser",
    "Lift the account's lockouts",
    "Clears the account lock and every device-token lock of the user.",
    Action::Unlock
);
user_action!(
    reset_two_factor,
    "/admin/users/{id}/reset-2fa",
    "adminResetTwoFactor",
    "Turn the user's 2FA off",
    "For a user who lost their authenticator; mails the user.",
    Action::ResetTwoFactor
);
user_action!(
    revoke_sessions,
    "/admin/users/{id}/revoke-sessions",
    "adminRevokeSessions",
    "End every session of the user",
    "Access and refresh tokens of every session stop working at once.",
    Action::RevokeSessions
);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = RoleChange)]
struct RoleBody {
    role: Role,
}

/// Make a user an admin, or an admin a user
///
/// The new role holds from the user's next request. An admin cannot demote
/// their own account.
#[utoipa::path(
    post,
    path = "/admin/users/{id}/role",
    operation_id = "adminSetRole",
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(("id" = String, Path, description = "A user id from `GET /admin/users`")),
    request_body(content = RoleBody, example = json!({"role": "admin"})),
    responses((status = 200, description = "The user afterwards", body = AdminUser), ActionProblems),
)]
async fn set_role(
    State(state): State<AppState>,
    caller: AdminCaller,
    client: ClientInfo,
    AppPath(id): AppPath<String>,
    AppJson(body): AppJson<RoleBody>,
) -> ApiResult<Json<AdminUser>> {
    act(&state, &caller, &client, &id, Action::SetRole(body.role)).await
}

#[derive(Deserialize)]
struct EventsQuery {
    user: Option<String>,
    event: Option<String>,
    since: Option<String>,
    #[serde(flatten)]
    page: PageQuery<UuidCursor>,
}

impl utoipa::IntoParams for EventsQuery {
    fn into_params(
        in_provider: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        let event_types: Vec<&str> = crate::security::events::EventType::ALL
            .iter()
            .map(|t| t.as_str())
            .collect();
        let own = [
            json!({
                "name": "user", "in": "query", "required": false,
                "description": "Only this user's events: an email address or a user id.",
                "schema": {"type": "string", "maxLength": 254},
            }),
            json!({
                "name": "event", "in": "query", "required": false,
                "description": "Only events of this type.",
                "schema": {"type": "string", "enum": event_types},
            }),
            json!({
                "name": "since", "in": "query", "required": false,
                "description": "Only events at or after this RFC 3339 time, or within this duration back from now (`24h`, `7d`).",
                "schema": {"anyOf": [
                    {"type": "string", "format": "date-time"},
                    {"type": "string", "pattern": "^[0-9]+(ms|s|m|h|d)$"},
                ]},
            }),
        ];
        own.into_iter()
            .filter_map(param)
            .chain(PageQuery::<UuidCursor>::into_params(in_provider))
            .collect()
    }
}

/// `since` as a time, or as a duration back from now.
fn parse_since(s: &str) -> ApiResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let invalid = || ApiError::validation("since", "since must be an RFC 3339 time or a duration like 24h");
    let d = crate::config::Dur::parse(s).map_err(|_| invalid())?;
    admin::ago(d.0).ok_or_else(invalid)
}

/// Security events of every user
///
/// Newest first, paged by event id.
#[utoipa::path(
    get,
    path = "/admin/security-events",
    operation_id = "adminListSecurityEvents",
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(EventsQuery),
    responses((status = 200, description = "A page of events", body = Page<EventView>), EventProblems),
)]
async fn security_events(
    State(state): State<AppState>,
    _caller: AdminCaller,
    AppQuery(q): AppQuery<EventsQuery>,
) -> ApiResult<Json<Page<EventView>>> {
    let limit = q.page.limit()?;
    let since = q
        .since
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(parse_since)
        .transpose()?;
    let query = EventQuery {
        user: q.user.as_deref().filter(|u| !u.is_empty()),
        event: q.event.as_deref().filter(|e| !e.is_empty()),
        since,
        before_id: q.page.cursor()?,
        limit: limit + 1,
    };
    let found = admin::events(&state.accounts, query).await?;
    Ok(Json(
        Page::from_overfetch(found, limit, |e| e.id.clone()).map(|e| EventView::from(&e)),
    ))
}

/// The server at a glance
#[utoipa::path(
    get,
    path = "/admin/status",
    operation_id = "adminStatus",
    tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "Counts and backends", body = Status), ReadProblems),
)]
async fn status(State(state): State<AppState>, _caller: AdminCaller) -> ApiResult<Json<Status>> {
    Ok(Json(
        admin::status(&state.accounts, state.store.kind(), state.state.kind()).await?,
    ))
}
