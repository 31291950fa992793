//! Sessions, refresh-token rotation and the revocation list.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::users::{user_from_row, USER_COLUMNS, USER_WIDTH};
use super::{col, count, execute, pg, query, query_opt, PostgresStore};
use crate::store::{RefreshRecord, RevocationStore, Rotation, SessionRecord, SessionStore, StoreResult, UserRecord};

/// The columns [`session_from_row`] reads, in its order.
const SESSION_COLUMNS: &str =
    "s.id, s.user_id, s.created_at, s.last_used_at, s.ip, s.user_agent, s.expires_at, s.revoked_at, \
     s.reauthenticated_at";

fn session_from_row(row: &Row, at: usize) -> StoreResult<SessionRecord> {
    Ok(SessionRecord {
        id: col(row, at)?,
        user_id: col(row, at + 1)?,
        created_at: col(row, at + 2)?,
        last_used_at: col(row, at + 3)?,
        ip: col(row, at + 4)?,
        user_agent: col(row, at + 5)?,
        expires_at: col(row, at + 6)?,
        revoked_at: col(row, at + 7)?,
        reauthenticated_at: col(row, at + 8)?,
    })
}

pub(super) async fn insert_session(c: &impl GenericClient, s: &SessionRecord) -> StoreResult<()> {
    execute(
        c,
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, ip, user_agent, expires_at, revoked_at,
                               reauthenticated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[
            &s.id,
            &s.user_id,
            &s.created_at,
            &s.last_used_at,
            &s.ip,
            &s.user_agent,
            &s.expires_at,
            &s.revoked_at,
            &s.reauthenticated_at,
        ],
    )
    .await
    .map(drop)
}

pub(super) async fn insert_refresh(c: &impl GenericClient, hash: &str, r: &RefreshRecord) -> StoreResult<()> {
    execute(
        c,
        "INSERT INTO refresh_tokens (token_hash, session_id, user_id, expires_at, rotated_at)
         VALUES ($1, $2, $3, $4, $5)",
        &[&hash, &r.session_id, &r.user_id, &r.expires_at, &r.rotated_at],
    )
    .await
    .map(drop)
}

