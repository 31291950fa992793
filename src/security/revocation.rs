//! The revocation list (SPEC §5.7): SHA-256 of revoked tokens, each kept
//! until the token would have expired anyway. Hot copy in moka, durable copy
//! in the store, reloaded at start so revocations survive restarts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use moka::sync::Cache;
use moka::Expiry;

use crate::store::{Store, StoreResult};

struct UntilTokenExpiry;

impl Expiry<String, DateTime<Utc>> for UntilTokenExpiry {
    fn expire_after_create(&self, _key: &String, exp: &DateTime<Utc>, _now: Instant) -> Option<Duration> {
        Some((*exp - Utc::now()).to_std().unwrap_or(Duration::ZERO))
    }
}

#[derive(Clone)]
pub struct RevocationList {
    hot: Cache<String, DateTime<Utc>>,
    store: Arc<dyn Store>,
}

impl RevocationList {
    pub async fn load(store: Arc<dyn Store>) -> StoreResult<Self> {
        let hot = Cache::builder().expire_after(UntilTokenExpiry).build();
        for (hash, exp) in store.live_revocations(Utc::now()).await? {
            hot.insert(hash, exp);
        }
        Ok(Self { hot, store })
    }

    pub async fn revoke(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.store.revoke_token(token_hash, expires_at).await?;
        self.hot.insert(token_hash.to_string(), expires_at);
        Ok(())
    }

    pub fn is_revoked(&self, token_hash: &str) -> bool {
        self.hot.get(token_hash).is_some_and(|exp| exp > Utc::now())
    }
}
