//! Price prediction from daily candles, evaluated honestly out of sample.
//!
//! The design, in the order data flows:
//!
//! 1. [`features`] turns candles into eight features per day, each computed
//!    only from that day and the 49 before it, plus the target: the forward
//!    log return `ln(close[t+h] / close[t])` over the horizon `h`.
//! 2. [`evaluate`](mod@evaluate) runs an expanding-window walk-forward test
//!    with five folds. Each fold trains on rows whose targets were realised
//!    before its test block begins (the last `h` rows before the block are
//!    purged), is scored against naive baselines, and counts how many test
//!    outcomes fall inside an interval calibrated on its training rows.
//! 3. [`model`] standardises with training statistics only, fits ordinary
//!    least squares (`linfa-linear`) for the return and logistic regression
//!    (`linfa-logistic`) for the direction.
//! 4. [`predict`] repeats the evaluation, refits on every row with a known
//!    target, and forecasts from the last day's features. Its 90% interval
//!    scales with recent volatility: with `s = vol_20d · √h` per row, it is
//!    the forecast plus `s` times the 5% and 95% quantiles of the fit's
//!    residuals divided by their own rows' `s` ([`model::ScaledInterval`]).
//!    Each fold of the evaluation calibrates the same way on its training
//!    rows, so [`Evaluation::interval_coverage`] is this interval's coverage
//!    out of sample.
//!
//! Everything is deterministic: no random numbers, and the logistic solver
//! runs a fixed number of iterations from a zero start, so the same candles
//! give a bit-identical [`Prediction`].
//!
//! Prices are `f64` here; callers turn them back into decimals for output.

pub mod evaluate;
pub mod features;
pub mod model;
pub mod serving;

use chrono::NaiveDate;
use ndarray::Array2;
use serde::Serialize;

use rust_decimal::Decimal;

use crate::market::Candle;

pub use evaluate::{Evaluation, FoldReport, DEFAULT_FOLDS};
pub use features::{DesignMatrix, FEATURE_NAMES, LOOKBACK, N_FEATURES};

/// Fewest candles accepted (about a year of trading days).
pub const MIN_HISTORY: usize = 250;

/// Longest forecast horizon, in trading days.
pub const MAX_HORIZON: usize = 30;

/// Coverage of the prediction interval.
pub const INTERVAL_LEVEL: f64 = 0.9;

/// Name of the model pair, as reported in [`Prediction::model_kind`].
pub const MODEL_KIND: &str = "ols_log_return+logistic_direction";

/// Why a prediction or evaluation could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MlError {
    /// `rows` candles were given but `needed` are required.
    #[error("insufficient history: {rows} candles given, {needed} needed")]
    InsufficientHistory { rows: usize, needed: usize },
    /// The request or the candles are invalid (horizon out of range,
    /// unsorted dates, non-positive closes).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A model could not be fitted.
    #[error("model error: {0}")]
    Model(String),
}

/// A forecast for `horizon` trading days after `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// Date of the last candle (the features' day).
    pub as_of: NaiveDate,
    pub last_close: f64,
    /// Forecast horizon in trading days.
    pub horizon: usize,
    /// Predicted log return `ln(close[as_of + h] / last_close)`.
    pub predicted_return: f64,
    /// `last_close * exp(predicted_return)`.
    pub predicted_close: f64,
    /// Logistic model's probability that the close rises over the horizon.
    pub probability_up: f64,
    /// Lower end of the interval, as a price.
    pub interval_low: f64,
    /// Upper end of the interval, as a price.
    pub interval_high: f64,
    /// Level the interval is calibrated for (0.9); its measured out-of-sample
    /// coverage is `evaluation.interval_coverage`.
    pub level: f64,
    pub model_kind: &'static str,
    /// Feature names, in model column order.
    pub features: Vec<&'static str>,
    /// Feature date of the first training row of the final fit.
    pub trained_from: NaiveDate,
    /// Feature date of the last training row of the final fit (its target
    /// is realised on `as_of`).
    pub trained_to: NaiveDate,
    /// Rows in the final fit.
    pub samples: usize,
    /// Walk-forward evaluation, including the interval's out-of-sample
    /// coverage.
    pub evaluation: Evaluation,
}

