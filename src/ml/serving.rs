//! Serving predictions: models are trained on first use per (symbol,
//! horizon) on the blocking pool behind a semaphore sized to the cores,
//! cached, and retrained when the symbol's prices change (the cache key
//! carries the price book's version of the symbol). Concurrent first
//! requests for one key train once.

use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use tokio::sync::Semaphore;

use super::{predict, MlError, Prediction};
use crate::market::prices::Series;

type Key = (String, usize, u64);

pub struct Predictor {
    cache: Cache<Key, Arc<Prediction>>,
    cpu: Arc<Semaphore>,
}

impl Default for Predictor {
    fn default() -> Self {
        Self::new()
    }
}

impl Predictor {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self {
            cache: Cache::builder()
                .max_capacity(2_000)
                .time_to_idle(Duration::from_secs(24 * 3600))
                .build(),
            cpu: Arc::new(Semaphore::new(cores)),
        }
    }

    /// The prediction for `series` at `horizon`; `version` identifies the
    /// series' current content.
    pub async fn predict(&self, series: Arc<Series>, horizon: usize, version: u64) -> Result<Arc<Prediction>, MlError> {
        let key = (series.symbol.clone(), horizon, version);
        let cpu = self.cpu.clone();
        self.cache
            .try_get_with(key, async move {
                let _permit = cpu.acquire_owned().await.map_err(|e| MlError::Model(e.to_string()))?;
                tokio::task::spawn_blocking(move || predict(&series.candles, horizon).map(Arc::new))
                    .await
                    .map_err(|e| MlError::Model(e.to_string()))?
            })
            .await
            .map_err(|e: Arc<MlError>| (*e).clone())
    }
}
