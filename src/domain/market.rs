//! Market records: daily candles, a symbol's series, news items. Prices are
//! exact decimals (they are money); models convert them to `f64` at their
//! own boundary.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// One day of OHLCV data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    pub date: NaiveDate,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
}

/// One symbol's history, oldest first, one candle per date.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    pub symbol: String,
    pub name: String,
    pub currency: String,
    /// "bundled", "import", or both ("bundled+import").
    pub source: String,
    pub candles: Vec<Candle>,
}

impl Series {
    pub fn last(&self) -> Option<&Candle> {
        self.candles.last()
    }
}

/// One news story, normalised from whatever feed it came in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewsItem {
    /// Stable id: the first `market::news::ID_HEX_LEN` hex digits of the SHA-256 of
    /// `market::news::dedup_key`.
    pub id: String,
    pub title: String,
    /// Plain text, at most `market::news::SUMMARY_MAX_CHARS` characters.
    pub summary: String,
    /// Empty when the entry had no link.
    pub url: String,
    pub source: String,
    pub published_at: DateTime<Utc>,
    /// Sorted, unique ticker symbols (see `market::news::tagging`).
    pub symbols: Vec<String>,
    pub sentiment: Sentiment,
}

/// Tone of a story (VADER compound score, see `market::news::sentiment`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// VADER compound score in `[-1, 1]`.
    pub score: f64,
    /// `"positive"`, `"neutral"` or `"negative"`.
    pub label: String,
}
