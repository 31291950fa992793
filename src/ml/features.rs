//! Feature engineering: the part of the design that turns candles into a
//! design matrix without looking ahead.
//!
//! Every feature at day `t` is a function of closes and volumes in the window
//! `t + 1 - LOOKBACK ..= t` and nothing else, so a row never depends on
//! anything that happened after its own day (nor on how far back the series
//! starts, which keeps rows comparable across differently-trimmed histories).
//! Every window is recomputed from its slice rather than rolled forward, so
//! no floating-point state leaks in from earlier days either.
//!
//! Formulas, with `c` the close, `v` the volume and `r_i = ln(c_i / c_{i-1})`:
//!
//! | name          | value at day `t`                                                   |
//! |---------------|--------------------------------------------------------------------|
//! | `ret_1d`      | `ln(c_t / c_{t-1})`                                                |
//! | `ret_5d`      | `ln(c_t / c_{t-5})`                                                |
//! | `ret_20d`     | `ln(c_t / c_{t-20})`                                               |
//! | `sma5_sma20`  | `SMA5_t / SMA20_t - 1`, `SMAk_t = mean(c_{t-k+1} ..= c_t)`          |
//! | `sma20_sma50` | `SMA20_t / SMA50_t - 1`                                            |
//! | `vol_20d`     | sample std dev (n - 1) of `r_{t-19} ..= r_t`                        |
//! | `rsi_14`      | simple-average RSI(14) scaled to 0..1: `G / (G + L)` where `G`, `L` are the means of the positive parts and of the magnitudes of the negative parts of `c_i - c_{i-1}`, `i = t-13 ..= t`; `0.5` when `G + L = 0` |
//! | `volume_z`    | `(v_t - mean(v_{t-19} ..= v_t)) / sd(v_{t-19} ..= v_t)` (sample sd); `0` when the sd is 0 |
//!
//! RSI uses Cutler's simple average, not Wilder's smoothing: Wilder's is a
//! recursion seeded at the first candle, which would make the value depend
//! on where the history happens to begin.
//!
//! Target for horizon `h`: `y_t = ln(c_{t+h} / c_t)`, defined only while
//! `t + h` is inside the series; it lies strictly after the features' day.
//!
//! `vol_20d` also scales the prediction interval ([`volatility_scales`]):
//! being a feature, it is known on the row's own day.

use chrono::NaiveDate;
use ndarray::{Array1, Array2, ArrayView2};
use rust_decimal::prelude::ToPrimitive;

use super::MlError;
use crate::market::Candle;

/// Number of features per row.
pub const N_FEATURES: usize = 8;

/// Feature names, in column order of the design matrix.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "ret_1d",
    "ret_5d",
    "ret_20d",
    "sma5_sma20",
    "sma20_sma50",
    "vol_20d",
    "rsi_14",
    "volume_z",
];

/// Column of `vol_20d` in the design matrix.
pub const VOL_20D: usize = 5;

/// Floor of the daily volatility in [`volatility_scales`], so that 20
/// unchanged closes give neither a zero-width interval nor an infinite
/// standardised residual.
pub const MIN_DAILY_VOLATILITY: f64 = 1e-4;

/// Candles a feature row needs, counting its own day (SMA50 is the longest
/// window). The first day with a full row is index `LOOKBACK - 1`.
pub const LOOKBACK: usize = 50;

/// Volatility scale of each row of raw features `x` for horizon `horizon`:
/// `max(vol_20d, MIN_DAILY_VOLATILITY) * sqrt(horizon)`, the h-day standard
/// deviation implied by the row's last 20 daily log returns. It reads only
/// the row, so it looks no further ahead than the features do.
pub fn volatility_scales(x: ArrayView2<'_, f64>, horizon: usize) -> Array1<f64> {
    let root_h = (horizon as f64).sqrt();
    x.column(VOL_20D).mapv(|v| v.max(MIN_DAILY_VOLATILITY) * root_h)
}

