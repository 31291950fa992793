//! `GET /news`: stored feed items with symbols and sentiment, newest first.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::limited;
use crate::domain::market::NewsItem;
use crate::domain::{rfc3339, Symbol};
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppQuery, AuthUser};
use crate::http::pagination::{Page, PageQuery};
use crate::http::state::AppState;
use crate::security::rate_limit::Group;
use crate::store::{NewsCursor, NewsFilter};

pub fn router(state: &AppState) -> Router<AppState> {
    limited(state, Group::News, Router::new().route("/news", get(list)))
}

#[derive(Deserialize)]
struct NewsQuery {
    symbol: Option<String>,
    since: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
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
    let after = q.page.parse_cursor(decode_cursor)?;
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
    let published_at = chrono::DateTime::from_timestamp_micros(micros.parse().ok()?)?;
    valid_id.then(|| NewsCursor {
        published_at,
        id: id.to_string(),
    })
}

/// A news item as the API shows it.
#[derive(Serialize)]
pub struct NewsView {
    id: String,
    title: String,
    summary: String,
    url: String,
    source: String,
    published_at: String,
    symbols: Vec<String>,
    sentiment: SentimentView,
}

#[derive(Serialize)]
struct SentimentView {
    score: f64,
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
