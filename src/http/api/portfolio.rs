//! `/portfolio`: buy, sell, positions with P&L, and the ledger.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::limited;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppJson, AppQuery, AuthUser};
use crate::http::money::Amount;
use crate::http::pagination::{Page, PageQuery};
use crate::http::state::AppState;
use crate::portfolio::service::{OrderRequest, Placed, TransactionView};
use crate::portfolio::Side;
use crate::security::rate_limit::Group;

pub fn router(state: &AppState) -> Router<AppState> {
    limited(
        state,
        Group::Portfolio,
        Router::new()
            .route("/portfolio", get(portfolio))
            .route("/portfolio/buy", post(buy))
            .route("/portfolio/sell", post(sell))
            .route("/portfolio/transactions", get(transactions)),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderBody {
    symbol: String,
    quantity: Amount,
    #[serde(default)]
    price: Option<Amount>,
    #[serde(default)]
    fee: Option<Amount>,
}

fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x21..=0x7e).contains(&b)))
        .ok_or_else(|| {
            ApiError::validation(
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            )
        })?;
    Ok(Some(key.to_string()))
}

async fn execute(
    state: AppState,
    auth: AuthUser,
    headers: HeaderMap,
    side: Side,
    body: OrderBody,
) -> ApiResult<Response> {
    let req = OrderRequest {
        side,
        symbol: body.symbol,
        quantity: body.quantity.0,
        price: body.price.map(|p| p.0),
        fee: body.fee.map(|f| f.0),
        idempotency_key: idempotency_key(&headers)?,
    };
    Ok(match state.portfolio.place(&auth.ctx.user.id, req).await? {
        Placed::Executed(view) => (StatusCode::CREATED, Json(view)).into_response(),
        Placed::Replayed(view) => {
            let mut resp = (StatusCode::CREATED, Json(view)).into_response();
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            resp
        }
    })
}

async fn buy(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    AppJson(body): AppJson<OrderBody>,
) -> ApiResult<Response> {
    execute(state, auth, headers, Side::Buy, body).await
}

async fn sell(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    AppJson(body): AppJson<OrderBody>,
) -> ApiResult<Response> {
    execute(state, auth, headers, Side::Sell, body).await
}

async fn portfolio(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Response> {
    let body = state.portfolio.valuation_json(&auth.ctx.user.id).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Deserialize)]
struct TxQuery {
    symbol: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

async fn transactions(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(q): AppQuery<TxQuery>,
) -> ApiResult<Json<Page<TransactionView>>> {
    let limit = q.page.limit()?;
    let txs = state
        .portfolio
        .transactions(&auth.ctx.user.id, q.symbol.as_deref(), q.page.id_cursor()?, limit + 1)
        .await?;
    Ok(Json(
        Page::from_overfetch(txs, limit, |t| t.id.clone()).map(|t| TransactionView::from(&t)),
    ))
}