/// Ends a session if it is active; true when it was.
async fn end_session(c: &impl GenericClient, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
    let n = execute(
        c,
        "UPDATE sessions SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
        &[&id, &now],
    )
    .await?;
    Ok(n == 1)
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(
        &self,
        session: SessionRecord,
        refresh_hash: String,
        refresh: RefreshRecord,
    ) -> StoreResult<Option<UserRecord>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let sql = format!("UPDATE users u SET last_login_at = $2 WHERE u.id = $1 RETURNING {USER_COLUMNS}");
        let Some(row) = query_opt(&tx, &sql, &[&session.user_id, &session.created_at]).await? else {
            return Ok(None);
        };
        let user = user_from_row(&row, 0)?;
        insert_session(&tx, &session).await?;
        insert_refresh(&tx, &refresh_hash, &refresh).await?;
        tx.commit().await.map_err(pg)?;
        Ok(Some(user))
    }

    async fn session(&self, id: &str) -> StoreResult<Option<SessionRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions s WHERE s.id = $1");
        query_opt(&client, &sql, &[&id])
            .await?
            .map(|row| session_from_row(&row, 0))
            .transpose()
    }

    async fn session_with_user(&self, id: &str) -> StoreResult<Option<(SessionRecord, UserRecord)>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {USER_COLUMNS}, {SESSION_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1"
        );
        let Some(row) = query_opt(&client, &sql, &[&id]).await? else {
            return Ok(None);
        };
        Ok(Some((session_from_row(&row, USER_WIDTH)?, user_from_row(&row, 0)?)))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new_hash: String,
        new_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let Some(old) = query_opt(
            &tx,
            "SELECT session_id, user_id, expires_at, rotated_at FROM refresh_tokens WHERE token_hash = $1 FOR UPDATE",
            &[&old_hash],
        )
        .await?
        else {
            return Ok(Rotation::Invalid);
        };
        let session_id: String = col(&old, 0)?;
        let user_id: String = col(&old, 1)?;
        let expires_at: DateTime<Utc> = col(&old, 2)?;
        let rotated_at: Option<DateTime<Utc>> = col(&old, 3)?;
        if rotated_at.is_some() {
            end_session(&tx, &session_id, now).await?;
            tx.commit().await.map_err(pg)?;
            return Ok(Rotation::Reused { session_id, user_id });
        }
        if expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        let sql = format!(
            "UPDATE sessions s SET last_used_at = $2, expires_at = $3
              WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
          RETURNING {SESSION_COLUMNS}"
        );
        let Some(row) = query_opt(&tx, &sql, &[&session_id, &now, &new_expires_at]).await? else {
            return Ok(Rotation::Invalid);
        };
        let session = session_from_row(&row, 0)?;
        execute(
            &tx,
            "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1",
            &[&old_hash, &now],
        )
        .await?;
        let new = RefreshRecord {
            session_id,
            user_id,
            expires_at: new_expires_at,
            rotated_at: None,
        };
        insert_refresh(&tx, &new_hash, &new).await?;
        tx.commit().await.map_err(pg)?;
        Ok(Rotation::Rotated(session))
    }

    async fn revoke_session(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let client = self.client().await?;
        end_session(&client, id, now).await
    }

    async fn revoke_user_sessions(
        &self,
        user_id: &str,
        keep: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        let ended = query(
            &tx,
            "UPDATE sessions SET revoked_at = $3
              WHERE user_id = $1 AND id IS DISTINCT FROM $2 AND revoked_at IS NULL AND expires_at > $3
          RETURNING id",
            &[&user_id, &keep, &now],
        )
        .await?
        .iter()
        .map(|row| col::<String>(row, 0))
        .collect::<StoreResult<Vec<_>>>()?;
        execute(
            &tx,
            "UPDATE devices SET token_jtis = '{}' WHERE user_id = $1 AND token_jtis <> '{}'",
            &[&user_id],
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(ended)
    }

    async fn user_sessions(&self, user_id: &str, now: DateTime<Utc>) -> StoreResult<Vec<SessionRecord>> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions s
              WHERE s.user_id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2
           ORDER BY s.created_at DESC"
        );
        query(&client, &sql, &[&user_id, &now])
            .await?
            .iter()
            .map(|row| session_from_row(row, 0))
            .collect()
    }

    async fn mark_reauthenticated(&self, id: &str, now: DateTime<Utc>) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = execute(
            &client,
            "UPDATE sessions SET reauthenticated_at = $2
              WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2",
            &[&id, &now],
        )
        .await?;
        Ok(n == 1)
    }

    async fn active_session_count(&self, now: DateTime<Utc>) -> StoreResult<usize> {
        let client = self.client().await?;
        let sql = "SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > $1";
        count(&client, "sessions", sql, &[&now]).await
    }
}

#[async_trait]
impl RevocationStore for PostgresStore {
    async fn revoke_token(&self, token_hash: &str, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let client = self.client().await?;
        execute(
            &client,
            "INSERT INTO revoked_tokens (token_hash, expires_at) VALUES ($1, $2)
             ON CONFLICT (token_hash) DO UPDATE SET expires_at = greatest(revoked_tokens.expires_at, excluded.expires_at)",
            &[&token_hash, &expires_at],
        )
        .await
        .map(drop)
    }

    async fn live_revocations(&self, now: DateTime<Utc>) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
        let client = self.client().await?;
        execute(&client, "DELETE FROM revoked_tokens WHERE expires_at <= $1", &[&now]).await?;
        query(
            &client,
            "SELECT token_hash, expires_at FROM revoked_tokens WHERE expires_at > $1",
            &[&now],
        )
        .await?
        .iter()
        .map(|row| Ok((col(row, 0)?, col(row, 1)?)))
        .collect()
    }
}
