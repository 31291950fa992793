//! News feeds (SPEC §4): the bundled Federal Reserve sample is loaded at
//! first start so `/news` has content offline; configured RSS/Atom feeds
//! are fetched every `market.news_refresh`. A failing feed is logged and
//! tried again next round; it never stops the others or the server.

use std::sync::Arc;
use std::time::Duration;

use super::news::{self, SymbolIndex, BUNDLED_FRB_FEED, BUNDLED_FRB_SOURCE};
use super::prices::PriceBook;
use crate::config::redact_url;
use crate::store::{Store, StoreResult};

const BUNDLED_FLAG: &str = "bundled_news_loaded";
/// A feed larger than this is refused (a feed is a few hundred KB).
const MAX_FEED_BYTES: usize = 5 * 1024 * 1024;

/// Symbols and names the tagger looks for.
pub fn symbol_index(book: &PriceBook) -> SymbolIndex {
    let entries: Vec<(String, String)> = book.list().iter().map(|s| (s.symbol.clone(), s.name.clone())).collect();
    SymbolIndex::new(&entries)
}

/// Loads the bundled feed once per data directory.
pub async fn load_bundled(store: &Arc<dyn Store>, book: &PriceBook) -> StoreResult<usize> {
    if store.flag(BUNDLED_FLAG).await? {
        return Ok(0);
    }
    let mut items = match news::parse_feed(BUNDLED_FRB_FEED, BUNDLED_FRB_SOURCE) {
        Ok(items) => items,
        Err(e) => {
            tracing::error!(error = %e, "the bundled news feed does not parse");
            return Ok(0);
        }
    };
    news::tag_items(&mut items, &symbol_index(book));
    let added = store.insert_news(items).await?;
    store.set_flag(BUNDLED_FLAG).await?;
    tracing::info!(added, "bundled news loaded");
    Ok(added)
}

/// The source name of a feed's items: its host, never its userinfo.
fn source_name(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| redact_url(url))
}

/// Fetches one feed and stores its new items. Errors never carry the URL,
/// which may hold credentials; callers log it redacted.
pub async fn fetch_feed(
    client: &reqwest::Client,
    url: &str,
    store: &Arc<dyn Store>,
    index: &SymbolIndex,
) -> Result<usize, String> {
    let resp = client.get(url).send().await.map_err(|e| e.without_url().to_string())?;
    if !resp.status().is_success() {
        return Err(format!("HTTP {}", resp.status()));
    }
    if resp.content_length().is_some_and(|n| n as usize > MAX_FEED_BYTES) {
        return Err("feed too large".into());
    }
    let bytes = resp.bytes().await.map_err(|e| e.without_url().to_string())?;
    if bytes.len() > MAX_FEED_BYTES {
        return Err("feed too large".into());
    }
    let mut items = news::parse_feed(&bytes, &source_name(url)).map_err(|e| e.to_string())?;
    news::tag_items(&mut items, index);
    store.insert_news(items).await.map_err(|e| e.to_string())
}

/// Fetches every configured feed now and then every `refresh`, until `stop`.
/// What the news fetcher needs.
pub struct Fetcher {
    pub feeds: Vec<String>,
    pub refresh: Duration,
    pub store: Arc<dyn Store>,
    pub index: SymbolIndex,
    /// This instance, when it claims a round (one instance fetches each).
    pub holder: String,
}

pub async fn run_fetcher(f: Fetcher, mut stop: tokio::sync::watch::Receiver<bool>) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("fortfolio/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the news HTTP client; feeds disabled");
            return;
        }
    };
    // A round's lease ends a little before the holder's next round, so the
    // holder keeps it while it lives and another instance takes over after.
    let lease = chrono::Duration::from_std(f.refresh.mul_f64(0.9)).unwrap_or(chrono::Duration::minutes(5));
    loop {
        match f
            .store
            .claim_job("news_fetch", &f.holder, chrono::Utc::now(), lease)
            .await
        {
            Ok(true) => {
                for url in &f.feeds {
                    let fetch = fetch_feed(&client, url, &f.store, &f.index);
                    let feed = redact_url(url);
                    tokio::select! {
                        r = fetch => match r {
                            Ok(added) => tracing::info!(%feed, added, "news feed fetched"),
                            Err(e) => tracing::warn!(%feed, error = %e, "news feed failed; will retry next round"),
                        },
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            }
            Ok(false) => tracing::debug!("another instance fetches the news this round"),
            Err(e) => tracing::warn!(error = %e, "cannot claim the news round; will retry next round"),
        }
        tokio::select! {
            _ = tokio::time::sleep(f.refresh) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_named_after_the_host_only() {
        assert_eq!(
            source_name("https://reader:s3cret@feeds.example:8443/rss?key=k"),
            "feeds.example"
        );
        assert_eq!(
            source_name("https://www.federalreserve.gov/feeds/press_monetary.xml"),
            "www.federalreserve.gov"
        );
    }
}
