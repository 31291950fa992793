//! The portfolio service (SPEC §3): checks an order's amounts, resolves its
//! price, executes it once per `Idempotency-Key`, and values positions at
//! the latest prices. Answers are typed views; the http layer only parses
//! and renders.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use rust_decimal::Decimal;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::valuations::Valuations;
use crate::domain::portfolio::{
    amount, max_amount, max_holding, money, LedgerError, Order, Position, Side, Transaction,
};
use crate::domain::{rfc3339, Symbol};
use crate::market::service::Market;
use crate::state::StateError;
use crate::store::{IdempotencyKey, OrderOutcome, OrderReceipt, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PortfolioError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    #[error("no price is known for {symbol}; give an explicit price")]
    PriceUnavailable { symbol: String },
    #[error("cannot sell {} {symbol}: {} held", amount(*wanted), amount(*held))]
    InsufficientQuantity {
        symbol: String,
        held: Decimal,
        wanted: Decimal,
    },
    #[error(
        "quantity × price may be at most {}, and a position's quantity, cost basis and realized P&L at most {}",
        max_amount(),
        max_holding()
    )]
    OutOfRange,
    #[error("this Idempotency-Key was already used with a different order")]
    IdempotencyConflict,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Internal(String),
}

pub type PortfolioResult<T> = Result<T, PortfolioError>;

fn invalid(field: &'static str, message: String) -> PortfolioError {
    PortfolioError::Invalid { field, message }
}

/// An order as the client asked for it (amounts parsed, nothing checked).
#[derive(Debug, Clone)]
pub struct OrderRequest {
    pub side: Side,
    pub symbol: String,
    pub quantity: Decimal,
    pub price: Option<Decimal>,
    pub fee: Option<Decimal>,
    pub idempotency_key: Option<String>,
}

/// A position as the API shows it. A figure beyond the decimal range (only
/// with an absurd market price, or a position stored before the ledger's
/// bounds) is `null`.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = Position)]
pub struct PositionView {
    #[schema(example = "AAPL")]
    pub symbol: String,
    #[schema(value_type = crate::domain::schema::Money)]
    pub quantity: String,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub average_cost: Option<String>,
    #[schema(value_type = crate::domain::schema::Money)]
    pub cost_basis: String,
    /// The market's latest price, or the last trade's for manual assets.
    #[schema(value_type = crate::domain::schema::Money)]
    pub last_price: String,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub market_value: Option<String>,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub unrealized_pnl: Option<String>,
    /// Percent of the cost basis, 4 places.
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub unrealized_pnl_pct: Option<String>,
    #[schema(value_type = crate::domain::schema::Money)]
    pub realized_pnl: String,
}

impl PositionView {
    /// Values `p` at `price` (the market's), or at its last trade.
    pub fn new(p: &Position, price: Option<Decimal>) -> Self {
        let price = price.unwrap_or(p.last_trade_price);
        let value = p.quantity.checked_mul(price);
        let unrealized = value.and_then(|v| v.checked_sub(p.cost_basis));
        let pct = if p.cost_basis.is_zero() {
            Some(Decimal::ZERO)
        } else {
            unrealized
                .and_then(|u| u.checked_div(p.cost_basis))
                .and_then(|r| r.checked_mul(Decimal::from(100)))
                .map(|r| r.round_dp(4))
        };
        Self {
            symbol: p.symbol.clone(),
            quantity: amount(p.quantity),
            average_cost: p.average_cost().map(money),
            cost_basis: money(p.cost_basis),
            last_price: money(price),
            market_value: value.map(money),
            unrealized_pnl: unrealized.map(money),
            unrealized_pnl_pct: pct.map(amount),
            realized_pnl: money(p.realized_pnl),
        }
    }
}

