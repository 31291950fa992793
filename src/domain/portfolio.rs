//! The ledger (SPEC §3): average-cost positions with exact decimals. Pure
//! logic, no I/O: the store applies [`apply_order`] inside the transaction
//! that records the order, so a position always equals its ledger.
//!
//! Rules: a buy adds `quantity × price + fee` to the cost basis; a sell
//! removes `cost_basis × quantity / held` from it (all of it when the position
//! closes, so no residue is left) and realizes `quantity × price − fee −
//! removed cost`.
//!
//! Bounds keep every figure exact: quantity, price and fee have at most 8
//! decimals and `quantity × price` is at most [`max_amount`], so an order's
//! `quantity × price + fee` (at most 16 decimals, below 2 × 10^28 units of
//! 10^-16) fits rust_decimal's 96-bit mantissa without rounding. A position's
//! quantity, cost basis and realized P&L stay within [`max_holding`], which
//! leaves them at least 13 exact decimals. Every operation is checked; an
//! order that would break a bound is refused ([`LedgerError::OutOfRange`]).
//! Nothing is rounded here but a quotient's 28th digit: rounding is for
//! display only ([`money`]).

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
    /// Cost per unit held, unrounded; zero for a closed position. `None`
    /// only for a position stored before the bounds, whose quotient may not
    /// fit a decimal.
    pub fn average_cost(&self) -> Option<Decimal> {
        if self.quantity.is_zero() {
            Some(Decimal::ZERO)
        } else {
            self.cost_basis.checked_div(self.quantity)
        }
    }
}

/// The largest quantity, price or fee of an order, and the largest order
/// value (`quantity × price`): 10^12.
pub fn max_amount() -> Decimal {
    Decimal::from(1_000_000_000_000i64)
}

/// The largest quantity, cost basis or realized P&L (either sign) of a
/// position: 10^15, a thousand orders of the largest value.
pub fn max_holding() -> Decimal {
    Decimal::from(1_000_000_000_000_000i64)
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
    /// The order is worth more than [`max_amount`], or would take the
    /// position beyond [`max_holding`].
    #[error("amount out of range")]
    OutOfRange,
}

/// The result of a checked operation; `None` means out of range.
fn checked(d: Option<Decimal>) -> Result<Decimal, LedgerError> {
    d.ok_or(LedgerError::OutOfRange)
}

/// Executes an order against a position: the new position and the
/// transaction that records it (a new id, the time at microseconds).
pub fn execute_order(position: Option<&Position>, order: &Order) -> Result<(Position, Transaction), LedgerError> {
    let (position, total, realized_pnl) = apply_order(position, order)?;
    let transaction = Transaction {
        id: super::new_id(),
        side: order.side,
        symbol: order.symbol.clone(),
        quantity: order.quantity,
        price: order.price,
        fee: order.fee,
        total,
        realized_pnl,
        executed_at: super::now(),
    };
    Ok((position, transaction))
}

