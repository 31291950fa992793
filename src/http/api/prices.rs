//! `/prices`: the symbols the server knows and their daily history.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::limited;
use crate::domain::Symbol;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppPath, AppQuery, AuthUser};
use crate::http::pagination::{Page, PageQuery};
use crate::http::state::AppState;
use crate::market::prices::Series;
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
#[derive(Debug, Serialize)]
pub struct SeriesSummary {
    pub symbol: String,
    pub name: String,
    pub currency: String,
    pub last_close: Option<String>,
    pub as_of: Option<String>,
}

impl From<&Series> for SeriesSummary {
    fn from(s: &Series) -> Self {
        Self {
            symbol: s.symbol.clone(),
            name: s.name.clone(),
            currency: s.currency.clone(),
            last_close: s.last().map(|c| money(c.close)),
            as_of: s.last().map(|c| c.date.to_string()),
        }
    }
}

/// Pages by symbol, like the other in-memory lists.
async fn list(
    State(state): State<AppState>,
    _auth: AuthUser,
    AppQuery(q): AppQuery<PageQuery>,
) -> ApiResult<Json<Page<SeriesSummary>>> {
    let page = Page::paginate(state.market.book.list(), &q, |s| s.symbol.clone())?;
    Ok(Json(page.map(|s| SeriesSummary::from(&*s))))
}

#[derive(Deserialize)]
struct HistoryQuery {
    history: Option<String>,
}

/// One day of a series' history.
#[derive(Debug, Serialize)]
pub struct CandleView {
    pub date: String,
    pub open: String,
    pub high: String,
    pub low: String,
    pub close: String,
    pub volume: String,
}

impl From<&Candle> for CandleView {
    fn from(c: &Candle) -> Self {
        Self {
            date: c.date.to_string(),
            open: money(c.open),
            high: money(c.high),
            low: money(c.low),
            close: money(c.close),
            volume: amount(c.volume),
        }
    }
}

/// A symbol's latest price, with its history when asked for.
#[derive(Debug, Serialize)]
pub struct PriceView {
    pub symbol: String,
    pub name: String,
    pub currency: String,
    pub price: String,
    pub change: Option<String>,
    pub change_pct: Option<String>,
    pub as_of: String,
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<CandleView>>,
}

async fn one(
    State(state): State<AppState>,
    _auth: AuthUser,
    AppPath(raw): AppPath<String>,
    AppQuery(q): AppQuery<HistoryQuery>,
) -> ApiResult<Json<PriceView>> {
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
    // Windows count back from the last date the series has.
    let history = window.map(|window| {
        let from: Option<NaiveDate> = window.map(|w| last.date - w);
        series
            .candles
            .iter()
            .filter(|c| from.is_none_or(|f| c.date > f))
            .map(CandleView::from)
            .collect()
    });
    Ok(Json(PriceView {
        symbol: series.symbol.clone(),
        name: series.name.clone(),
        currency: series.currency.clone(),
        price: money(price),
        change: change.map(money),
        change_pct: change_pct.map(amount),
        as_of: last.date.to_string(),
        source,
        history,
    }))
}
