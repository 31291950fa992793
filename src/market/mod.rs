//! Market data: daily price history (bundled, imported, or from a provider)
//! and news.

pub mod candle;

pub use candle::Candle;
