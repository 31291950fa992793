//! `/portfolio`: buy, sell, positions with P&L, and the ledger.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::limited;
use crate::domain::{rfc3339, Symbol};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppJson, AppQuery, AuthUser};
use crate::http::money::Amount;
use crate::http::pagination::{Page, PageQuery};
use crate::http::state::AppState;
use crate::portfolio::{amount, max_amount, max_holding, money, LedgerError, Order, Position, Side, Transaction};
use crate::security::rate_limit::Group;
use crate::store::{IdempotencyKey, OrderOutcome, OrderReceipt};

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

fn check_amount(field: &str, d: Decimal, allow_zero: bool) -> ApiResult<Decimal> {
    let d = d.normalize();
    if d.is_sign_negative() || (!allow_zero && d.is_zero()) {
        let rule = if allow_zero {
            "must not be negative"
        } else {
            "must be greater than 0"
        };
        return Err(ApiError::validation(field, format!("{field} {rule}")));
    }
    if d.scale() > 8 {
        return Err(ApiError::validation(
            field,
            format!("{field} may have at most 8 decimal places"),
        ));
    }
    if d > max_amount() {
        return Err(ApiError::validation(
            field,
            format!("{field} must be at most {}", max_amount()),
        ));
    }
    Ok(d)
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

/// A position as the API shows it, valued at `price` (market or last trade).
/// A figure beyond the decimal range (only with an absurd market price, or a
/// position stored before the ledger's bounds) is `null`.
pub fn position_json(p: &Position, price: Option<Decimal>) -> Value {
    let price = price.unwrap_or(p.last_trade_price);
    let value = p.quantity.checked_mul(price);
    let unrealized = value.and_then(|v| v.checked_sub(p.cost_basis));
    let pct = if p.cost_basis.is_zero() {
        Some(Decimal::ZERO)
    } else {
        unrealized
            .and_then(|u| u.checked_div(p.cost_basis))
            .and_then(|r| r.checked_mul(Decimal::from(100)))
            .map(|r| r.round_dp(4))
    };
    json!({
        "symbol": p.symbol,
        "quantity": amount(p.quantity),
        "average_cost": p.average_cost().map(money),
        "cost_basis": money(p.cost_basis),
        "last_price": money(price),
        "market_value": value.map(money),
        "unrealized_pnl": unrealized.map(money),
        "unrealized_pnl_pct": pct.map(amount),
        "realized_pnl": money(p.realized_pnl),
    })
}

fn transaction_json(t: &Transaction) -> Value {
    json!({
        "id": t.id,
        "side": t.side.as_str(),
        "symbol": t.symbol,
        "quantity": amount(t.quantity),
        "price": money(t.price),
        "fee": money(t.fee),
        "total": money(t.total),
        "realized_pnl": money(t.realized_pnl),
        "executed_at": rfc3339(t.executed_at),
    })
}

async fn execute(
    state: AppState,
    auth: AuthUser,
    headers: HeaderMap,
    side: Side,
    body: OrderBody,
) -> ApiResult<Response> {
    let symbol = Symbol::parse(&body.symbol).map_err(|e| ApiError::validation("symbol", e))?;
    let quantity = check_amount("quantity", body.quantity.0, false)?;
    let fee = match body.fee {
        Some(f) => check_amount("fee", f.0, true)?,
        None => Decimal::ZERO,
    };
    let requested_price = match body.price {
        Some(p) => Some(check_amount("price", p.0, false)?),
        None => None,
    };
    let idem = idempotency_key(&headers)?;
    let quote = state.market.quote(symbol.as_str()).await.map(|q| q.price);
    let price = match requested_price.or(quote) {
        Some(p) => p,
        None => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "price_unavailable",
                format!("no price is known for {symbol}; give an explicit price"),
            )
            .with("field", "price"))
        }
    };
    let fingerprint = {
        let canon = format!(
            "{}|{}|{}|{}|{}",
            side.as_str(),
            symbol,
            amount(quantity),
            requested_price.map(amount).unwrap_or_else(|| "-".into()),
            amount(fee)
        );
        hex::encode(Sha256::digest(canon.as_bytes()))
    };
    let order = Order {
        side,
        symbol: symbol.as_str().to_string(),
        quantity,
        price,
        fee,
    };
    let outcome = state
        .store
        .execute_order(
            &auth.ctx.user.id,
            order,
            quote,
            idem.map(|key| IdempotencyKey { key, fingerprint }),
        )
        .await?;
    let render = |r: &OrderReceipt| json!({"transaction": transaction_json(&r.transaction), "position": position_json(&r.position, r.market_price)});
    match outcome {
        OrderOutcome::Executed(r) => {
            state.valuations.ledger_changed(&auth.ctx.user.id).await?;
            Ok((StatusCode::CREATED, Json(render(&r))).into_response())
        }
        OrderOutcome::Replayed(r) => {
            let mut resp = (StatusCode::CREATED, Json(render(&r))).into_response();
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(resp)
        }
        OrderOutcome::IdempotencyConflict => Err(ApiError::conflict(
            "idempotency_conflict",
            "this Idempotency-Key was already used with a different order",
        )),
        OrderOutcome::Rejected(LedgerError::InsufficientQuantity { held, wanted }) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_quantity",
            format!("cannot sell {} {symbol}: {} held", amount(wanted), amount(held)),
        )
        .with("held", amount(held))
        .with("field", "quantity")),
        OrderOutcome::Rejected(LedgerError::OutOfRange) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "amount_out_of_range",
            format!(
                "quantity × price may be at most {}, and a position's quantity, cost basis and realized P&L at most {}",
                max_amount(),
                max_holding()
            ),
        )),
    }
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
    let user = &auth.ctx.user.id;
    let cacheable = !state.market.has_live_prices();
    // Generations first: anything that changes after this read makes the
    // valuation computed below unservable (see `portfolio::valuations`).
    let (ledger, book) = (state.valuations.ledger(user).await?, state.market.book.generation());
    if cacheable {
        if let Some(body) = state.valuations.get(user, ledger, book) {
            return Ok(json_bytes(body));
        }
    }
    let body =
        axum::body::Bytes::from(serde_json::to_vec(&value_portfolio(&state, user).await?).map_err(ApiError::internal)?);
    if cacheable {
        state.valuations.put(user, ledger, book, body.clone());
    }
    Ok(json_bytes(body))
}