/// Applies an order to a position; returns the new position and the
/// transaction (without id and time, which the caller assigns).
pub fn apply_order(position: Option<&Position>, order: &Order) -> Result<(Position, Decimal, Decimal), LedgerError> {
    let mut p = position.cloned().unwrap_or_else(|| Position {
        symbol: order.symbol.clone(),
        ..Position::default()
    });
    let gross = checked(order.quantity.checked_mul(order.price))?;
    if gross > max_amount() {
        return Err(LedgerError::OutOfRange);
    }
    p.last_trade_price = order.price;
    let (total, realized) = match order.side {
        Side::Buy => {
            let total = checked(gross.checked_add(order.fee))?;
            p.quantity = checked(p.quantity.checked_add(order.quantity))?;
            p.cost_basis = checked(p.cost_basis.checked_add(total))?;
            (total, Decimal::ZERO)
        }
        Side::Sell => {
            if order.quantity > p.quantity {
                return Err(LedgerError::InsufficientQuantity {
                    held: p.quantity,
                    wanted: order.quantity,
                });
            }
            // Multiplying first keeps the removed cost exact whenever the
            // quotient is, so the average cost of what remains is unchanged.
            let removed = if order.quantity == p.quantity {
                p.cost_basis
            } else {
                checked(
                    p.cost_basis
                        .checked_mul(order.quantity)
                        .and_then(|c| c.checked_div(p.quantity)),
                )?
            };
            let proceeds = checked(gross.checked_sub(order.fee))?;
            let realized = checked(proceeds.checked_sub(removed))?;
            p.quantity = checked(p.quantity.checked_sub(order.quantity))?;
            p.cost_basis = checked(p.cost_basis.checked_sub(removed))?;
            p.realized_pnl = checked(p.realized_pnl.checked_add(realized))?;
            (proceeds, realized)
        }
    };
    if [p.quantity, p.cost_basis, p.realized_pnl]
        .iter()
        .any(|d| d.abs() > max_holding())
    {
        return Err(LedgerError::OutOfRange);
    }
    Ok((p, total, realized))
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
        assert_eq!(p.average_cost().map(money).as_deref(), Some("0.1"));
    }

    #[test]
    fn average_cost_fees_and_realized_pnl() {
        let (p, total, _) = apply_order(None, &order(Side::Buy, "10", "100", "5")).unwrap();
        assert_eq!(total, d("1005"));
        let (p, _, _) = apply_order(Some(&p), &order(Side::Buy, "10", "110", "5")).unwrap();
        assert_eq!(p.cost_basis, d("2110"));
        assert_eq!(p.average_cost(), Some(d("105.5")));
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

    #[test]
    fn out_of_range_orders_are_refused_not_overflowed() {
        // Once accepted, this buy's fee vanished from a 10^24 cost basis.
        let big = order(Side::Buy, "1000000000000", "1000000000000", "0.00000001");
        assert_eq!(apply_order(None, &big), Err(LedgerError::OutOfRange));
        // The largest order is exact: 28 digits, 16 decimals.
        let (p, total, _) = apply_order(
            None,
            &order(Side::Buy, "999999.99999999", "999999.99999999", "0.00000001"),
        )
        .unwrap();
        assert_eq!(total, d("999999999999.9800000100000001"));
        assert_eq!(p.cost_basis, total);
        // Holdings are bounded too.
        let held = Position {
            symbol: "SPY".into(),
            quantity: d("1000"),
            cost_basis: d("999000000000000"),
            ..Position::default()
        };
        let (p, _, _) = apply_order(Some(&held), &order(Side::Buy, "1", "999999999999", "0.00000001")).unwrap();
        assert_eq!(p.cost_basis, d("999999999999999.00000001"));
        let over = order(Side::Buy, "1", "1000000000000", "0");
        assert_eq!(apply_order(Some(&p), &over), Err(LedgerError::OutOfRange));
        // A position stored before the bounds: `cost_basis × quantity`
        // overflowed (a panic, then `500`); now a refusal.
        let legacy = Position {
            symbol: "SPY".into(),
            quantity: d("999999999999"),
            cost_basis: d("999999999999000000000000"),
            ..Position::default()
        };
        let sell = order(Side::Sell, "500000000000", "1", "0");
        assert_eq!(apply_order(Some(&legacy), &sell), Err(LedgerError::OutOfRange));
    }

    #[test]
    fn sells_keep_the_average_cost_exact() {
        let (p, _, _) = apply_order(None, &order(Side::Buy, "0.00000003", "0.49999999", "0")).unwrap();
        let (p, _, realized) = apply_order(Some(&p), &order(Side::Sell, "0.00000001", "1", "0")).unwrap();
        assert_eq!(p.cost_basis, d("0.0000000099999998"));
        assert_eq!(p.average_cost(), Some(d("0.49999999")));
        assert_eq!(realized, d("0.0000000050000001"));
        // Display rounds half to even.
        assert_eq!(money(d("0.000000015")), "0.00000002");
        assert_eq!(money(d("0.000000025")), "0.00000002");
    }
}
