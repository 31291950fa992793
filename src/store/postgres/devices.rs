//! Devices users log in from, and the device tokens bound to them.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{col, execute, pg, query, query_opt, PostgresStore};
use crate::store::{DeviceRecord, DeviceStore, StoreResult};

const DEVICE_COLUMNS: &str = "id, user_id, user_agent, ip_network, last_ip, first_seen, last_seen, token_jtis";

fn device_from_row(row: &Row) -> StoreResult<DeviceRecord> {
    Ok(DeviceRecord {
        id: col(row, 0)?,
        user_id: col(row, 1)?,
        user_agent: col(row, 2)?,
        ip_network: col(row, 3)?,
        last_ip: col(row, 4)?,
        first_seen: col(row, 5)?,
        last_seen: col(row, 6)?,
        token_jtis: col(row, 7)?,
    })
}

/// Inserts a device unless the user already has it; true when inserted.
pub(super) async fn insert_device(c: &impl GenericClient, d: &DeviceRecord) -> StoreResult<bool> {
    let n = execute(
        c,
        "INSERT INTO devices (id, user_id, user_agent, ip_network, last_ip, first_seen, last_seen, token_jtis)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (user_id, id) DO NOTHING",
        &[
            &d.id,
            &d.user_id,
            &d.user_agent,
            &d.ip_network,
            &d.last_ip,
            &d.first_seen,
            &d.last_seen,
            &d.token_jtis,
        ],
    )
    .await?;
    Ok(n == 1)
}

#[async_trait]
impl DeviceStore for PostgresStore {
    async fn touch_device(&self, device: DeviceRecord) -> StoreResult<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if insert_device(&tx, &device).await? {
            tx.commit().await.map_err(pg)?;
            return Ok(true);
        }
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 AND id = $2 FOR UPDATE");
        let Some(row) = query_opt(&tx, &sql, &[&device.user_id, &device.id]).await? else {
            // Removed between the two statements: the next sighting adds it.
            return Ok(false);
        };
        let mut known = device_from_row(&row)?;
        known.last_seen = device.last_seen;
        known.last_ip = device.last_ip;
        for jti in device.token_jtis {
            known.bind_token(jti);
        }
        execute(
            &tx,
            "UPDATE devices SET last_seen = $3, last_ip = $4, token_jtis = $5 WHERE user_id = $1 AND id = $2",
            &[
                &known.user_id,
                &known.id,
                &known.last_seen,
                &known.last_ip,
                &known.token_jtis,
            ],
        )
        .await?;
        tx.commit().await.map_err(pg)?;
        Ok(false)
    }

    async fn user_devices(&self, user_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 ORDER BY last_seen DESC");
        query(&client, &sql, &[&user_id])
            .await?
            .iter()
            .map(device_from_row)
            .collect()
    }

    async fn device(&self, user_id: &str, device_id: &str) -> StoreResult<Option<DeviceRecord>> {
        let client = self.client().await?;
        let sql = format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE user_id = $1 AND id = $2");
        query_opt(&client, &sql, &[&user_id, &device_id])
            .await?
            .map(|row| device_from_row(&row))
            .transpose()
    }

    async fn remove_device(&self, user_id: &str, device_id: &str) -> StoreResult<bool> {
        let client = self.client().await?;
        let n = execute(
            &client,
            "DELETE FROM devices WHERE user_id = $1 AND id = $2",
            &[&user_id, &device_id],
        )
        .await?;
        Ok(n == 1)
    }
}
