//! An optional HTTP price provider (`market.price_provider`) for latest
//! prices, behind a trait so tests and other sources can stand in. Answers
//! are cached for a minute (moka) and requests time out after 5 s; any
//! failure falls back to the last stored close.
//!
//! The config value is a URL template with `{symbol}`, e.g.
//! `https://quotes.example/v1/{symbol}`. The response may be a JSON object
//! with a `price` (or `last`, `close`) field — number or string — or a
//! plain-text number.

use std::time::Duration;

use async_trait::async_trait;
use moka::future::Cache;
use rust_decimal::Decimal;

#[async_trait]
pub trait PriceProvider: Send + Sync {
    /// The latest price, or `None` if the provider has none.
    async fn latest(&self, symbol: &str) -> Option<Decimal>;
    fn name(&self) -> &str;
}

pub struct HttpPriceProvider {
    template: String,
    client: reqwest::Client,
    cache: Cache<String, Option<Decimal>>,
}

impl HttpPriceProvider {
    pub fn new(template: &str) -> anyhow::Result<Self> {
        if !template.contains("{symbol}") {
            anyhow::bail!("invalid config key market.price_provider: the URL template needs a {{symbol}} placeholder");
        }
        Ok(Self {
            template: template.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(3))
                .user_agent(concat!("fortfolio/", env!("CARGO_PKG_VERSION")))
                .build()?,
            cache: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(60))
                .build(),
        })
    }

    async fn fetch(&self, symbol: &str) -> Option<Decimal> {
        let url = self.template.replace("{symbol}", symbol);
        let resp = match self.client.get(&url).send().await {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                tracing::warn!(status = %r.status(), symbol, "price provider refused");
                return None;
            }
            Err(e) => {
                // The URL may carry an API key: the error is logged without it.
                tracing::warn!(error = %e.without_url(), symbol, "price provider unreachable");
                return None;
            }
        };
        let text = resp.text().await.ok()?;
        parse_price(&text)
    }
}

/// Reads a price from a provider answer.
pub fn parse_price(text: &str) -> Option<Decimal> {
    let t = text.trim();
    if let Ok(d) = t.parse::<Decimal>() {
        return Some(d);
    }
    let v: serde_json::Value = serde_json::from_str(t).ok()?;
    ["price", "last", "close"].iter().find_map(|k| match &v[*k] {
        serde_json::Value::String(s) => s.parse().ok(),
        serde_json::Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    })
}

#[async_trait]
impl PriceProvider for HttpPriceProvider {
    async fn latest(&self, symbol: &str) -> Option<Decimal> {
        let key = symbol.to_string();
        self.cache.get_with(key, self.fetch(symbol)).await
    }

    fn name(&self) -> &str {
        "provider"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_json_and_text_answers() {
        assert_eq!(parse_price("123.45"), Some(Decimal::new(12345, 2)));
        assert_eq!(parse_price(r#"{"price": "10.5"}"#), Some(Decimal::new(105, 1)));
        assert_eq!(parse_price(r#"{"last": 7}"#), Some(Decimal::from(7)));
        assert_eq!(parse_price("<html>"), None);
    }
}
