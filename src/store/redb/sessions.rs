//! Sessions, refresh-token rotation and the revocation list.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use redb::{ReadableTable, WriteTransaction};

use super::devices::retire_device_tokens;
use super::*;

fn end_session(tx: &WriteTransaction, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    let mut t = tx.open_table(SESSIONS).map_err(backend)?;
    let Some(mut s) = get::<SessionRecord>(&t, "sessions", id)? else {
        return Ok(false);
    };
    if !s.is_active(now) {
        return Ok(false);
    }
    s.revoked_at = Some(now);
    let bytes = encode(&s)?;
    t.insert(id, bytes.as_slice()).map_err(backend)?;
    Ok(true)
}

/// [`SessionStore::create_session`] inside `tx`.
pub(super) fn create_session_in(
    tx: &WriteTransaction,
    session: &SessionRecord,
    refresh_hash: &str,
    refresh: &RefreshRecord,
) -> StoreResult<Option<UserRecord>> {
    put(tx, SESSIONS, &session.id, session)?;
    let key = format!("{}/{}", session.user_id, session.id);
    let mut us = tx.open_table(USER_SESSIONS).map_err(backend)?;
    us.insert(key.as_str(), [].as_slice()).map_err(backend)?;
    drop(us);
    put(tx, REFRESH_TOKENS, refresh_hash, refresh)?;
    let mut users = tx.open_table(USERS).map_err(backend)?;
    let Some(mut user) = get::<UserRecord>(&users, "users", &session.user_id)? else {
        return Ok(None);
    };
    user.last_login_at = Some(session.created_at);
    users
        .insert(user.id.as_str(), encode(&user)?.as_slice())
        .map_err(backend)?;
    Ok(Some(user))
}

#[async_trait]
impl SessionStore for RedbStore {
    async fn create_session(
        &self,
        session: SessionRecord,
        refresh_hash: String,
        refresh: RefreshRecord,
    ) -> StoreResult<Option<UserRecord>> {
        self.write(move |tx| create_session_in(tx, &session, &refresh_hash, &refresh))
            .await
    }

    async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        self.read(SESSIONS, "sessions", id)
    }

    async fn session_with_user(&self, id: &str) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        let tx = self.db.begin_read().map_err(backend)?;
        let sessions = tx.open_table(SESSIONS).map_err(backend)?;
        let Some(session) = get::<SessionRecord>(&sessions, "sessions", id)? else {
            return Ok(None);
        };
        let users = tx.open_table(USERS).map_err(backend)?;
        Ok(get::<UserRecord>(&users, "users", &session.user_id)?.map(|u| (session, u)))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: String,
        new_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        let old_hash = old_hash.to_string();
        self.write(move |tx| {
            let mut tokens = tx.open_table(REFRESH_TOKENS).map_err(backend)?;
            let Some(mut old) = get::<RefreshRecord>(&tokens, "refresh_tokens", &old_hash)? else {
                return Ok(Rotation::Invalid);
            };
            if old.rotated_at.is_some() {
                drop(tokens);
                end_session(tx, &old.session_id, now)?;
                return Ok(Rotation::Reused {
                    session_id: old.session_id,
                    user_id: old.user_id,
                });
            }
            if old.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            let mut sessions = tx.open_table(SESSIONS).map_err(backend)?;
            let Some(mut session) = get::<SessionRecord>(&sessions, "sessions", &old.session_id)? else {
                return Ok(Rotation::Invalid);
            };
            if !session.is_active(now) {
                return Ok(Rotation::Invalid);
            }
            old.rotated_at = Some(now);
            tokens
                .insert(old_hash.as_str(), encode(&old)?.as_slice())
                .map_err(backend)?;
            let new = RefreshRecord {
                session_id: session.id.clone(),
                user_id: session.user_id.clone(),
                expires_at: new_expires_at,
                rotated_at: None,
            };
            tokens
                .insert(new_hash.as_str(), encode(&new)?.as_slice())
                .map_err(backend)?;
            session.last_used_at = now;
            session.expires_at = new_expires_at;
            sessions
                .insert(session.id.as_str(), encode(&session)?.as_slice())
                .map_err(backend)?;
            Ok(Rotation::Rotated(session))
        })
        .await
    }

    async fn revoke_session(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |tx| end_session(tx, &id, now)).await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let prefix = format!("{user_id}/");
        let keep = keep.map(str::to_string);
        self.write(move |tx| {
            let ids: Vec<String> = {
                let us = tx.open_table(USER_SESSIONS).map_err(backend)?;
                let end = prefix_end(&prefix);
                let mut ids = Vec::new();
                for row in us.range(prefix.as_str()..end.as_str()).map_err(backend)? {
                    let (k, _) = row.map_err(backend)?;
                    ids.push(k.value()[prefix.len()..].to_string());
                }
                ids
            };
            let mut ended = Vec::new();
            for id in ids {
                if keep.as_deref() == Some(id.as_str()) {
                    continue;
                }
                if end_session(tx, &id, now)? {
                    ended.push(id);
                }
            }
            retire_device_tokens(tx, &prefix)?;
            Ok(ended)
        })
        .await
    }

    async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>> {
        let prefix = format!("{user_id}/");
        let end = prefix_end(&prefix);
        let tx = self.db.begin_read().map_err(backend)?;
        let us = tx.open_table(USER_SESSIONS).map_err(backend)?;
        let sessions = tx.open_table(SESSIONS).map_err(backend)?;
        let mut out = Vec::new();
        for row in us.range(prefix.as_str()..end.as_str()).map_err(backend)? {
            let (k, _) = row.map_err(backend)?;
            let id = &k.value()[prefix.len()..];
            if let Some(s) = get::<SessionRecord>(&sessions, "sessions", id)? {
                if s.is_active(now) {
                    out.push(s);
                }
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.created_at));
        Ok(out)
    }

    async fn mark_reauthenticated(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let id = id.to_string();
        self.write(move |tx| {
            let mut t = tx.open_table(SESSIONS).map_err(backend)?;
            let Some(mut s) = get::<SessionRecord>(&t, "sessions", &id)? else {
                return Ok(false);
            };
            if !s.is_active(now) {
                return Ok(false);
            }
            s.reauthenticated_at = Some(now);
            t.insert(id.as_str(), encode(&s)?.as_slice()).map_err(backend)?;
            Ok(true)
        })
        .await
    }

    async fn active_session_count(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(SESSIONS).map_err(backend)?;
        let mut n = 0;
        for row in t.iter().map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            if decode::<SessionRecord>("sessions", v.value())?.is_active(now) {
                n += 1;
            }
        }
        Ok(n)
    }
}

#[async_trait]
impl RevocationStore for RedbStore {
    async fn revoke_token(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let key = token_hash.to_string();
        self.write(move |tx| put(tx, REVOKED_TOKENS, &key, &expires_at)).await
    }

    async fn live_revocations(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        self.write(move |tx| {
            let mut t = tx.open_table(REVOKED_TOKENS).map_err(backend)?;
            let mut live = Vec::new();
            let mut expired = Vec::new();
            for row in t.iter().map_err(backend)? {
                let (k, v) = row.map_err(backend)?;
                let exp: DateTime<Utc> = decode("revoked_tokens", v.value())?;
                if exp > now {
                    live.push((k.value().to_string(), exp));
                } else {
                    expired.push(k.value().to_string());
                }
            }
            for k in expired {
                t.remove(k.as_str()).map_err(backend)?;
            }
            Ok(live)
        })
        .await
    }
}
