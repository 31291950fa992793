//! `/prices`: the symbols the server knows and their daily history.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::limited;
use crate::domain::Symbol;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppPath, AppQuery, AuthUser};
use crate::http::pagination::{Page, PageQuery};
use crate::http::state::AppState;
use crate::market::Candle;
use crate::portfolio::{amount, money};
use crate::security::rate_limit::Group;

pub fn router(state: &AppState) -> Router<AppState> {
    limited(
        state,
        Group::Prices,
        Router::new()
            .route("/prices", get(list))
            .route("/prices/{symbol}", get(one)),
    )
}

pub fn unknown_symbol(symbol: &str) -> ApiError {
    ApiError::not_found(format!("no price data for symbol {symbol}"))
        .with("symbol", symbol)
        .recode("unknown_symbol")
}

/// A series as `GET /prices` lists it (the admin listing adds to it).
pub fn series_summary(s: &crate::market::prices::Series) -> Value {
    json!({
        "symbol": s.symbol,
        "name": s.name,
        "currency": s.currency,
        "last_close": s.last().map(|c| money(c.close)),
        "as_of": s.last().map(|c| c.date.to_string()),
    })
}

/// Pages by symbol, like the other in-memory lists.
async fn list(
    State(state): State<AppState>,
    _auth: AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<Page<Value>>> {
    let page = Page::paginate(state.market.book.list(), &q, |s| s.symbol.clone())?;
    Ok(Json(page.map(|s| series_summary(&s))))
}

#[derive(Deserialize)]
struct HistoryQuery {
    history: Option<String>,
}

fn candle_json(c: &Candle) -> Value {
    json!({
        "date": c.date.to_string(),
        "open": money(c.open),
        "high": money(c.high),
        "low": money(c.low),
        "close": money(c.close),
        "volume": amount(c.volume),
    })
}

async fn one(
    State(state): State<AppState>,
    _auth: AuthUser,
    AppPath(raw): AppPath<String>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let symbol = Symbol::parse(&raw).map_err(|e| ApiError::validation("symbol", e))?;
    let window = match q.history.as_deref() {
        None => None,
        Some("30d") => Some(Some(Duration::days(30))),
        Some("1y") => Some(Some(Duration::days(365))),
        Some("5y") => Some(Some(Duration::days(5 * 365 + 1))),
        Some("max") => Some(None),
        Some(other) => {
            return Err(ApiError::validation(
                "history",
                format!(
                    "history must be 30d, 1y, 5y or max, not `{}`",
                    other.chars().take(20).collect::<String>()
                ),
            ))
        }
    };
    let series = state
        .market
        .book
        .get(symbol.as_str())
        .ok_or_else(|| unknown_symbol(symbol.as_str()))?;
    let last = series.last().ok_or_else(|| unknown_symbol(symbol.as_str()))?;
    let prev = series.candles.len().checked_sub(2).and_then(|i| series.candles.get(i));
    let quote = state.market.quote(symbol.as_str()).await;
    let (price, source) = match &quote {
        Some(q) => (q.price, q.source.clone()),
        None => (last.close, series.source.clone()),
    };
    // Checked: imported prices are not bounded like orders.
    let change = prev.and_then(|p| price.checked_sub(p.close));
    let change_pct = prev.zip(change).and_then(|(p, c)| {
        c.checked_div(p.close)
            .and_then(|r| r.checked_mul(Decimal::from(100)))
            .map(|r| r.round_dp(4))
    });
    let mut body = json!({
        "symbol": series.symbol,
        "name": series.name,
        "currency": series.currency,
        "price": money(price),
        "change": change.map(money),
        "change_pct": change_pct.map(amount),
        "as_of": last.date.to_string(),
        "source": source,
    });
    if let Some(window) = window {
        // Windows count back from the last date the series has.
        let from: Option<NaiveDate> = window.map(|w| last.date - w);
        let history: Vec<Value> = series
            .candles
            .iter()
            .filter(|c| from.is_none_or(|f| c.date > f))
            .map(candle_json)
            .collect();
        body["history"] = Value::Array(history);
    }
    Ok(Json(body))
}
