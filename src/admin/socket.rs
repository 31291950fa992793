//! Admin routes, served only on `<data_dir>/admin.sock` (mode 0600): they
//! exist on no TCP port. Access to the socket file is the authorisation.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::AdminUser;
use crate::api::extract::AppJson;
use crate::app::AppState;
use crate::domain::Secret;
use crate::error::{ApiError, ApiResult};
use crate::store::Role;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/{email}/{action}", post(user_action))
        .route("/admin/sessions/revoke", post(revoke))
        .route("/admin/events", get(events))
        .fallback(|| async { ApiError::not_found("no such admin endpoint") })
        .with_state(state)
}

#[derive(Deserialize)]
pub struct CreateBody {
    pub email: String,
    pub role: Role,
    pub password: Secret,
}

async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<AdminUser>>> {
    Ok(Json(super::list_users(&state).await?))
}

async fn create(State(state): State<AppState>, AppJson(b): AppJson<CreateBody>) -> ApiResult<Json<AdminUser>> {
    Ok(Json(
        super::create_user(&state, &b.email, b.role, b.password.expose()).await?,
    ))
}

async fn user_action(
    State(state): State<AppState>,
    Path((email, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(match action.as_str() {
        "disable" => json!(super::set_disabled(&state, &email, true).await?),
        "enable" => json!(super::set_disabled(&state, &email, false).await?),
        "unlock" => json!({"locks_cleared": super::unlock(&state, &email).await?}),
        "reset-2fa" => {
            json!({"two_factor_was_enabled": super::reset_two_factor(&state, &email).await?})
        }
        _ => return Err(ApiError::not_found("no such admin action")),
    }))
}

#[derive(Deserialize)]
struct EventsQuery {
    user: Option<String>,
    event: Option<String>,
    since: Option<String>,
    limit: Option<usize>,
}

async fn events(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<EventsQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let since = match q.since.as_deref() {
        None => None,
        Some(s) => {
            let d = crate::config::Dur::parse(s).map_err(|e| ApiError::validation("since", e))?;
            Some(chrono::Utc::now() - chrono::Duration::from_std(d.0).map_err(ApiError::internal)?)
        }
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    Ok(Json(
        super::events(&state, q.user.as_deref(), q.event.as_deref(), since, limit).await?,
    ))
}

#[derive(Deserialize)]
struct RevokeBody {
    email: String,
}

async fn revoke(State(state): State<AppState>, AppJson(b): AppJson<RevokeBody>) -> ApiResult<Json<Value>> {
    Ok(Json(
        json!({"sessions_revoked": super::revoke_sessions(&state, &b.email).await?}),
    ))
}
