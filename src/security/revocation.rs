//! Access-token revocation (logout): the hash of a revoked token is kept
//! until the token would have expired anyway. The store keeps the list
//! durable; the shared state answers every request.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::state::{State, StateResult};
use crate::store::Store;

#[derive(Clone)]
pub struct RevocationList {
    store: Arc<dyn Store>,
    state: Arc<dyn State>,
}

impl RevocationList {
    /// Loads the live revocations from the store into the state (which may
    /// have lost them in a restart).
    pub async fn load(store: Arc<dyn Store>, state: Arc<dyn State>) -> StateResult<Self> {
        crate::state::load_revocations(&*store, &*state).await?;
        Ok(Self { store, state })
    }

    pub async fn revoke(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StateResult<()> {
        self.store.revoke_token(token_hash, expires_at).await?;
        self.state.revoke(token_hash, expires_at).await
    }

    pub async fn is_revoked(&self, token_hash: &str) -> StateResult<bool> {
        self.state.is_revoked(token_hash, Utc::now()).await
    }
}