fn json_bytes(body: axum::body::Bytes) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Values every position at its latest price (the market's, or the last
/// trade's for manual assets).
async fn value_portfolio(state: &AppState, user_id: &str) -> ApiResult<Value> {
    let positions = state.store.positions(user_id).await?;
    let mut views = Vec::with_capacity(positions.len());
    // `None` once a sum leaves the decimal range (see `position_json`).
    let add = |sum: Option<Decimal>, d: Option<Decimal>| sum.zip(d).and_then(|(s, d)| s.checked_add(d));
    let (mut cost, mut value, mut realized) = (Some(Decimal::ZERO), Some(Decimal::ZERO), Some(Decimal::ZERO));
    for p in &positions {
        let price = state.market.quote(&p.symbol).await.map(|q| q.price);
        let v = position_json(p, price);
        cost = add(cost, Some(p.cost_basis));
        value = add(value, p.quantity.checked_mul(price.unwrap_or(p.last_trade_price)));
        realized = add(realized, Some(p.realized_pnl));
        views.push(v);
    }
    let unrealized = value.zip(cost).and_then(|(v, c)| v.checked_sub(c));
    Ok(json!({
        "positions": views,
        "totals": {
            "cost_basis": cost.map(money),
            "market_value": value.map(money),
            "unrealized_pnl": unrealized.map(money),
            "realized_pnl": realized.map(money),
        },
        "as_of": rfc3339(Utc::now()),
    }))
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
) -> ApiResult<Json<Page<Value>>> {
    let limit = q.page.limit()?;
    let symbol = match q.symbol.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(Symbol::parse(s).map_err(|e| ApiError::validation("symbol", e))?),
        None => None,
    };
    let txs = state
        .store
        .transactions(
            &auth.ctx.user.id,
            symbol.as_ref().map(Symbol::as_str),
            q.page.id_cursor()?,
            limit + 1,
        )
        .await?;
    Ok(Json(
        Page::from_overfetch(txs, limit, |t| t.id.clone()).map(|t| transaction_json(&t)),
    ))
}