fn check_request(candles: &[Candle], horizon: usize) -> Result<(), MlError> {
    if !(1..=MAX_HORIZON).contains(&horizon) {
        return Err(MlError::InvalidInput(format!(
            "horizon must be between 1 and {MAX_HORIZON} trading days, got {horizon}"
        )));
    }
    if candles.len() < MIN_HISTORY {
        return Err(MlError::InsufficientHistory {
            rows: candles.len(),
            needed: evaluate::min_candles(horizon),
        });
    }
    Ok(())
}

/// The candles after the last non-positive close. The model works in log
/// returns, which no series can cross a zero or negative price with (WTI
/// crude settled at -37.63 on 2020-04-20), so it learns from the run since.
fn modellable_tail(candles: &[Candle]) -> &[Candle] {
    match candles.iter().rposition(|c| c.close <= Decimal::ZERO) {
        Some(i) => &candles[i + 1..],
        None => candles,
    }
}

fn evaluate_series(
    candles: &[Candle],
    horizon: usize,
) -> Result<(features::Series, DesignMatrix, Evaluation), MlError> {
    let candles = modellable_tail(candles);
    check_request(candles, horizon)?;
    let series = features::Series::from_candles(candles)?;
    let design = features::design_from_series(&series, horizon);
    let evaluation = evaluate::walk_forward(&design, DEFAULT_FOLDS, candles.len())?;
    Ok((series, design, evaluation))
}

/// Walk-forward evaluation of the models for horizon `horizon` (1..=30).
pub fn evaluate(candles: &[Candle], horizon: usize) -> Result<Evaluation, MlError> {
    evaluate_series(candles, horizon).map(|(_, _, evaluation)| evaluation)
}

/// Evaluates, then fits on every row with a known target and forecasts the
/// close `horizon` trading days after the last candle.
pub fn predict(candles: &[Candle], horizon: usize) -> Result<Prediction, MlError> {
    let (series, design, evaluation) = evaluate_series(candles, horizon)?;
    let models = model::FittedModels::fit(design.x.view(), design.y.view())?;
    let residuals = &design.y - &models.predict_return(design.x.view());
    let scales = features::volatility_scales(design.x.view(), horizon);
    let interval = model::ScaledInterval::calibrate(residuals.view(), scales.view(), INTERVAL_LEVEL)?;

    let last = series.len() - 1;
    let row = features::features_at(&series, last);
    let x = Array2::from_shape_vec((1, N_FEATURES), row.to_vec()).map_err(|e| MlError::Model(e.to_string()))?;
    let predicted_return = models.predict_return(x.view()).first().copied();
    let probability_up = models.probability_up(x.view()).first().copied();
    let scale = features::volatility_scales(x.view(), horizon).first().copied();
    let (Some(predicted_return), Some(probability_up), Some(scale)) = (predicted_return, probability_up, scale) else {
        return Err(MlError::Model("model returned no prediction".into()));
    };

    let (low, high) = interval.offsets(scale);
    let last_close = series.close[last];
    let prediction = Prediction {
        as_of: series.dates[last],
        last_close,
        horizon,
        predicted_return,
        predicted_close: last_close * predicted_return.exp(),
        probability_up,
        interval_low: last_close * (predicted_return + low).exp(),
        interval_high: last_close * (predicted_return + high).exp(),
        level: INTERVAL_LEVEL,
        model_kind: MODEL_KIND,
        features: FEATURE_NAMES.to_vec(),
        trained_from: design.feature_dates[0],
        trained_to: design.feature_dates[design.len() - 1],
        samples: design.len(),
        evaluation,
    };
    let finite = [
        prediction.predicted_return,
        prediction.predicted_close,
        prediction.interval_low,
        prediction.interval_high,
    ]
    .iter()
    .all(|v| v.is_finite());
    // Guaranteed by ScaledInterval::offsets for finite inputs; checked so that an
    // overflow (e.g. exp of a huge return) cannot reach a client as a price.
    let bracketed =
        prediction.interval_low < prediction.predicted_close && prediction.predicted_close < prediction.interval_high;
    if !(finite && bracketed) {
        return Err(MlError::Model(
            "prediction is not finite or not inside its interval".into(),
        ));
    }
    Ok(prediction)
}

#[cfg(test)]
pub(crate) mod test_support {
    use chrono::{Days, NaiveDate};
    use rust_decimal::prelude::FromPrimitive;
    use rust_decimal::Decimal;

    use crate::market::Candle;

