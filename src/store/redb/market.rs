//! Imported price series, news and one-time flags.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::ReadableTable;

use super::*;

#[async_trait]
impl PriceStore for RedbStore {
    async fn put_imported_series(&self, series: Series) -> StoreResult<()> {
        self.write(move |tx| put(tx, PRICE_SERIES, &series.symbol.clone(), &series))
            .await
    }

    async fn imported_series(&self) -> StoreResult<Vec<Series>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(PRICE_SERIES).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(decode("price_series", v.value())?);
        }
        Ok(out)
    }
}

fn news_key(published_at: DateTime<Utc>, id: &str) -> String {
    let micros = published_at.timestamp_micros().max(0);
    format!("{micros:020}|{id}")
}

#[async_trait]
impl NewsStore for RedbStore {
    async fn insert_news(&self, items: Vec<NewsItem>) -> StoreResult<usize> {
        self.write(move |tx| {
            let mut ids = tx.open_table(NEWS_IDS).map_err(backend)?;
            let mut news = tx.open_table(NEWS).map_err(backend)?;
            let mut added = 0;
            for item in items {
                if ids.get(item.id.as_str()).map_err(backend)?.is_some() {
                    continue;
                }
                let key = news_key(item.published_at, &item.id);
                ids.insert(item.id.as_str(), key.as_bytes()).map_err(backend)?;
                news.insert(key.as_str(), encode(&item)?.as_slice()).map_err(backend)?;
                added += 1;
            }
            Ok(added)
        })
        .await
    }

    async fn news(&self, f: NewsFilter) -> StoreResult<Vec<NewsItem>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(NEWS).map_err(backend)?;
        let end = match &f.after {
            Some(c) => news_key(c.published_at, &c.id),
            None => prefix_end(""),
        };
        let mut out = Vec::new();
        for row in t.range(""..end.as_str()).map_err(backend)?.rev() {
            let (_, v) = row.map_err(backend)?;
            let item: NewsItem = decode("news", v.value())?;
            if f.since.is_some_and(|s| item.published_at < s) {
                break;
            }
            if f.symbol.as_ref().is_some_and(|s| !item.symbols.contains(s)) {
                continue;
            }
            out.push(item);
            if out.len() >= f.limit.max(1) {
                break;
            }
        }
        Ok(out)
    }

    async fn flag(&self, name: &str) -> StoreResult<bool> {
        Ok(self.read::<bool>(FLAGS, "flags", name)?.unwrap_or(false))
    }

    async fn set_flag(&self, name: &str) -> StoreResult<()> {
        let name = name.to_string();
        self.write(move |tx| put(tx, FLAGS, &name, &true)).await
    }
}