/// One ledger entry as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = Transaction)]
pub struct TransactionView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(value_type = String, pattern = "^(buy|sell)$", example = "buy")]
    pub side: &'static str,
    #[schema(example = "AAPL")]
    pub symbol: String,
    #[schema(value_type = crate::domain::schema::Money)]
    pub quantity: String,
    #[schema(value_type = crate::domain::schema::Money)]
    pub price: String,
    #[schema(value_type = crate::domain::schema::Money)]
    pub fee: String,
    /// `quantity × price + fee` for a buy, `− fee` for a sell.
    #[schema(value_type = crate::domain::schema::Money)]
    pub total: String,
    #[schema(value_type = crate::domain::schema::Money)]
    pub realized_pnl: String,
    #[schema(value_type = crate::domain::schema::Timestamp)]
    pub executed_at: String,
}

impl From<&Transaction> for TransactionView {
    fn from(t: &Transaction) -> Self {
        Self {
            id: t.id.clone(),
            side: t.side.as_str(),
            symbol: t.symbol.clone(),
            quantity: amount(t.quantity),
            price: money(t.price),
            fee: money(t.fee),
            total: money(t.total),
            realized_pnl: money(t.realized_pnl),
            executed_at: rfc3339(t.executed_at),
        }
    }
}

/// The answer to an executed (or replayed) order.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = OrderResult)]
pub struct OrderView {
    pub transaction: TransactionView,
    pub position: PositionView,
}

impl From<&OrderReceipt> for OrderView {
    fn from(r: &OrderReceipt) -> Self {
        Self {
            transaction: TransactionView::from(&r.transaction),
            position: PositionView::new(&r.position, r.market_price),
        }
    }
}

/// What an order did.
#[derive(Debug)]
pub enum Placed {
    Executed(OrderView),
    /// The same `Idempotency-Key` and order were seen before: the first answer.
    Replayed(OrderView),
}

/// Portfolio totals; `null` once a sum leaves the decimal range.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Totals {
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub cost_basis: Option<String>,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub market_value: Option<String>,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub unrealized_pnl: Option<String>,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub realized_pnl: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Portfolio)]
pub struct PortfolioView {
    pub positions: Vec<PositionView>,
    pub totals: Totals,
    #[schema(value_type = crate::domain::schema::Timestamp)]
    pub as_of: String,
}

/// Checks one order amount: at most 8 decimals, within the ledger's
/// bounds, positive (or zero where `allow_zero`).
fn check_amount(field: &'static str, d: Decimal, allow_zero: bool) -> PortfolioResult<Decimal> {
    let d = d.normalize();
    if d.is_sign_negative() || (!allow_zero && d.is_zero()) {
        let rule = if allow_zero {
            "must not be negative"
        } else {
            "must be greater than 0"
        };
        return Err(invalid(field, format!("{field} {rule}")));
    }
    if d.scale() > 8 {
        return Err(invalid(field, format!("{field} may have at most 8 decimal places")));
    }
    if d > max_amount() {
        return Err(invalid(field, format!("{field} must be at most {}", max_amount())));
    }
    Ok(d)
}

pub struct Portfolio {
    store: Arc<dyn Store>,
    market: Arc<Market>,
    valuations: Valuations,
}

impl Portfolio {
    pub fn new(store: Arc<dyn Store>, market: Arc<Market>, valuations: Valuations) -> Self {
        Self {
            store,
            market,
            valuations,
        }
    }

