//! The portfolio service: orders, positions and their valuation. The
//! ledger rules themselves are pure domain logic ([`crate::domain::portfolio`]).

pub mod service;
pub mod valuations;

pub use crate::domain::portfolio::*;
