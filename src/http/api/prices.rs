//! `/prices`: the symbols the server knows and their daily history.

use axum::extract::State;
use axum::Json;
use chrono::{Duration, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Limits;
use crate::domain::Symbol;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppPath, AppQuery, AuthUser};
use crate::http::pagination::{param, Page, PageQuery, SymbolCursor};
use crate::http::state::AppState;
use crate::market::prices::Series;
use crate::market::Candle;
use crate::portfolio::{amount, money};
use crate::security::rate_limit::Group;

pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    limits.apply(
        Group::Prices,
        OpenApiRouter::new().routes(routes!(list)).routes(routes!(one)),
    )
}

problems!(UnknownSymbol {
    404 => ["unknown_symbol"],
});

pub fn unknown_symbol(symbol: &str) -> ApiError {
    ApiError::not_found(format!("no price data for symbol {symbol}"))
        .with("symbol", symbol)
        .recode("unknown_symbol")
}

/// A series as `GET /prices` lists it (the admin listing adds to it).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PriceSummary)]
pub struct SeriesSummary {
    #[schema(example = "AAPL")]
    pub symbol: String,
    #[schema(example = "Apple Inc.")]
    pub name: String,
    #[schema(example = "USD")]
    pub currency: String,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub last_close: Option<String>,
    #[schema(value_type = Option<crate::domain::schema::Date>)]
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
#[utoipa::path(
    get,
    path = "/prices",
    operation_id = "listPrices",
    tag = "market",
    summary = "The symbols with prices, by symbol",
    security(("bearer" = []), ("cookie" = [])),
    params(PageQuery<SymbolCursor>),
    responses((status = 200, description = "A page of symbols", body = Page<SeriesSummary>)),
)]
async fn list(
    State(state): State<AppState>,
    _auth: AuthUser,
    AppQuery(q): AppQuery<PageQuery<SymbolCursor>>,
) -> ApiResult<Json<Page<SeriesSummary>>> {
    let page = Page::paginate(state.market.book.list(), &q, |s| s.symbol.clone())?;
    Ok(Json(page.map(|s| SeriesSummary::from(&*s))))
}

#[derive(Deserialize)]
struct HistoryQuery {
    history: Option<String>,
}

impl utoipa::IntoParams for HistoryQuery {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        param(json!({
            "name": "history", "in": "query", "required": false,
            "description": "Include daily history: the last 30 days, year, 5 years or all of it (counted back from the last date known).",
            "schema": {"type": "string", "enum": ["30d", "1y", "5y", "max"]},
        }))
        .into_iter()
        .collect()
    }
}

/// One day of a series' history.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Candle)]
pub struct CandleView {
    #[schema(value_type = crate::domain::schema::Date)]
    pub date: String,
    #[schema(value_type = crate::domain::schema::Money)]
    pub open: String,
    #[schema(value_type = crate::domain::schema::Money)]
    pub high: String,
    #[schema(value_type = crate::domain::schema::Money)]
    pub low: String,
    #[schema(value_type = crate::domain::schema::Money)]
    pub close: String,
    #[schema(value_type = crate::domain::schema::Money)]
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Price)]
pub struct PriceView {
    #[schema(example = "AAPL")]
    pub symbol: String,
    #[schema(example = "Apple Inc.")]
    pub name: String,
    #[schema(example = "USD")]
    pub currency: String,
    /// The live quote when a provider has one, else the last close.
    #[schema(value_type = crate::domain::schema::Money)]
    pub price: String,
    /// Against the previous close.
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub change: Option<String>,
    /// Percent, 4 places.
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub change_pct: Option<String>,
    /// The date of the last close.
    #[schema(value_type = crate::domain::schema::Date)]
    pub as_of: String,
    /// Where the price came from (a provider or an import).
    pub source: String,
    /// Daily candles, oldest first (only with `?history=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<CandleView>>,
}

/// A symbol's latest price, with its history when asked for
#[utoipa::path(
    get,
    path = "/prices/{symbol}",
    operation_id = "getPrice",
    tag = "market",
    security(("bearer" = []), ("cookie" = [])),
    params(("symbol" = crate::domain::schema::SymbolText, Path, description = "The symbol (case-insensitive)"), HistoryQuery),
    responses((status = 200, description = "The price", body = PriceView), UnknownSymbol),
)]
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
