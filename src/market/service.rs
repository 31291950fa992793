//! The market as the rest of the server sees it: the price book, the
//! optional provider, imports that persist, and the latest price of a symbol.

use std::sync::Arc;

use rust_decimal::Decimal;

use super::prices::{PriceBook, Series};
use super::provider::{HttpPriceProvider, PriceProvider};
use super::Candle;
use crate::config::MarketConfig;
use crate::domain::market::NewsItem;
use crate::state::State;
use crate::store::{NewsFilter, Store, StoreResult};

pub struct Market {
    pub book: PriceBook,
    provider: Option<Arc<dyn PriceProvider>>,
    store: Arc<dyn Store>,
    /// Where instances learn that another one imported prices.
    versions: Arc<dyn State>,
}

/// A latest price and where it came from.
#[derive(Debug, Clone)]
pub struct Quote {
    pub price: Decimal,
    pub source: String,
}

impl Market {
    /// The bundled set plus every imported series in the store.
    pub async fn load(cfg: &MarketConfig, store: Arc<dyn Store>, versions: Arc<dyn State>) -> anyhow::Result<Self> {
        let book = PriceBook::bundled();
        for s in store.imported_series().await? {
            book.merge(&s.symbol, Some(&s.name), s.candles);
        }
        let provider: Option<Arc<dyn PriceProvider>> = if cfg.price_provider.is_empty() {
            None
        } else {
            Some(Arc::new(HttpPriceProvider::new(&cfg.price_provider)?))
        };
        Ok(Self {
            book,
            provider,
            store,
            versions,
        })
    }

    /// True when prices can change without the book changing (a provider).
    pub fn has_live_prices(&self) -> bool {
        self.provider.is_some()
    }

    /// The provider's price when one is configured and answers, else the
    /// last stored close.
    pub async fn quote(&self, symbol: &str) -> Option<Quote> {
        if let Some(p) = &self.provider {
            if let Some(price) = p.latest(symbol).await {
                return Some(Quote {
                    price,
                    source: p.name().to_string(),
                });
            }
        }
        let series = self.book.get(symbol)?;
        series.last().map(|c| Quote {
            price: c.close,
            source: series.source.clone(),
        })
    }

    /// Merges imported candles into a symbol and persists the result.
    pub async fn import(&self, symbol: &str, name: Option<&str>, candles: Vec<Candle>) -> StoreResult<Arc<Series>> {
        let merged = self.book.merge(symbol, name, candles);
        self.store.put_imported_series((*merged).clone()).await?;
        if let Err(e) = self.versions.bump_price_book().await {
            tracing::warn!(error = %e, "other instances will see this import at their next successful check");
        }
        Ok(merged)
    }

    /// Adopts the imports other instances made since `seen` (the shared
    /// price-book version this instance last synced to); returns how many
    /// series changed.
    pub async fn sync_imports(&self, seen: &mut u64) -> anyhow::Result<usize> {
        let current = self.versions.price_book_version().await?;
        if current == *seen {
            return Ok(0);
        }
        let mut changed = 0;
        for series in self.store.imported_series().await? {
            changed += usize::from(self.book.adopt(series));
        }
        *seen = current;
        Ok(changed)
    }

    /// Stored news, newest first.
    pub async fn news(&self, filter: NewsFilter) -> StoreResult<Vec<NewsItem>> {
        self.store.news(filter).await
    }
}
