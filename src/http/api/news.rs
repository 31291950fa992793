//! `GET /news`: stored feed items with symbols and sentiment, newest first.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::Limits;
use crate::domain::market::NewsItem;
use crate::domain::{rfc3339, Symbol};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppQuery, AuthUser};
use crate::http::pagination::{param, CursorSyntax, Page, PageQuery};
use crate::http::state::AppState;
use crate::security::rate_limit::Group;
use crate::store::{NewsCursor, NewsFilter};

pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    limits.apply(Group::News, OpenApiRouter::new().routes(routes!(list)))
}

/// News cursors: `<published_at µs>.<id>`.
pub struct NewsCursorSyntax;

impl CursorSyntax for NewsCursorSyntax {
    const PATTERN: &'static str = r"^-?[0-9]{1,18}\.[A-Za-z0-9]{1,64}$";
    fn valid(c: &str) -> bool {
        decode_cursor(c).is_some()
    }
}

#[derive(Deserialize)]
struct NewsQuery {
    symbol: Option<String>,
    since: Option<String>,
    #[serde(flatten)]
    page: PageQuery<NewsCursorSyntax>,
}

impl utoipa::IntoParams for NewsQuery {
    fn into_params(
        in_provider: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        let own = [
            json!({
                "name": "symbol", "in": "query", "required": false,
                "description": "Only items about this symbol (case-insensitive; empty means all).",
                "schema": {"type": "string", "pattern": format!("^$|{}", crate::domain::schema::SYMBOL_PATTERN)},
            }),
            json!({
                "name": "since", "in": "query", "required": false,
                "description": "Only items published at or after this RFC 3339 time or date (empty means all).",
                "schema": {"anyOf": [
                    {"type": "string", "format": "date-time"},
                    {"type": "string", "format": "date"},
                    {"type": "string", "maxLength": 0},
                ]},
            }),
        ];
        own.into_iter()
            .filter_map(param)
            .chain(PageQuery::<NewsCursorSyntax>::into_params(in_provider))
            .collect()
    }
}

fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        })
}

/// News with symbols and sentiment, newest first
#[utoipa::path(
    get,
    path = "/news",
    operation_id = "listNews",
    tag = "market",
    security(("bearer" = []), ("cookie" = [])),
    params(NewsQuery),
    responses((status = 200, description = "A page of news", body = Page<NewsView>)),
)]
async fn list(
    State(state): State<AppState>,
    _auth: AuthUser,
    AppQuery(q): AppQuery<NewsQuery>,
) -> ApiResult<Json<Page<NewsView>>> {
    let limit = q.page.limit()?;
    let symbol = match q.symbol.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(Symbol::parse(s).map_err(|e| ApiError::validation("symbol", e))?),
        None => None,
    };
    let since = match q.since.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(parse_since(s).ok_or_else(|| {
            ApiError::validation("since", "since must be an RFC 3339 timestamp or a YYYY-MM-DD date")
        })?),
        None => None,
    };
    let after = q.page.cursor()?.and_then(decode_cursor);
    let found = state
        .market
        .news(NewsFilter {
            symbol: symbol.map(|s| s.as_str().to_string()),
            since,
            after,
            limit: limit + 1,
        })
        .await?;
    let page = Page::from_overfetch(found, limit, |n| encode_cursor(&NewsCursor::after(n))).map(|n| NewsView::from(&n));
    Ok(Json(page))
}

/// A news cursor as it appears in URLs: `<published_at µs>.<id>`.
fn encode_cursor(c: &NewsCursor) -> String {
    format!("{}.{}", c.published_at.timestamp_micros(), c.id)
}

fn decode_cursor(s: &str) -> Option<NewsCursor> {
    let (micros, id) = s.split_once('.')?;
    let valid_id = (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    let digits = micros.strip_prefix('-').unwrap_or(micros);
    if !(1..=18).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let published_at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    valid_id.then(|| NewsCursor {
        published_at,
        id: id.to_string(),
    })
}

/// A news item as the API shows it.
#[derive(Serialize, ToSchema)]
#[schema(as = NewsItem)]
pub struct NewsView {
    id: String,
    title: String,
    summary: String,
    url: String,
    source: String,
    #[schema(value_type = crate::domain::schema::Timestamp)]
    published_at: String,
    /// Symbols the item mentions.
    symbols: Vec<String>,
    sentiment: SentimentView,
}

/// Lexicon-based sentiment of the title and summary.
#[derive(Serialize, ToSchema)]
#[schema(as = Sentiment)]
struct SentimentView {
    /// From −1 (negative) to 1 (positive).
    #[schema(minimum = -1.0, maximum = 1.0)]
    score: f64,
    #[schema(value_type = String, pattern = "^(positive|negative|neutral)$")]
    label: String,
}

impl From<&NewsItem> for NewsView {
    fn from(n: &NewsItem) -> Self {
        Self {
            id: n.id.clone(),
            title: n.title.clone(),
            summary: n.summary.clone(),
            url: n.url.clone(),
            source: n.source.clone(),
            published_at: rfc3339(n.published_at),
            symbols: n.symbols.clone(),
            sentiment: SentimentView {
                score: n.sentiment.score,
                label: n.sentiment.label.clone(),
            },
        }
    }
}
