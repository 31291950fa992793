//! Positions, the transaction ledger and idempotent orders.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use rust_decimal::Decimal;
use tokio_postgres::Row;

use super::{col, execute, pg, query, query_opt, PostgresStore};
use crate::domain::portfolio::{Order, Position, Side, Transaction};
use crate::store::{IdempotencyKey, OrderOutcome, OrderReceipt, PortfolioStore, StoreError, StoreResult};

const POSITION_COLUMNS: &str = "symbol, quantity, cost_basis, realized_pnl, last_trade_price";

fn position_from_row(row: &Row) -> StoreResult<Position> {
    Ok(Position {
        symbol: col(row, 0)?,
        quantity: col(row, 1)?,
        cost_basis: col(row, 2)?,
        realized_pnl: col(row, 3)?,
        last_trade_price: col(row, 4)?,
    })
}

const TRANSACTION_COLUMNS: &str = "id, side, symbol, quantity, price, fee, total, realized_pnl, executed_at";

fn transaction_from_row(row: &Row) -> StoreResult<Transaction> {
    let side = match col::<&str>(row, 1)? {
        "buy" => Side::Buy,
        "sell" => Side::Sell,
        other => {
            return Err(StoreError::Corrupt {
                table: "transactions",
                reason: format!("side {other:?}"),
            })
        }
    };
    Ok(Transaction {
        id: col(row, 0)?,
        side,
        symbol: col(row, 2)?,
        quantity: col(row, 3)?,
        price: col(row, 4)?,
        fee: col(row, 5)?,
        total: col(row, 6)?,
        realized_pnl: col(row, 7)?,
        executed_at: col(row, 8)?,
    })
}

pub(super) async fn write_position(c: &impl GenericClient, user_id: &str, p: &Position) -> StoreResult<()> {
    execute(
        c,
        "INSERT INTO positions (user_id, symbol, quantity, cost_basis, realized_pnl, last_trade_price)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (user_id, symbol) DO UPDATE
            SET quantity = excluded.quantity, cost_basis = excluded.cost_basis,
                realized_pnl = excluded.realized_pnl, last_trade_price = excluded.last_trade_price",
        &[
            &user_id,
            &p.symbol,
            &p.quantity,
            &p.cost_basis,
            &p.realized_pnl,
            &p.last_trade_price,
        ],
    )
    .await
    .map(drop)
}

pub(super) async fn insert_transaction(c: &impl GenericClient, user_id: &str, t: &Transaction) -> StoreResult<()> {
    execute(
        c,
        "INSERT INTO transactions (user_id, id, side, symbol, quantity, price, fee, total, realized_pnl, executed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &user_id,
            &t.id,
            &t.side.as_str(),
            &t.symbol,
            &t.quantity,
            &t.price,
            &t.fee,
            &t.total,
            &t.realized_pnl,
            &t.executed_at,
        ],
    )
    .await
    .map(drop)
}

/// Stores an idempotent answer as it is (also used by `admin migrate`).
pub(super) async fn write_answer(
    c: &impl GenericClient,
    user_id: &str,
    key: &str,
    fingerprint: &str,
    receipt: &OrderReceipt,
    stored_at: DateTime<Utc>,
) -> StoreResult<()> {
    let receipt = serde_json::to_value(receipt).map_err(|e| StoreError::backend(format!("receipt: {e}")))?;
    execute(
        c,
        "INSERT INTO idempotency (user_id, key, fingerprint, receipt, stored_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (user_id, key) DO UPDATE SET fingerprint = excluded.fingerprint,
                                                  receipt = excluded.receipt, stored_at = excluded.stored_at",
        &[&user_id, &key, &fingerprint, &receipt, &stored_at],
    )
    .await
    .map(drop)
}