/// Rows of features with their forward-return targets.
///
/// Row `i` holds the features of candle `t = rows[i]` and the target
/// `ln(close[t + horizon] / close[t])`.
#[derive(Debug, Clone)]
pub struct DesignMatrix {
    /// Features, one row per sample, columns in [`FEATURE_NAMES`] order.
    pub x: Array2<f64>,
    /// Forward log return over `horizon` days.
    pub y: Array1<f64>,
    /// Candle index `t` of each row.
    pub rows: Vec<usize>,
    /// Date of the features (day `t`).
    pub feature_dates: Vec<NaiveDate>,
    /// Date the target is realised (day `t + horizon`).
    pub target_dates: Vec<NaiveDate>,
    /// Forecast horizon in trading days.
    pub horizon: usize,
}

impl DesignMatrix {
    /// Number of rows (samples).
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }
}

/// Candles converted to `f64` once, after validation.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) dates: Vec<NaiveDate>,
    pub(crate) close: Vec<f64>,
    pub(crate) volume: Vec<f64>,
}

impl Series {
    /// Converts and validates: dates strictly increasing, closes finite and
    /// positive (they go into logarithms), volumes finite and non-negative.
    pub(crate) fn from_candles(candles: &[Candle]) -> Result<Self, MlError> {
        let mut dates = Vec::with_capacity(candles.len());
        let mut close = Vec::with_capacity(candles.len());
        let mut volume = Vec::with_capacity(candles.len());
        for (i, c) in candles.iter().enumerate() {
            if let Some(prev) = dates.last() {
                if c.date <= *prev {
                    return Err(MlError::InvalidInput(format!(
                        "candles must be sorted by strictly increasing date (index {i}: {})",
                        c.date
                    )));
                }
            }
            let cl = c.close.to_f64().filter(|x| x.is_finite() && *x > 0.0);
            let Some(cl) = cl else {
                return Err(MlError::InvalidInput(format!("close must be positive on {}", c.date)));
            };
            let vo = c.volume.to_f64().filter(|x| x.is_finite() && *x >= 0.0);
            let Some(vo) = vo else {
                return Err(MlError::InvalidInput(format!(
                    "volume must be non-negative on {}",
                    c.date
                )));
            };
            dates.push(c.date);
            close.push(cl);
            volume.push(vo);
        }
        Ok(Self { dates, close, volume })
    }

    pub(crate) fn len(&self) -> usize {
        self.close.len()
    }
}