    /// Deterministic geometric random walk: a 64-bit LCG drives daily log
    /// returns of about 1% with a small drift, and a noisy volume.
    pub(crate) fn synthetic_candles(n: usize, seed: u64) -> Vec<Candle> {
        synthetic_candles_with_volatility(n, seed, |_| 0.01)
    }

    /// The same walk with a daily volatility of `volatility(i)` on day `i`.
    pub(crate) fn synthetic_candles_with_volatility(
        n: usize,
        seed: u64,
        volatility: impl Fn(usize) -> f64,
    ) -> Vec<Candle> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let mut uniform = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64) / ((1u64 << 53) as f64)
        };
        let start = NaiveDate::from_ymd_opt(2000, 1, 3).unwrap();
        let mut close = 100.0f64;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            // Sum of 4 uniforms: roughly normal, mean 2, variance 1/3.
            let z = ((0..4).map(|_| uniform()).sum::<f64>() - 2.0) * 3f64.sqrt();
            close *= (0.0003 + volatility(i) * z).exp();
            let volume = 1_000_000.0 * (0.5 + uniform());
            let close_d = Decimal::from_f64(close).unwrap().round_dp(4);
            let spread = Decimal::from_f64(close * 0.005).unwrap().round_dp(4);
            out.push(Candle {
                date: start.checked_add_days(Days::new(i as u64)).unwrap(),
                open: close_d,
                high: close_d + spread,
                low: close_d - spread,
                close: close_d,
                volume: Decimal::from_f64(volume).unwrap().round_dp(0),
            });
        }
        out
    }

    /// Loads a Date,Open,High,Low,Close,Volume[,OpenInt] CSV (CRLF or LF).
    pub(crate) fn load_csv(path: &str) -> Option<Vec<Candle>> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut out = Vec::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.trim().split(',').collect();
            if f.len() < 6 {
                continue;
            }
            let d = |s: &str| s.parse::<Decimal>().ok();
            out.push(Candle {
                date: NaiveDate::parse_from_str(f[0], "%Y-%m-%d").ok()?,
                open: d(f[1])?,
                high: d(f[2])?,
                low: d(f[3])?,
                close: d(f[4])?,
                volume: d(f[5])?,
            });
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{load_csv, synthetic_candles, synthetic_candles_with_volatility};
    use super::*;

    #[test]
    fn predict_on_synthetic_series_is_sane() {
        let candles = synthetic_candles(600, 1234);
        for h in [1, 5, 30] {
            let p = predict(&candles, h).unwrap();
            assert_eq!(p.as_of, candles[599].date);
            assert_eq!(p.horizon, h);
            assert!(p.last_close > 0.0);
            assert!((p.predicted_close - p.last_close * p.predicted_return.exp()).abs() < 1e-9);
            assert!((0.0..=1.0).contains(&p.probability_up));
            assert!(p.interval_low < p.predicted_close && p.predicted_close < p.interval_high);
            assert!(p.interval_low > 0.0);
            // A walk of ~1% daily moves: forecasts stay in a plausible band.
            assert!(p.predicted_return.abs() < 0.5);
            assert_eq!(p.level, 0.9);
            assert_eq!(p.features, FEATURE_NAMES.to_vec());
            assert_eq!(p.samples, 600 - (LOOKBACK - 1) - h);
            assert_eq!(p.trained_from, candles[LOOKBACK - 1].date);
            assert_eq!(p.trained_to, candles[599 - h].date);
            assert_eq!(p.evaluation.method, "walk_forward");
            assert_eq!(p.evaluation.folds.len(), 5);
            assert!(p.evaluation.mae.is_finite() && p.evaluation.mae > 0.0);
            assert!((0.0..=1.0).contains(&p.evaluation.interval_coverage));
            // Serialises (the API sends it as JSON).
            let json = serde_json::to_value(&p).unwrap();
            assert!(json["evaluation"]["folds"].as_array().unwrap().len() == 5);
            assert!(json["evaluation"]["folds"][0]["interval_coverage"].is_f64());
        }
    }

    /// Log width `ln(high / low)` of the interval.
    fn log_width(p: &Prediction) -> f64 {
        (p.interval_high / p.interval_low).ln()
    }

    #[test]
    fn interval_widens_with_recent_volatility() {
        // 1% a day, a 4% storm on days 450..520, then calm again.
        let candles = synthetic_candles_with_volatility(700, 21, |i| if (450..520).contains(&i) { 0.04 } else { 0.01 });
        let stormy = predict(&candles[..520], 5).unwrap();
        let calm = predict(&candles, 5).unwrap();
        let calm_before = predict(&candles[..450], 5).unwrap();
        // Each interval follows the last 20 days, not the mix of the whole
        // history: about four times wider in the storm (a fixed width, the
        // interval before volatility scaling, is within a factor of 1.5).
        assert!(
            log_width(&stormy) > 3.0 * log_width(&calm),
            "storm {} vs calm {}",
            log_width(&stormy),
            log_width(&calm)
        );
        assert!(log_width(&stormy) > 3.0 * log_width(&calm_before));
        // A history with a storm in it does not widen a calm day's interval
        // much beyond what a calm history gives.
        assert!(log_width(&calm) < 1.5 * log_width(&calm_before));
    }

    #[test]
    fn short_history_is_insufficient() {
        let candles = synthetic_candles(100, 1);
        assert_eq!(
            predict(&candles, 5),
            Err(MlError::InsufficientHistory {
                rows: 100,
                needed: MIN_HISTORY
            })
        );
        assert!(matches!(
            evaluate(&candles, 1),
            Err(MlError::InsufficientHistory { rows: 100, .. })
        ));
        // 250 candles are enough for h = 1 but not for h = 30, whose purge
        // and last target eat 60 rows.
        let candles = synthetic_candles(MIN_HISTORY, 1);
        assert!(predict(&candles, 1).is_ok());
        assert_eq!(
            predict(&candles, 30),
            Err(MlError::InsufficientHistory {
                rows: MIN_HISTORY,
                needed: evaluate::min_candles(30)
            })
        );
        assert!(predict(&synthetic_candles(evaluate::min_candles(30), 1), 30).is_ok());
    }

    #[test]
    fn a_negative_close_starts_the_history_after_it() {
        // Like WTI on 2020-04-20: the model learns from the days after.
        let mut candles = synthetic_candles(600, 3);
        candles[200].close = Decimal::new(-3763, 2);
        let p = predict(&candles, 5).unwrap();
        assert!(p.trained_from > candles[200].date);
        assert_eq!(p.as_of, candles[599].date);
        // Too little left after it is too little history, not bad input.
        candles[500].close = Decimal::ZERO;
        assert_eq!(
            predict(&candles, 5),
            Err(MlError::InsufficientHistory {
                rows: 99,
                needed: MIN_HISTORY
            })
        );
    }

    #[test]
    fn horizon_out_of_range_is_rejected() {
        let candles = synthetic_candles(300, 1);
        for h in [0, 31, 1000] {
            assert!(matches!(predict(&candles, h), Err(MlError::InvalidInput(_))));
            assert!(matches!(evaluate(&candles, h), Err(MlError::InvalidInput(_))));
        }
    }

    #[test]
    fn predict_is_deterministic() {
        let candles = synthetic_candles(600, 77);
        let a = predict(&candles, 5).unwrap();
        let b = predict(&candles, 5).unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    }

    /// Manual check on real data: `cargo test --lib ml:: -- --ignored --nocapture`.
    #[test]
    #[ignore = "reads bundled price files outside the repo"]
    fn real_data_report() {
        let dir = "/work/shared/data/prices/stocks_etfs";
        for name in ["SPY", "JPM", "KO", "XOM", "JNJ"] {
            let Some(candles) = load_csv(&format!("{dir}/{name}.csv")) else {
                eprintln!("{name}: not found, skipped");
                continue;
            };
            for h in [1, 5, 20] {
                let started = std::time::Instant::now();
                let p = predict(&candles, h).unwrap();
                let e = &p.evaluation;
                eprintln!(
                    "{name} h={h} rows={} {:?}: close {:.2} -> {:.2} [{:.2}, {:.2}] p_up {:.3} | acc {:.3} vs {:.3}, mae {:.5} vs {:.5}, coverage {:.3}",
                    candles.len(),
                    started.elapsed(),
                    p.last_close,
                    p.predicted_close,
                    p.interval_low,
                    p.interval_high,
                    p.probability_up,
                    e.directional_accuracy,
                    e.baseline_directional_accuracy,
                    e.mae,
                    e.baseline_mae,
                    e.interval_coverage
                );
            }
        }
    }
}
