//! Admin routes, served only on `<data_dir>/admin.sock` (mode 0600): they
//! exist on no TCP port. Access to the socket file is the authorisation.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::admin::{self, Actor, AdminUser};
use crate::domain::Secret;
use crate::http::api::predictions::EvaluationView;
use crate::http::api::prices::SeriesSummary;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::AppJson;
use crate::http::state::AppState;
use crate::store::Role;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/admin/users", get(list).post(create))
        .route("/admin/users/{email}/role", post(set_role))
        .route("/admin/users/{email}/{action}", post(user_action))
        .route("/admin/sessions/revoke", post(revoke))
        .route("/admin/events", get(events))
        .route("/admin/events/verify", get(verify_events))
        .route("/admin/backup", post(backup))
        .route("/admin/prices", get(prices))
        .route("/admin/prices/import", post(import_prices))
        .route("/admin/model/evaluate", get(evaluate))
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
    let users = admin::list_users(&state.accounts, None).await?;
    Ok(Json(admin::views(&state.accounts, &users).await?))
}

/// Who runs the admin command: the CLI names its Unix user in
/// `X-Fortfolio-Actor` (the socket is 0600, so only the server's own Unix
/// user can reach it; the name is for the record).
pub const ACTOR_HEADER: &str = "x-fortfolio-actor";

fn actor(headers: &HeaderMap) -> Actor<'static> {
    let named = headers.get(ACTOR_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    let named: String = named.chars().filter(|c| !c.is_control()).take(64).collect();
    if named.is_empty() {
        Actor::Cli("admin-socket".to_string())
    } else {
        Actor::Cli(named)
    }
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(b): AppJson<CreateBody>,
) -> ApiResult<Json<AdminUser>> {
    Ok(Json(
        admin::create_user(&state.accounts, &actor(&headers), &b.email, b.role, b.password.expose()).await?,
    ))
}

async fn user_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((email, action)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let (accounts, who) = (&state.accounts, actor(&headers));
    let target = admin::user_by_email(accounts, &email).await?;
    Ok(Json(match action.as_str() {
        "disable" | "enable" => {
            admin::set_disabled(accounts, &who, &target, action == "disable").await?;
            json!(admin::reread(accounts, &target).await?)
        }
        "unlock" => json!({"locks_cleared": admin::unlock(accounts, &who, &target).await?}),
        "reset-2fa" => {
            json!({"two_factor_was_enabled": admin::reset_two_factor(accounts, &who, &target).await?})
        }
        "reset-password" => {
            let (token, expires_at) = admin::reset_password(accounts, &who, &target).await?;
            let link = accounts.link(crate::store::TokenPurpose::ResetPassword, token.expose());
            json!({"token": token.expose(), "link": link, "expires_at": crate::domain::rfc3339(expires_at)})
        }
        _ => return Err(ApiError::not_found("no such admin action")),
    }))
}

#[derive(Deserialize)]
struct RoleBody {
    role: Role,
}

async fn set_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(email): Path<String>,
    AppJson(b): AppJson<RoleBody>,
) -> ApiResult<Json<AdminUser>> {
    let target = admin::user_by_email(&state.accounts, &email).await?;
    admin::set_role(&state.accounts, &actor(&headers), &target, b.role).await?;
    Ok(Json(admin::reread(&state.accounts, &target).await?))
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
            Some(admin::ago(d.0).ok_or_else(|| ApiError::validation("since", "since reaches before any date"))?)
        }
    };
    let query = admin::EventQuery {
        user: q.user.as_deref(),
        event: q.event.as_deref(),
        since,
        before_id: None,
        limit: q.limit.unwrap_or(1000).clamp(1, 100_000),
    };
    let found = admin::events(&state.accounts, query).await?;
    Ok(Json(found.iter().map(crate::security::events::event_json).collect()))
}

#[derive(Deserialize)]
struct VerifyQuery {
    #[serde(default)]
    files: bool,
}

async fn verify_events(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<VerifyQuery>,
) -> ApiResult<Json<crate::security::events::AuditReport>> {
    Ok(Json(state.events.verify(q.files).await?))
}

/// A series as `fortfolio prices list` shows it.
#[derive(Serialize)]
struct AdminSeries {
    #[serde(flatten)]
    summary: SeriesSummary,
    source: String,
    rows: usize,
    first: Option<String>,
    last: Option<String>,
}