#[async_trait]
impl PortfolioStore for PostgresStore {
    async fn execute_order(
        &self,
        user_id: &str,
        order: Order,
        market_price: Option<Decimal>,
        idempotency: Option<IdempotencyKey>,
    ) -> StoreResult<OrderOutcome> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg)?;
        if let Some(idem) = &idempotency {
            // Claiming the key first makes a concurrent duplicate wait on
            // its primary key until this order commits (then it replays
            // the receipt) or rolls back (then it runs itself).
            let claimed = execute(
                &tx,
                "INSERT INTO idempotency (user_id, key, fingerprint, stored_at) VALUES ($1, $2, $3, now())
                 ON CONFLICT (user_id, key) DO NOTHING",
                &[&user_id, &idem.key, &idem.fingerprint],
            )
            .await?;
            if claimed == 0 {
                let row = query_opt(
                    &tx,
                    "SELECT fingerprint, receipt FROM idempotency WHERE user_id = $1 AND key = $2",
                    &[&user_id, &idem.key],
                )
                .await?;
                if let Some(row) = row {
                    let fingerprint: String = col(&row, 0)?;
                    let receipt: Option<serde_json::Value> = col(&row, 1)?;
                    let receipt = receipt
                        .map(serde_json::from_value::<OrderReceipt>)
                        .transpose()
                        .map_err(|e| StoreError::Corrupt {
                            table: "idempotency",
                            reason: e.to_string(),
                        })?;
                    if let Some(receipt) = receipt {
                        return Ok(if fingerprint == idem.fingerprint {
                            OrderOutcome::Replayed(receipt)
                        } else {
                            OrderOutcome::IdempotencyConflict
                        });
                    }
                }
            }
        }
        // Lock the position row (creating an empty one first, so the first
        // buy of a symbol is serialised too; a rejected order rolls it back).
        execute(
            &tx,
            "INSERT INTO positions (user_id, symbol, quantity, cost_basis, realized_pnl, last_trade_price)
             VALUES ($1, $2, 0, 0, 0, 0) ON CONFLICT (user_id, symbol) DO NOTHING",
            &[&user_id, &order.symbol],
        )
        .await?;
        let sql = format!("SELECT {POSITION_COLUMNS} FROM positions WHERE user_id = $1 AND symbol = $2 FOR UPDATE");
        let row = query_opt(&tx, &sql, &[&user_id, &order.symbol])
            .await?
            .ok_or_else(|| StoreError::backend("the position row vanished inside its transaction"))?;
        // An empty row is the same starting point as no position at all.
        let current = position_from_row(&row)?;
        let (position, txn) = match crate::domain::portfolio::execute_order(Some(&current), &order) {
            Ok(v) => v,
            Err(e) => return Ok(OrderOutcome::Rejected(e)),
        };
        write_position(&tx, user_id, &position).await?;
        insert_transaction(&tx, user_id, &txn).await?;
        let receipt = OrderReceipt {
            transaction: txn,
            position,
            market_price,
        };
        if let Some(idem) = &idempotency {
            write_answer(
                &tx,
                user_id,
                &idem.key,
                &idem.fingerprint,
                &receipt,
                receipt.transaction.executed_at,
            )
            .await?;
        }
        tx.commit().await.map_err(pg)?;
        Ok(OrderOutcome::Executed(receipt))
    }

    async fn positions(&self, user_id: &str) -> StoreResult<Vec<Position>> {
        let client = self.client().await?;
        let sql = format!("SELECT {POSITION_COLUMNS} FROM positions WHERE user_id = $1 ORDER BY symbol");
        query(&client, &sql, &[&user_id])
            .await?
            .iter()
            .map(position_from_row)
            .collect()
    }

    async fn transactions(
        &self,
        user_id: &str,
        symbol: Option<&str>,
        before_id: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Transaction>> {
        let client = self.client().await?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!(
            "SELECT {TRANSACTION_COLUMNS} FROM transactions
              WHERE user_id = $1 AND ($2::text IS NULL OR symbol = $2) AND ($3::text IS NULL OR id < $3)
           ORDER BY id DESC
              LIMIT $4"
        );
        query(&client, &sql, &[&user_id, &symbol, &before_id, &limit])
            .await?
            .iter()
            .map(transaction_from_row)
            .collect()
    }
}