fn mean(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Sample standard deviation (n - 1); 0 for fewer than two values.
fn sample_std(xs: &[f64]) -> f64 {
    if xs.len() < 2 {
        return 0.0;
    }
    let m = mean(xs);
    let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
    (ss / (xs.len() - 1) as f64).sqrt()
}

/// Features of day `t`. Caller guarantees `LOOKBACK - 1 <= t < s.len()`;
/// only `s[t + 1 - LOOKBACK ..= t]` is read.
pub(crate) fn features_at(s: &Series, t: usize) -> [f64; N_FEATURES] {
    let c = &s.close;
    let v = &s.volume;

    let ret = |k: usize| (c[t] / c[t - k]).ln();
    let sma = |k: usize| mean(&c[t + 1 - k..=t]);

    let log_returns: Vec<f64> = (t - 19..=t).map(|i| (c[i] / c[i - 1]).ln()).collect();

    let (mut gain, mut loss) = (0.0, 0.0);
    for i in t - 13..=t {
        let d = c[i] - c[i - 1];
        if d > 0.0 {
            gain += d;
        } else {
            loss -= d;
        }
    }
    // Averages over the same 14 days, so the ratio of sums equals the ratio of means.
    let rsi = if gain + loss > 0.0 { gain / (gain + loss) } else { 0.5 };

    let vw = &v[t - 19..=t];
    let vsd = sample_std(vw);
    let volume_z = if vsd > 0.0 && vsd.is_finite() {
        (v[t] - mean(vw)) / vsd
    } else {
        0.0
    };

    let sma5 = sma(5);
    let sma20 = sma(20);
    let sma50 = sma(50);
    [
        ret(1),
        ret(5),
        ret(20),
        sma5 / sma20 - 1.0,
        sma20 / sma50 - 1.0,
        sample_std(&log_returns),
        rsi,
        volume_z,
    ]
}

/// Builds rows for every `t` with a full feature window and a known target.
pub(crate) fn design_from_series(s: &Series, horizon: usize) -> DesignMatrix {
    let n = s.len();
    let first = LOOKBACK - 1;
    // Last t with a target: t + horizon <= n - 1.
    let ts: Vec<usize> = if n > first + horizon {
        (first..n - horizon).collect()
    } else {
        Vec::new()
    };
    let mut x = Array2::zeros((ts.len(), N_FEATURES));
    let mut y = Array1::zeros(ts.len());
    for (i, &t) in ts.iter().enumerate() {
        let f = features_at(s, t);
        for (j, val) in f.iter().enumerate() {
            x[[i, j]] = *val;
        }
        y[i] = (s.close[t + horizon] / s.close[t]).ln();
    }
    DesignMatrix {
        x,
        y,
        feature_dates: ts.iter().map(|&t| s.dates[t]).collect(),
        target_dates: ts.iter().map(|&t| s.dates[t + horizon]).collect(),
        rows: ts,
        horizon,
    }
}

/// Design matrix and forward-return targets for horizon `horizon` (>= 1).
/// Rows start at candle `LOOKBACK - 1` and end at the last candle whose
/// target is inside the series.
pub fn design_matrix(candles: &[Candle], horizon: usize) -> Result<DesignMatrix, MlError> {
    if horizon == 0 {
        return Err(MlError::InvalidInput("horizon must be at least 1".into()));
    }
    let s = Series::from_candles(candles)?;
    Ok(design_from_series(&s, horizon))
}

/// Features of candle `t`, computed from `candles[t + 1 - LOOKBACK ..= t]`
/// alone (the rest of the slice is never read).
pub fn feature_row(candles: &[Candle], t: usize) -> Result<[f64; N_FEATURES], MlError> {
    if t >= candles.len() {
        return Err(MlError::InvalidInput(format!(
            "index {t} is outside the {} candles",
            candles.len()
        )));
    }
    if t + 1 < LOOKBACK {
        return Err(MlError::InsufficientHistory {
            rows: t + 1,
            needed: LOOKBACK,
        });
    }
    let window = &candles[t + 1 - LOOKBACK..=t];
    let s = Series::from_candles(window)?;
    Ok(features_at(&s, LOOKBACK - 1))
}

/// Features of the last candle (the live prediction's input; it has no
/// target yet), with that candle's date.
pub fn latest_features(candles: &[Candle]) -> Result<(NaiveDate, [f64; N_FEATURES]), MlError> {
    let Some(last) = candles.last() else {
        return Err(MlError::InsufficientHistory {
            rows: 0,
            needed: LOOKBACK,
        });
    };
    let f = feature_row(candles, candles.len() - 1)?;
    Ok((last.date, f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::test_support::synthetic_candles;
    use rust_decimal::Decimal;

    #[test]
    fn features_at_t_ignore_everything_after_t() {
        let base = synthetic_candles(400, 7);
        let t = 250;
        let mut altered = base.clone();
        for (k, c) in altered.iter_mut().enumerate().skip(t + 1) {
            let bump = Decimal::new(3 + (k % 7) as i64, 0);
            c.close += bump;
            c.open += bump;
            c.high += bump;
            c.low += bump;
            c.volume = c.volume * Decimal::new(5, 0) + Decimal::new(k as i64, 0);
        }
        assert_ne!(base[t + 1], altered[t + 1]);
        assert_eq!(base[..=t], altered[..=t]);

        for h in [1, 5, 30] {
            let a = design_matrix(&base, h).unwrap();
            let b = design_matrix(&altered, h).unwrap();
            let i = a.rows.iter().position(|&r| r == t).unwrap();
            assert_eq!(b.rows[i], t);
            // Exact equality: the row is a pure function of days <= t.
            assert_eq!(a.x.row(i), b.x.row(i));
            // Every earlier row too.
            let upto = ndarray::Slice::from(..=i);
            assert_eq!(
                a.x.slice_axis(ndarray::Axis(0), upto),
                b.x.slice_axis(ndarray::Axis(0), upto)
            );
            // Targets do look ahead (that is their job): the row whose target
            // day is t + 1 must see the change.
            let j = a.rows.iter().position(|&r| r + h == t + 1).unwrap();
            assert_ne!(a.y[j], b.y[j]);
        }
        assert_eq!(feature_row(&base, t).unwrap(), feature_row(&altered, t).unwrap());
        assert_eq!(feature_row(&base, t).unwrap(), feature_row(&base[..=t], t).unwrap());
    }

    #[test]
    fn features_match_hand_formulas() {
        let candles = synthetic_candles(120, 3);
        let s = Series::from_candles(&candles).unwrap();
        let t = 100;
        let f = features_at(&s, t);
        let c = &s.close;
        assert!((f[0] - (c[t] / c[t - 1]).ln()).abs() < 1e-15);
        assert!((f[1] - (c[t] / c[t - 5]).ln()).abs() < 1e-15);
        assert!((f[2] - (c[t] / c[t - 20]).ln()).abs() < 1e-15);
        let sma = |k: usize| c[t + 1 - k..=t].iter().sum::<f64>() / k as f64;
        assert!((f[3] - (sma(5) / sma(20) - 1.0)).abs() < 1e-12);
        assert!((f[4] - (sma(20) / sma(50) - 1.0)).abs() < 1e-12);
        assert!(f[5] > 0.0);
        assert!((0.0..=1.0).contains(&f[6]));
        assert!(f.iter().all(|x| x.is_finite()));
    }

    #[test]
    fn design_matrix_shape_and_targets() {
        let candles = synthetic_candles(300, 11);
        let h = 5;
        let d = design_matrix(&candles, h).unwrap();
        assert_eq!(d.len(), 300 - (LOOKBACK - 1) - h);
        assert_eq!(d.rows[0], LOOKBACK - 1);
        assert_eq!(*d.rows.last().unwrap(), 300 - 1 - h);
        for i in 0..d.len() {
            let t = d.rows[i];
            assert!(d.target_dates[i] > d.feature_dates[i]);
            let c0 = candles[t].close.to_f64().unwrap();
            let c1 = candles[t + h].close.to_f64().unwrap();
            assert_eq!(d.y[i], (c1 / c0).ln());
        }
        let (date, f) = latest_features(&candles).unwrap();
        assert_eq!(date, candles[299].date);
        assert_eq!(f, feature_row(&candles, 299).unwrap());
    }

    #[test]
    fn volatility_scale_is_vol_20d_known_on_its_day() {
        assert_eq!(FEATURE_NAMES[VOL_20D], "vol_20d");
        let base = synthetic_candles(300, 4);
        let t = 200;
        let mut altered = base.clone();
        for c in altered.iter_mut().skip(t + 1) {
            c.close *= Decimal::new(2, 0);
        }
        let h = 5;
        let a = design_matrix(&base, h).unwrap();
        let b = design_matrix(&altered, h).unwrap();
        let sa = volatility_scales(a.x.view(), h);
        let sb = volatility_scales(b.x.view(), h);
        let i = a.rows.iter().position(|&r| r == t).unwrap();
        // Up to day t the scales ignore the jump after it, although the
        // targets of the last h rows see it; day t + 1 sees it.
        let upto = ndarray::Slice::from(..=i);
        assert_eq!(
            sa.slice_axis(ndarray::Axis(0), upto),
            sb.slice_axis(ndarray::Axis(0), upto)
        );
        assert_ne!(a.y[i], b.y[i]);
        assert_ne!(sa[i + 1], sb[i + 1]);
        // The h-day standard deviation from day t's last 20 returns alone.
        let f = feature_row(&base[t + 1 - LOOKBACK..=t], LOOKBACK - 1).unwrap();
        assert_eq!(sa[i], f[VOL_20D] * (h as f64).sqrt());
        // Flat prices are floored rather than zero.
        let mut flat = synthetic_candles(80, 4);
        for c in flat.iter_mut().skip(40) {
            c.close = Decimal::new(100, 0);
        }
        let d = design_matrix(&flat, 1).unwrap();
        let s = volatility_scales(d.x.view(), 1);
        assert_eq!(s[s.len() - 1], MIN_DAILY_VOLATILITY);
    }

    #[test]
    fn rejects_bad_candles() {
        let mut candles = synthetic_candles(60, 1);
        candles[10].close = Decimal::ZERO;
        assert!(matches!(design_matrix(&candles, 1), Err(MlError::InvalidInput(_))));
        let mut candles = synthetic_candles(60, 1);
        candles.swap(3, 4);
        assert!(matches!(design_matrix(&candles, 1), Err(MlError::InvalidInput(_))));
    }
}