async fn prices(State(state): State<AppState>) -> Json<Vec<AdminSeries>> {
    let list = state.market.book.list();
    Json(
        list.iter()
            .map(|s| AdminSeries {
                summary: SeriesSummary::from(&**s),
                source: s.source.clone(),
                rows: s.candles.len(),
                first: s.candles.first().map(|c| c.date.to_string()),
                last: s.last().map(|c| c.date.to_string()),
            })
            .collect(),
    )
}

#[derive(Deserialize)]
struct ImportBody {
    symbol: String,
    name: Option<String>,
    candles: Vec<crate::market::Candle>,
}

async fn import_prices(State(state): State<AppState>, AppJson(b): AppJson<ImportBody>) -> ApiResult<Json<Value>> {
    let symbol = crate::domain::Symbol::parse(&b.symbol).map_err(|e| ApiError::validation("symbol", e))?;
    let added = b.candles.len();
    let series = state
        .market
        .import(symbol.as_str(), b.name.as_deref(), b.candles)
        .await?;
    Ok(Json(json!({
        "symbol": series.symbol,
        "rows_received": added,
        "rows_total": series.candles.len(),
        "last": series.last().map(|c| c.date.to_string()),
    })))
}

#[derive(Deserialize)]
struct EvaluateQuery {
    symbol: String,
    horizon: Option<usize>,
}

async fn evaluate(
    State(state): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<EvaluateQuery>,
) -> ApiResult<Json<Value>> {
    let symbol = crate::domain::Symbol::parse(&q.symbol).map_err(|e| ApiError::validation("symbol", e))?;
    let horizon = q.horizon.unwrap_or(5);
    let series = state
        .market
        .book
        .get(symbol.as_str())
        .ok_or_else(|| crate::http::api::prices::unknown_symbol(symbol.as_str()))?;
    let candles = series.candles.clone();
    let evaluation = tokio::task::spawn_blocking(move || crate::ml::evaluate(&candles, horizon))
        .await
        .map_err(ApiError::internal)?
        .map_err(crate::http::api::predictions::ml_error)?;
    Ok(Json(json!({
        "symbol": symbol.as_str(),
        "horizon_days": horizon,
        "model": crate::ml::MODEL_KIND,
        "features": crate::ml::FEATURE_NAMES,
        "evaluation": EvaluationView::from(&evaluation),
    })))
}

#[derive(Deserialize)]
struct BackupBody {
    path: String,
    /// Encrypts to this passphrase (age scrypt).
    #[serde(default)]
    passphrase: Option<Secret>,
    /// Encrypts to these age public keys.
    #[serde(default)]
    recipients: Vec<String>,
}

/// Writes a consistent snapshot while the server keeps serving.
async fn backup(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(b): AppJson<BackupBody>,
) -> ApiResult<Json<Value>> {
    use crate::backup::{seal, Seal};
    let path = std::path::PathBuf::from(&b.path);
    if !path.is_absolute() {
        return Err(ApiError::validation("path", "the backup path must be absolute"));
    }
    let embedded = state.embedded.as_ref().ok_or_else(|| {
        ApiError::validation(
            "path",
            "backups are made by the embedded backend only; use the database's own tools",
        )
    })?;
    let seal = match (b.passphrase, b.recipients.is_empty()) {
        (Some(_), false) => {
            return Err(ApiError::validation(
                "passphrase",
                "give a passphrase or recipients, not both",
            ));
        }
        (Some(p), true) => Seal::Passphrase(p.expose().to_string().into()),
        (None, false) => Seal::Recipients(
            b.recipients
                .iter()
                .map(|r| seal::recipient(r))
                .collect::<Result<_, _>>()
                .map_err(|e| ApiError::validation("recipients", e))?,
        ),
        (None, true) => Seal::Plain,
    };
    let outcome = crate::backup::write(embedded, state.config.data_dir(), &path, seal).await;
    let event = crate::backup::event(&path, actor(&headers).name(), &outcome);
    state.events.emit(event).await;
    let written = outcome.map_err(|e| ApiError::validation("path", e.to_string()))?;
    state.last_backup.set_now();
    Ok(Json(json!({
        "path": b.path,
        "records": written.records,
        "bytes": written.bytes,
        "seconds": written.seconds,
        "encrypted": written.encrypted,
    })))
}

#[derive(Deserialize)]
struct RevokeBody {
    email: String,
}

async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppJson(b): AppJson<RevokeBody>,
) -> ApiResult<Json<Value>> {
    let target = admin::user_by_email(&state.accounts, &b.email).await?;
    let ended = admin::revoke_sessions(&state.accounts, &actor(&headers), &target).await?;
    Ok(Json(json!({"sessions_revoked": ended})))
}
