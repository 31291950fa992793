pub use crate::domain::market::Candle;