    /// Checks and executes an order for `user_id`.
    pub async fn place(&self, user_id: &str, req: OrderRequest) -> PortfolioResult<Placed> {
        let symbol = Symbol::parse(&req.symbol).map_err(|e| invalid("symbol", e.to_string()))?;
        let quantity = check_amount("quantity", req.quantity, false)?;
        let fee = match req.fee {
            Some(f) => check_amount("fee", f, true)?,
            None => Decimal::ZERO,
        };
        let requested_price = match req.price {
            Some(p) => Some(check_amount("price", p, false)?),
            None => None,
        };
        let quote = self.market.quote(symbol.as_str()).await.map(|q| q.price);
        let price = requested_price
            .or(quote)
            .ok_or_else(|| PortfolioError::PriceUnavailable {
                symbol: symbol.as_str().to_string(),
            })?;
        // What makes two requests "the same order" for an Idempotency-Key:
        // the market price is not part of it (a retry may come later).
        let fingerprint = {
            let canon = format!(
                "{}|{}|{}|{}|{}",
                req.side.as_str(),
                symbol,
                amount(quantity),
                requested_price.map(amount).unwrap_or_else(|| "-".into()),
                amount(fee)
            );
            hex::encode(Sha256::digest(canon.as_bytes()))
        };
        let order = Order {
            side: req.side,
            symbol: symbol.as_str().to_string(),
            quantity,
            price,
            fee,
        };
        let idempotency = req.idempotency_key.map(|key| IdempotencyKey { key, fingerprint });
        match self.store.execute_order(user_id, order, quote, idempotency).await? {
            OrderOutcome::Executed(r) => {
                self.valuations.ledger_changed(user_id).await?;
                Ok(Placed::Executed(OrderView::from(&r)))
            }
            OrderOutcome::Replayed(r) => Ok(Placed::Replayed(OrderView::from(&r))),
            OrderOutcome::IdempotencyConflict => Err(PortfolioError::IdempotencyConflict),
            OrderOutcome::Rejected(LedgerError::InsufficientQuantity { held, wanted }) => {
                Err(PortfolioError::InsufficientQuantity {
                    symbol: symbol.as_str().to_string(),
                    held,
                    wanted,
                })
            }
            OrderOutcome::Rejected(LedgerError::OutOfRange) => Err(PortfolioError::OutOfRange),
        }
    }

    /// The user's portfolio as serialised JSON, from the valuation cache
    /// when neither the ledger nor the price book moved since.
    pub async fn valuation_json(&self, user_id: &str) -> PortfolioResult<Bytes> {
        let cacheable = !self.market.has_live_prices();
        // Versions first: anything that changes after this read makes the
        // valuation computed below unservable (see `valuations`).
        let (ledger, book) = (self.valuations.ledger(user_id).await?, self.market.book.generation());
        if cacheable {
            if let Some(body) = self.valuations.get(user_id, ledger, book) {
                return Ok(body);
            }
        }
        let view = self.valuation(user_id).await?;
        let body = Bytes::from(serde_json::to_vec(&view).map_err(|e| PortfolioError::Internal(e.to_string()))?);
        if cacheable {
            self.valuations.put(user_id, ledger, book, body.clone());
        }
        Ok(body)
    }

    /// Values every position at its latest price (the market's, or the
    /// last trade's for manual assets).
    pub async fn valuation(&self, user_id: &str) -> PortfolioResult<PortfolioView> {
        let positions = self.store.positions(user_id).await?;
        let mut views = Vec::with_capacity(positions.len());
        let add = |sum: Option<Decimal>, d: Option<Decimal>| sum.zip(d).and_then(|(s, d)| s.checked_add(d));
        let (mut cost, mut value, mut realized) = (Some(Decimal::ZERO), Some(Decimal::ZERO), Some(Decimal::ZERO));
        for p in &positions {
            let price = self.market.quote(&p.symbol).await.map(|q| q.price);
            cost = add(cost, Some(p.cost_basis));
            value = add(value, p.quantity.checked_mul(price.unwrap_or(p.last_trade_price)));
            realized = add(realized, Some(p.realized_pnl));
            views.push(PositionView::new(p, price));
        }
        let unrealized = value.zip(cost).and_then(|(v, c)| v.checked_sub(c));
        Ok(PortfolioView {
            positions: views,
            totals: Totals {
                cost_basis: cost.map(money),
                market_value: value.map(money),
                unrealized_pnl: unrealized.map(money),
                realized_pnl: realized.map(money),
            },
            as_of: rfc3339(Utc::now()),
        })
    }

    /// The ledger, newest first; `symbol` filters, `before_id` pages.
    pub async fn transactions(
        &self,
        user_id: &str,
        symbol: Option<&str>,
        before_id: Option<&str>,
        limit: usize,
    ) -> PortfolioResult<Vec<Transaction>> {
        let symbol = match symbol.filter(|s| !s.is_empty()) {
            Some(s) => Some(Symbol::parse(s).map_err(|e| invalid("symbol", e.to_string()))?),
            None => None,
        };
        Ok(self
            .store
            .transactions(user_id, symbol.as_ref().map(Symbol::as_str), before_id, limit)
            .await?)
    }
}
