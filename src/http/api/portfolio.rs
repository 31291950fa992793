//! `/portfolio`: buy, sell, positions with P&L, and the ledger.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Limits;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppJson, AppQuery, AuthUser};
use crate::http::money::Amount;
use crate::http::pagination::{param, Page, PageQuery, UuidCursor};
use crate::http::state::AppState;
use crate::portfolio::service::{OrderRequest, OrderView, Placed, PortfolioView, TransactionView};
use crate::portfolio::Side;
use crate::security::rate_limit::Group;

pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    limits.apply(
        Group::Portfolio,
        OpenApiRouter::new()
            .routes(routes!(portfolio))
            .routes(routes!(buy))
            .routes(routes!(sell))
            .routes(routes!(transactions)),
    )
}

problems!(BuyProblems {
    409 => ["idempotency_conflict"],
    422 => ["price_unavailable", "amount_out_of_range"],
});

problems!(SellProblems {
    409 => ["idempotency_conflict"],
    422 => ["price_unavailable", "amount_out_of_range", "insufficient_quantity"],
});

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = Order)]
struct OrderBody {
    #[schema(value_type = crate::domain::schema::SymbolText)]
    symbol: String,
    #[schema(value_type = crate::domain::schema::PositiveAmount)]
    quantity: Amount,
    /// The execution price; the latest known price when absent (a symbol
    /// without prices then needs one).
    #[serde(default)]
    #[schema(value_type = Option<crate::domain::schema::PositiveAmount>)]
    price: Option<Amount>,
    /// Default 0.
    #[serde(default)]
    #[schema(value_type = Option<crate::domain::schema::FeeAmount>)]
    fee: Option<Amount>,
}

/// `Idempotency-Key`: 1 to 255 visible ASCII characters. A retry with the
/// same key and order within 24 hours gets the first answer again (with
/// `Idempotent-Replayed: true`); the same key with another order is `409`.
struct IdempotencyHeader;

impl utoipa::IntoParams for IdempotencyHeader {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        param(json!({
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "1 to 255 visible ASCII characters. A retry with the same key and order within 24 hours gets the first answer again (with `Idempotent-Replayed: true`); the same key with another order is `409 idempotency_conflict`.",
            "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
            "example": "order-2026-11-28-0001",
        }))
        .into_iter()
        .collect()
    }
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

/// Buy
///
/// Adds to the position at the given price (or the latest known one).
#[utoipa::path(
    post,
    path = "/portfolio/buy",
    operation_id = "buy",
    tag = "portfolio",
    security(("bearer" = []), ("cookie" = [])),
    params(IdempotencyHeader),
    request_body(content = OrderBody, example = json!({"symbol": "AAPL", "quantity": "10", "price": "187.25", "fee": "1.00"})),
    responses(
        (status = 201, description = "Executed (or replayed)", body = OrderView, headers(("Idempotent-Replayed" = String, description = "`true` on a replayed answer"))),
        BuyProblems,
    ),
)]
async fn buy(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    AppJson(body): AppJson<OrderBody>,
) -> ApiResult<Response> {
    execute(state, auth, headers, Side::Buy, body).await
}

/// Sell
///
/// Realizes P&L against the average cost; more than is held is `422`.
#[utoipa::path(
    post,
    path = "/portfolio/sell",
    operation_id = "sell",
    tag = "portfolio",
    security(("bearer" = []), ("cookie" = [])),
    params(IdempotencyHeader),
    request_body(content = OrderBody, example = json!({"symbol": "AAPL", "quantity": "2", "price": "190.00", "fee": "0"})),
    responses(
        (status = 201, description = "Executed (or replayed)", body = OrderView, headers(("Idempotent-Replayed" = String, description = "`true` on a replayed answer"))),
        SellProblems,
    ),
)]
async fn sell(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    AppJson(body): AppJson<OrderBody>,
) -> ApiResult<Response> {
    execute(state, auth, headers, Side::Sell, body).await
}

/// Positions and totals
///
/// Each position valued at the latest price.
#[utoipa::path(
    get,
    path = "/portfolio",
    operation_id = "getPortfolio",
    tag = "portfolio",
    security(("bearer" = []), ("cookie" = [])),
    responses((status = 200, description = "The portfolio", body = PortfolioView)),
)]
async fn portfolio(State(state): State<AppState>, auth: AuthUser) -> ApiResult<Response> {
    let body = state.portfolio.valuation_json(&auth.ctx.user.id).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Deserialize)]
struct TxQuery {
    symbol: Option<String>,
    #[serde(flatten)]
    page: PageQuery<UuidCursor>,
}

impl utoipa::IntoParams for TxQuery {
    fn into_params(
        in_provider: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        let symbol = param(json!({
            "name": "symbol", "in": "query", "required": false,
            "description": "Only this symbol's transactions (case-insensitive; empty means all).",
            "schema": {"type": "string", "pattern": format!("^$|{}", crate::domain::schema::SYMBOL_PATTERN)},
        }));
        symbol
            .into_iter()
            .chain(PageQuery::<UuidCursor>::into_params(in_provider))
            .collect()
    }
}

/// The ledger, newest first
#[utoipa::path(
    get,
    path = "/portfolio/transactions",
    operation_id = "listTransactions",
    tag = "portfolio",
    security(("bearer" = []), ("cookie" = [])),
    params(TxQuery),
    responses((status = 200, description = "A page of transactions", body = Page<TransactionView>)),
)]
async fn transactions(
    State(state): State<AppState>,
    auth: AuthUser,
    AppQuery(q): AppQuery<TxQuery>,
) -> ApiResult<Json<Page<TransactionView>>> {
    let limit = q.page.limit()?;
    let txs = state
        .portfolio
        .transactions(&auth.ctx.user.id, q.symbol.as_deref(), q.page.cursor()?, limit + 1)
        .await?;
    Ok(Json(
        Page::from_overfetch(txs, limit, |t| t.id.clone()).map(|t| TransactionView::from(&t)),
    ))
}
