//! Imported price series, the news archive and one-time flags.

use async_trait::async_trait;
use chrono::NaiveDate;
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use tokio_postgres::Row;

use super::{col, execute, pg, query, query_opt, PostgresStore};
use crate::domain::market::{Candle, NewsItem, Sentiment, Series};
use crate::store::{NewsFilter, NewsStore, PriceStore, StoreResult};

/// Replaces a symbol's series (header and candles), as one bulk insert.
pub(super) async fn write_series(c: &impl GenericClient, s: &Series) -> StoreResult<()> {
    execute(
        c,
        "INSERT INTO price_series (symbol, name, currency, source) VALUES ($1, $2, $3, $4)
         ON CONFLICT (symbol) DO UPDATE SET name = excluded.name, currency = excluded.currency,
                                            source = excluded.source",
        &[&s.symbol, &s.name, &s.currency, &s.source],
    )
    .await?;
    execute(c, "DELETE FROM candles WHERE symbol = $1", &[&s.symbol]).await?;
    let column = |f: fn(&Candle) -> Decimal| s.candles.iter().map(f).collect::<Vec<_>>();
    let days: Vec<NaiveDate> = s.candles.iter().map(|c| c.date).collect();
    execute(
        c,
        "INSERT INTO candles (symbol, day, open, high, low, close, volume)
         SELECT $1, * FROM unnest($2::date[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[])",
        &[
            &s.symbol,
            &days,
            &column(|c| c.open),
            &column(|c| c.high),
            &column(|c| c.low),
            &column(|c| c.close),
            &column(|c| c.volume),
        ],
    )
    .await
    .map(drop)
}

#[async_trait]
impl PriceStore for PostgresStore {
    async fn put_imported_series(&self, series: Series) -> StoreResult<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        write_series(&tx, &series).await?;
        tx.commit().await.map_err(pg)
    }

    async fn imported_series(&self) -> StoreResult<Vec<Series>> {
        let client = self.client().await?;
        let mut out: Vec<Series> = query(
            &client,
            "SELECT symbol, name, currency, source FROM price_series ORDER BY symbol",
            &[],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(Series {
                symbol: col(row, 0)?,
                name: col(row, 1)?,
                currency: col(row, 2)?,
                source: col(row, 3)?,
                candles: Vec::new(),
            })
        })
        .collect::<StoreResult<_>>()?;
        let rows = query(
            &client,
            "SELECT symbol, day, open, high, low, close, volume FROM candles ORDER BY symbol, day",
            &[],
        )
        .await?;
        let mut series = out.iter_mut().peekable();
        for row in &rows {
            let symbol: &str = col(row, 0)?;
            while series.peek().is_some_and(|s| s.symbol.as_str() < symbol) {
                series.next();
            }
            if let Some(s) = series.peek_mut().filter(|s| s.symbol == symbol) {
                s.candles.push(Candle {
                    date: col(row, 1)?,
                    open: col(row, 2)?,
                    high: col(row, 3)?,
                    low: col(row, 4)?,
                    close: col(row, 5)?,
                    volume: col(row, 6)?,
                });
            }
        }
        Ok(out)
    }
}

const NEWS_COLUMNS: &str = "id, title, summary, url, source, published_at, symbols, sentiment_score, sentiment_label";

fn news_from_row(row: &Row) -> StoreResult<NewsItem> {
    Ok(NewsItem {
        id: col(row, 0)?,
        title: col(row, 1)?,
        summary: col(row, 2)?,
        url: col(row, 3)?,
        source: col(row, 4)?,
        published_at: col(row, 5)?,
        symbols: col(row, 6)?,
        sentiment: Sentiment {
            score: col(row, 7)?,
            label: col(row, 8)?,
        },
    })
}

/// Inserts news items whose ids are new; returns how many were.
pub(super) async fn insert_news_items(c: &impl GenericClient, items: &[NewsItem]) -> StoreResult<usize> {
    let mut added = 0;
    for n in items {
        added += execute(
            c,
            "INSERT INTO news (id, title, summary, url, source, published_at, symbols, sentiment_score, sentiment_label)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO NOTHING",
            &[
                &n.id,
                &n.title,
                &n.summary,
                &n.url,
                &n.source,
                &n.published_at,
                &n.symbols,
                &n.sentiment.score,
                &n.sentiment.label,
            ],
        )
        .await?;
    }
    Ok(added as usize)
}

#[async_trait]
impl NewsStore for PostgresStore {
    async fn insert_news(&self, items: Vec<NewsItem>) -> StoreResult<usize> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let added = insert_news_items(&tx, &items).await?;
        tx.commit().await.map_err(pg)?;
        Ok(added)
    }

    async fn news(&self, f: NewsFilter) -> StoreResult<Vec<NewsItem>> {
        let client = self.client().await?;
        let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX);
        let (after_at, after_id) = f.after.map(|c| (c.published_at, c.id)).unzip();
        let sql = format!(
            "SELECT {NEWS_COLUMNS} FROM news
              WHERE ($1::timestamptz IS NULL OR (published_at, id) < ($1, $2::text))
                AND ($3::timestamptz IS NULL OR published_at >= $3)
                AND ($4::text IS NULL OR symbols @> ARRAY[$4::text])
           ORDER BY published_at DESC, id DESC
              LIMIT $5"
        );
        query(&client, &sql, &[&after_at, &after_id, &f.since, &f.symbol, &limit])
            .await?
            .iter()
            .map(news_from_row)
            .collect()
    }

    async fn flag(&self, name: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        Ok(query_opt(&client, "SELECT 1 FROM flags WHERE name = $1", &[&name])
            .await?
            .is_some())
    }

    async fn set_flag(&self, name: &str) -> StoreResult<()> {
        let client = self.client().await?;
        execute(
            &client,
            "INSERT INTO flags (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
            &[&name],
        )
        .await
        .map(drop)
    }
}
