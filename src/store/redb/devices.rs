//! Devices and the device tokens bound to them.

use async_trait::async_trait;
use redb::{ReadableTable, WriteTransaction};

use super::*;

/// [`DeviceStore::touch_device`] inside `tx`.
pub(super) fn touch_device_in(tx: &WriteTransaction, device: DeviceRecord) -> StoreResult<bool> {
    let mut t = tx.open_table(DEVICES).map_err(backend)?;
    let key = format!("{}/{}", device.user_id, device.id);
    let (record, new) = match get::<DeviceRecord>(&t, "devices", &key)? {
        Some(mut known) => {
            known.last_seen = device.last_seen;
            known.last_ip = device.last_ip.clone();
            for jti in &device.token_jtis {
                known.bind_token(jti.clone());
            }
            (known, false)
        }
        None => (device, true),
    };
    t.insert(key.as_str(), encode(&record)?.as_slice()).map_err(backend)?;
    Ok(new)
}

#[async_trait]
impl DeviceStore for RedbStore {
    async fn touch_device(&self, device: DeviceRecord) -> StoreResult<bool> {
        self.write(move |tx| touch_device_in(tx, device)).await
    }

    async fn user_devices(&self, user_id: &str) -> StoreResult<Vec<DeviceRecord>> {
        let prefix = format!("{user_id}/");
        let end = prefix_end(&prefix);
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(DEVICES).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range(prefix.as_str()..end.as_str()).map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(decode::<DeviceRecord>("devices", v.value())?);
        }
        out.sort_by_key(|d| std::cmp::Reverse(d.last_seen));
        Ok(out)
    }

    async fn device(&self, user_id: &str, device_id: &str) -> StoreResult<Option<DeviceRecord>> {
        self.read(DEVICES, "devices", &format!("{user_id}/{device_id}"))
    }

    async fn remove_device(&self, user_id: &str, device_id: &str) -> StoreResult<bool> {
        let key = format!("{user_id}/{device_id}");
        self.write(move |tx| {
            let mut t = tx.open_table(DEVICES).map_err(backend)?;
            let removed = t.remove(key.as_str()).map_err(backend)?.is_some();
            Ok(removed)
        })
        .await
    }
}

/// Unbinds every device token of the user whose keys start with `prefix`.
pub(super) fn retire_device_tokens(tx: &WriteTransaction, prefix: &str) -> StoreResult<()> {
    let mut t = tx.open_table(DEVICES).map_err(backend)?;
    let end = prefix_end(prefix);
    let mut bound = Vec::new();
    for row in t.range(prefix..end.as_str()).map_err(backend)? {
        let (k, v) = row.map_err(backend)?;
        let device: DeviceRecord = decode("devices", v.value())?;
        if !device.token_jtis.is_empty() {
            bound.push((k.value().to_string(), device));
        }
    }
    for (key, mut device) in bound {
        device.token_jtis.clear();
        t.insert(key.as_str(), encode(&device)?.as_slice()).map_err(backend)?;
    }
    Ok(())
}
