//! Market data: daily price history (bundled, imported, or from a provider)
//! and news.

pub mod feeds;
pub mod news;
pub mod prices;
pub mod provider;
pub mod service;

pub use crate::domain::market::Candle;
