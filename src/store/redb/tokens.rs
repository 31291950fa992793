//! Mailed account tokens (verification, reset, email change), keyed by the
//! token's SHA-256, with an index `<user>/<purpose>/<hash>` to retire a
//! user's older tokens.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, WriteTransaction};

use super::*;
use crate::store::{AccountToken, AccountTokenStore, TokenPurpose};

fn index_key(user_id: &str, purpose: TokenPurpose, hash: &str) -> String {
    format!("{user_id}/{}/{hash}", purpose.as_str())
}

/// Removes the user's tokens of `purpose`; returns how many.
fn retire(tx: &WriteTransaction, user_id: &str, purpose: TokenPurpose) -> StoreResult<usize> {
    let prefix = format!("{user_id}/{}/", purpose.as_str());
    let mut index = tx.open_table(USER_ACCOUNT_TOKENS).map_err(backend)?;
    let mut keys = Vec::new();
    for row in index
        .range(prefix.as_str()..prefix_end(&prefix).as_str())
        .map_err(backend)?
    {
        let (k, _) = row.map_err(backend)?;
        keys.push(k.value().to_string());
    }
    let mut tokens = tx.open_table(ACCOUNT_TOKENS).map_err(backend)?;
    for key in &keys {
        index.remove(key.as_str()).map_err(backend)?;
        tokens.remove(&key[prefix.len()..]).map_err(backend)?;
    }
    Ok(keys.len())
}

/// Removes one token and its index row; returns it if it was there.
fn take(tx: &WriteTransaction, hash: &str) -> StoreResult<Option<AccountToken>> {
    let mut tokens = tx.open_table(ACCOUNT_TOKENS).map_err(backend)?;
    let Some(token) = get::<AccountToken>(&tokens, "account_tokens", hash)? else {
        return Ok(None);
    };
    tokens.remove(hash).map_err(backend)?;
    let mut index = tx.open_table(USER_ACCOUNT_TOKENS).map_err(backend)?;
    index
        .remove(index_key(&token.user_id, token.purpose, hash).as_str())
        .map_err(backend)?;
    Ok(Some(token))
}

/// Removes the tokens expired at `now`; returns how many.
pub(super) fn purge_expired_tokens(tx: &WriteTransaction, now: DateTime<Utc>) -> StoreResult<usize> {
    let mut expired = Vec::new();
    {
        let tokens = tx.open_table(ACCOUNT_TOKENS).map_err(backend)?;
        for row in tokens.iter().map_err(backend)? {
            let (k, v) = row.map_err(backend)?;
            if decode::<AccountToken>("account_tokens", v.value())?.expires_at <= now {
                expired.push(k.value().to_string());
            }
        }
    }
    for hash in &expired {
        take(tx, hash)?;
    }
    Ok(expired.len())
}

#[async_trait]
impl AccountTokenStore for RedbStore {
    async fn put_account_token(&self, hash: String, token: AccountToken, retire_others: bool) -> StoreResult<()> {
        self.write(move |tx| {
            if retire_others {
                retire(tx, &token.user_id, token.purpose)?;
            }
            let mut index = tx.open_table(USER_ACCOUNT_TOKENS).map_err(backend)?;
            index
                .insert(index_key(&token.user_id, token.purpose, &hash).as_str(), [].as_slice())
                .map_err(backend)?;
            drop(index);
            put(tx, ACCOUNT_TOKENS, &hash, &token)
        })
        .await
    }

    async fn account_token(&self, hash: &str) -> StoreResult<Option<AccountToken>> {
        self.read(ACCOUNT_TOKENS, "account_tokens", hash)
    }

    async fn take_account_token(&self, hash: &str) -> StoreResult<Option<AccountToken>> {
        let hash = hash.to_string();
        self.write(move |tx| take(tx, &hash)).await
    }

    async fn retire_account_tokens(&self, user_id: &str, purpose: TokenPurpose) -> StoreResult<usize> {
        let user_id = user_id.to_string();
        self.write(move |tx| retire(tx, &user_id, purpose)).await
    }
}
