//! The ledger (SPEC §3): average-cost positions with exact decimals. Pure
//! logic, no I/O: the store applies [`apply_order`] inside the transaction
//! that records the order, so a position always equals its ledger.
//!
//! Rules: a buy adds `quantity × price + fee` to the cost basis; a sell
//! removes `average_cost × quantity` from it (all of it when the position
//! closes, so no residue is left) and realizes `quantity × price − fee −
//! removed cost`.

pub mod valuations;

use chrono::{DateTime, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "buy",
            Side::Sell => "sell",
        }
    }
}

/// An order after validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub side: Side,
    pub symbol: String,
    pub quantity: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
}

/// A user's holding of one symbol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub symbol: String,
    pub quantity: Decimal,
    /// Total cost of what is held (fees included).
    pub cost_basis: Decimal,
    pub realized_pnl: Decimal,
    /// Price of the latest order; values manual assets with no market data.
    #[serde(default)]
    pub last_trade_price: Decimal,
}

impl Position {
    /// Cost per unit held; zero for a closed position.
    pub fn average_cost(&self) -> Decimal {
        if self.quantity.is_zero() {
            Decimal::ZERO
        } else {
            (self.cost_basis / self.quantity).round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven)
        }
    }
}

/// An executed order, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transaction {
    pub id: String,
    pub side: Side,
    pub symbol: String,
    pub quantity: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
    /// Cash out for a buy (cost incl. fee), cash in for a sell (proceeds after fee).
    pub total: Decimal,
    pub realized_pnl: Decimal,
    pub executed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot sell {wanted}: only {held} held")]
    InsufficientQuantity { held: Decimal, wanted: Decimal },
    #[error("amount out of range")]
    Overflow,
}

/// Applies an order to a position; returns the new position and the
/// transaction (without id and time, which the caller assigns).
pub fn apply_order(position: Option<&Position>, order: &Order) -> Result<(Position, Decimal, Decimal), LedgerError> {
    let mut p = position.cloned().unwrap_or_else(|| Position {
        symbol: order.symbol.clone(),
        ..Position::default()
    });
    let gross = order.quantity.checked_mul(order.price).ok_or(LedgerError::Overflow)?;
    p.last_trade_price = order.price;
    match order.side {
        Side::Buy => {
            let total = gross.checked_add(order.fee).ok_or(LedgerError::Overflow)?;
            p.quantity = p.quantity.checked_add(order.quantity).ok_or(LedgerError::Overflow)?;
            p.cost_basis = p.cost_basis.checked_add(total).ok_or(LedgerError::Overflow)?;
            Ok((p, total, Decimal::ZERO))
        }
        Side::Sell => {
            if order.quantity > p.quantity {
                return Err(LedgerError::InsufficientQuantity {
                    held: p.quantity,
                    wanted: order.quantity,
                });
            }
            let removed = if order.quantity == p.quantity {
                p.cost_basis
            } else {
                (p.cost_basis * order.quantity / p.quantity).round_dp(12)
            };
            let proceeds = gross.checked_sub(order.fee).ok_or(LedgerError::Overflow)?;
            let realized = proceeds - removed;
            p.quantity -= order.quantity;
            p.cost_basis -= removed;
            if p.quantity.is_zero() {
                p.cost_basis = Decimal::ZERO;
            }
            p.realized_pnl += realized;
            Ok((p, proceeds, realized))
        }
    }
}

/// The canonical text of an amount: no trailing zeros (`"0.30"` → `"0.3"`).
pub fn amount(d: Decimal) -> String {
    d.normalize().to_string()
}

/// A money amount for display: rounded to 8 places, then canonical.
pub fn money(d: Decimal) -> String {
    amount(d.round_dp_with_strategy(8, RoundingStrategy::MidpointNearestEven))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn order(side: Side, q: &str, p: &str, fee: &str) -> Order {
        Order {
            side,
            symbol: "SPY".into(),
            quantity: d(q),
            price: d(p),
            fee: d(fee),
        }
    }

    #[test]
    fn three_tenths_are_exact() {
        let mut pos = None;
        for _ in 0..3 {
            let (p, _, _) = apply_order(pos.as_ref(), &order(Side::Buy, "0.1", "0.1", "0")).unwrap();
            pos = Some(p);
        }
        let p = pos.unwrap();
        assert_eq!(amount(p.quantity), "0.3");
        assert_eq!(amount(p.cost_basis), "0.03");
        assert_eq!(money(p.average_cost()), "0.1");
    }

    #[test]
    fn average_cost_fees_and_realized_pnl() {
        let (p, total, _) = apply_order(None, &order(Side::Buy, "10", "100", "5")).unwrap();
        assert_eq!(total, d("1005"));
        let (p, _, _) = apply_order(Some(&p), &order(Side::Buy, "10", "110", "5")).unwrap();
        assert_eq!(p.cost_basis, d("2110"));
        assert_eq!(p.average_cost(), d("105.5"));
        let (p, proceeds, realized) = apply_order(Some(&p), &order(Side::Sell, "5", "120", "2")).unwrap();
        assert_eq!(proceeds, d("598"));
        assert_eq!(realized, d("70.5")); // 598 - 5 × 105.5
        assert_eq!(p.cost_basis, d("1582.5"));
        let (p, _, realized) = apply_order(Some(&p), &order(Side::Sell, "15", "100", "0")).unwrap();
        assert_eq!(realized, d("-82.5"));
        assert!(p.quantity.is_zero() && p.cost_basis.is_zero());
        assert_eq!(p.realized_pnl, d("-12"));
    }

    #[test]
    fn thirds_close_without_residue() {
        let (mut p, _, _) = apply_order(None, &order(Side::Buy, "3", "1", "0.01")).unwrap();
        for _ in 0..3 {
            p = apply_order(Some(&p), &order(Side::Sell, "1", "1", "0")).unwrap().0;
        }
        assert!(p.quantity.is_zero());
        assert!(p.cost_basis.is_zero());
        assert_eq!(p.realized_pnl, d("-0.01"));
    }

    #[test]
    fn overselling_is_refused() {
        let (p, _, _) = apply_order(None, &order(Side::Buy, "1", "1", "0")).unwrap();
        let e = apply_order(Some(&p), &order(Side::Sell, "1.00000001", "1", "0")).unwrap_err();
        assert_eq!(
            e,
            LedgerError::InsufficientQuantity {
                held: d("1"),
                wanted: d("1.00000001")
            }
        );
        assert!(apply_order(None, &order(Side::Sell, "1", "1", "0")).is_err());
    }
}
