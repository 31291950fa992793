//! Orders, positions and the ledger, with idempotent replays.

use async_trait::async_trait;

use super::*;

#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct StoredAnswer {
    pub(super) fingerprint: String,
    /// Absent in answers stored before receipts were typed: such a key is
    /// treated as unused (they expired within a day of the upgrade).
    #[serde(default)]
    pub(super) receipt: Option<OrderReceipt>,
    /// When the answer was stored (unix seconds); answers from before this
    /// field existed count as old.
    #[serde(default)]
    pub(super) stored_at: i64,
}

#[async_trait]
impl PortfolioStore for RedbStore {
    async fn execute_order(
        &self,
        user_id: &str,
        order: Order,
        market_price: Option<rust_decimal::Decimal>,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<OrderOutcome> {
        let user_id = user_id.to_string();
        self.write(move |tx| {
            let idem_key = idempotency.as_ref().map(|k| format!("{user_id}/{}", k.key));
            if let (Some(key), Some(idem)) = (&idem_key, &idempotency) {
                let t = tx.open_table(IDEMPOTENCY).map_err(backend)?;
                if let Some(stored) = get::<StoredAnswer>(&t, "idempotency", key)? {
                    if let Some(receipt) = stored.receipt {
                        return Ok(if stored.fingerprint == idem.fingerprint {
                            OrderOutcome::Replayed(receipt)
                        } else {
                            OrderOutcome::IdempotencyConflict
                        });
                    }
                }
            }
            let pos_key = format!("{user_id}/{}", order.symbol);
            let mut positions = tx.open_table(POSITIONS).map_err(backend)?;
            let current = get::<Position>(&positions, "positions", &pos_key)?;
            let (position, txn) = match crate::domain::portfolio::execute_order(current.as_ref(), &order) {
                Ok(v) => v,
                Err(e) => return Ok(OrderOutcome::Rejected(e)),
            };
            positions
                .insert(pos_key.as_str(), encode(&position)?.as_slice())
                .map_err(backend)?;
            drop(positions);
            put(tx, TRANSACTIONS, &format!("{user_id}/{}", txn.id), &txn)?;
            let receipt = OrderReceipt {
                transaction: txn,
                position,
                market_price,
            };
            if let (Some(key), Some(idem)) = (idem_key, idempotency) {
                let stored = StoredAnswer {
                    fingerprint: idem.fingerprint,
                    receipt: Some(receipt.clone()),
                    stored_at: receipt.transaction.executed_at.timestamp(),
                };
                put(tx, IDEMPOTENCY, &key, &stored)?;
            }
            Ok(OrderOutcome::Executed(receipt))
        })
        .await
    }

    async fn positions(&self, user_id: &str) -> StoreResult<Vec<Position>> {
        let prefix = format!("{user_id}/");
        let end = prefix_end(&prefix);
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(POSITIONS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range(prefix.as_str()..end.as_str()).map_err(backend)? {
            let (_, v) = row.map_err(backend)?;
            out.push(decode("positions", v.value())?);
        }
        Ok(out)
    }

    async fn transactions(
        &self,
        user_id: &str,
        symbol: Option<&str>,
        before_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Transaction>> {
        let prefix = format!("{user_id}/");
        let end = match before_id {
            Some(b) => format!("{prefix}{b}"),
            None => prefix_end(&prefix),
        };
        let tx = self.db.begin_read().map_err(backend)?;
        let t = tx.open_table(TRANSACTIONS).map_err(backend)?;
        let mut out = Vec::new();
        for row in t.range(prefix.as_str()..end.as_str()).map_err(backend)?.rev() {
            let (_, v) = row.map_err(backend)?;
            let txn: Transaction = decode("transactions", v.value())?;
            if symbol.is_none_or(|s| s == txn.symbol) {
                out.push(txn);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }
}
