//! The models: the part of the design that fits on a training window and
//! predicts for rows it has not seen.
//!
//! - Features are standardised with the training window's mean and sample
//!   standard deviation only; test rows are scaled with those same numbers,
//!   so no statistic of the test period reaches the model. A column that is
//!   constant over the training window (e.g. `volume_z` for a series without
//!   volume) carries no information and would make the least-squares problem
//!   singular, so it is left out of that fit.
//! - The return model is ordinary least squares with an intercept
//!   (`linfa_linear::LinearRegression`, pure-Rust QR, no BLAS/LAPACK). It
//!   predicts the h-day forward log return. No ridge penalty: with eight
//!   standardised features and hundreds of rows the fit is well conditioned.
//! - The direction model is `linfa_logistic::LogisticRegression` on the label
//!   `target > 0`, with L-BFGS capped at a fixed [`LOGISTIC_MAX_ITERATIONS`]
//!   from a zero start, so the same input always gives the same output. Its
//!   L2 weight ([`LOGISTIC_ALPHA`]) is the crate default; the loss is summed
//!   over rows, so it is negligible next to thousands of samples. A training
//!   window with only one direction cannot fit a logistic model; it then
//!   predicts the Laplace-smoothed frequency `(ups + 1) / (n + 2)`.
//! - The prediction interval scales with recent volatility: empirical
//!   quantiles of residuals, each divided by its row's volatility scale, are
//!   multiplied by the scale of the row being forecast (see
//!   [`ScaledInterval`]).

use linfa::traits::{Fit, Predict};
use linfa::Dataset;
use linfa_linear::{FittedLinearRegression, LinearRegression};
use linfa_logistic::{FittedLogisticRegression, LogisticRegression};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

use super::MlError;

/// L-BFGS iterations for the logistic fit; fixed for determinism and speed.
pub const LOGISTIC_MAX_ITERATIONS: u64 = 100;

/// L2 penalty weight of the logistic fit (linfa's default, stated explicitly).
pub const LOGISTIC_ALPHA: f64 = 1.0;

/// Column scaling learned from a training window.
#[derive(Debug, Clone)]
pub struct Standardizer {
    mean: Vec<f64>,
    std: Vec<f64>,
    /// Columns that vary over the training window; the others are dropped.
    active: Vec<usize>,
}

impl Standardizer {
    /// Learns mean and sample standard deviation per column of `x`.
    pub fn fit(x: ArrayView2<'_, f64>) -> Self {
        let n = x.nrows();
        let mut mean = Vec::with_capacity(x.ncols());
        let mut std = Vec::with_capacity(x.ncols());
        let mut active = Vec::new();
        for (j, col) in x.axis_iter(Axis(1)).enumerate() {
            let m = if n > 0 { col.sum() / n as f64 } else { 0.0 };
            let sd = if n > 1 {
                (col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1) as f64).sqrt()
            } else {
                0.0
            };
            // Relative threshold: a column equal up to rounding is constant.
            if sd.is_finite() && sd > 1e-12 * m.abs().max(1.0) {
                active.push(j);
            }
            mean.push(m);
            std.push(sd);
        }
        Self { mean, std, active }
    }

    /// Scales `x` with the training statistics, keeping only active columns.
    pub fn transform(&self, x: ArrayView2<'_, f64>) -> Array2<f64> {
        let mut out = Array2::zeros((x.nrows(), self.active.len()));
        for (k, &j) in self.active.iter().enumerate() {
            let (m, sd) = (self.mean[j], self.std[j]);
            out.column_mut(k).assign(&x.column(j).mapv(|v| (v - m) / sd));
        }
        out
    }

    /// Indices of the columns that are kept.
    pub fn active_columns(&self) -> &[usize] {
        &self.active
    }
}

#[derive(Debug, Clone)]
enum Direction {
    Logistic(FittedLogisticRegression<f64, bool>),
    /// Training window had a single direction.
    Constant(f64),
}

/// Both models fitted on one training window, with its scaling.
#[derive(Debug, Clone)]
pub struct FittedModels {
    scaler: Standardizer,
    linear: FittedLinearRegression<f64>,
    direction: Direction,
}

impl FittedModels {
    /// Fits scaling, the return regression and the direction classifier on
    /// `x` (raw features) and `y` (forward log returns).
    pub fn fit(x: ArrayView2<'_, f64>, y: ArrayView1<'_, f64>) -> Result<Self, MlError> {
        if x.nrows() != y.len() {
            return Err(MlError::Model(format!(
                "{} feature rows but {} targets",
                x.nrows(),
                y.len()
            )));
        }
        if x.iter().chain(y.iter()).any(|v| !v.is_finite()) {
            return Err(MlError::Model("non-finite value in training data".into()));
        }
        let scaler = Standardizer::fit(x);
        let xs = scaler.transform(x);
        // More rows than parameters, or least squares is underdetermined.
        if xs.nrows() <= xs.ncols() + 1 {
            return Err(MlError::Model(format!(
                "{} training rows are too few for {} features",
                xs.nrows(),
                xs.ncols()
            )));
        }

        let linear = LinearRegression::new()
            .fit(&Dataset::new(xs.clone(), y.to_owned()))
            .map_err(|e| MlError::Model(format!("linear regression: {e}")))?;
        if !linear.intercept().is_finite() || linear.params().iter().any(|v| !v.is_finite()) {
            return Err(MlError::Model(
                "linear regression produced non-finite coefficients".into(),
            ));
        }

        let labels: Array1<bool> = y.mapv(|v| v > 0.0);
        let ups = labels.iter().filter(|&&u| u).count();
        let n = labels.len();
        let direction = if ups == 0 || ups == n {
            Direction::Constant((ups as f64 + 1.0) / (n as f64 + 2.0))
        } else {
            let fitted = LogisticRegression::<f64>::default()
                .alpha(LOGISTIC_ALPHA)
                .max_iterations(LOGISTIC_MAX_ITERATIONS)
                .fit(&Dataset::new(xs, labels))
                .map_err(|e| MlError::Model(format!("logistic regression: {e}")))?;
            Direction::Logistic(fitted)
        };

        Ok(Self {
            scaler,
            linear,
            direction,
        })
    }

    /// Predicted forward log return for each row of raw features `x`.
    pub fn predict_return(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        let xs = self.scaler.transform(x);
        self.linear.predict(&xs)
    }

    /// Probability that the forward return is positive, for each row.
    pub fn probability_up(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        match &self.direction {
            Direction::Constant(p) => Array1::from_elem(x.nrows(), *p),
            Direction::Logistic(m) => {
                let xs = self.scaler.transform(x);
                // linfa reports the probability of its "positive" class, which
                // is whichever label was more frequent in training.
                let p = m.predict_probabilities(&xs);
                let p = if m.labels().pos.class { p } else { p.mapv(|v| 1.0 - v) };
                p.mapv(|v| v.clamp(0.0, 1.0))
            }
        }
    }

    /// OLS coefficients on the standardised active columns, in
    /// [`Standardizer::active_columns`] order.
    pub fn linear_coefficients(&self) -> &Array1<f64> {
        self.linear.params()
    }

    /// OLS intercept (on standardised features: the training mean of `y`
    /// up to rounding).
    pub fn linear_intercept(&self) -> f64 {
        self.linear.intercept()
    }

    /// The scaling learned from the training window.
    pub fn scaler(&self) -> &Standardizer {
        &self.scaler
    }
}

/// Empirical quantile with linear interpolation between order statistics
/// (Hyndman–Fan type 7). `sorted` must be ascending and non-empty.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = pos - lo as f64;
            sorted[lo] + (sorted[hi] - sorted[lo]) * frac
        }
    }
}

/// Smallest half-width of an interval, in log-return units, so that the
/// interval strictly brackets the point forecast even for residuals that are
/// all zero.
pub const MIN_INTERVAL_HALF_WIDTH: f64 = 1e-6;

/// Offsets `(low, high)` to add to a predicted log return for a central
/// interval at `level`, from the `(1 - level) / 2` and `(1 + level) / 2`
/// quantiles of out-of-sample residuals `y - ŷ`.
///
/// The interval must contain the point forecast, so `low < 0 < high` is
/// enforced: if the quantiles do not bracket zero (a biased model) both ends
/// are widened symmetrically to `±max(|low|, |high|)`, and a half-width
/// below [`MIN_INTERVAL_HALF_WIDTH`] is raised to it.
pub fn interval_offsets(residuals: &[f64], level: f64) -> Result<(f64, f64), MlError> {
    let mut r: Vec<f64> = residuals.iter().copied().filter(|v| v.is_finite()).collect();
    if r.is_empty() {
        return Err(MlError::Model("no out-of-sample residuals".into()));
    }
    r.sort_by(f64::total_cmp);
    let tail = (1.0 - level) / 2.0;
    let mut low = quantile(&r, tail);
    let mut high = quantile(&r, 1.0 - tail);
    if low >= 0.0 || high <= 0.0 {
        let w = low.abs().max(high.abs());
        low = -w;
        high = w;
    }
    low = low.min(-MIN_INTERVAL_HALF_WIDTH);
    high = high.max(MIN_INTERVAL_HALF_WIDTH);
    Ok((low, high))
}

/// A central interval in units of a row's volatility scale (see
/// [`super::features::volatility_scales`]): a row whose predicted log return
/// is `ŷ` and whose scale is `s` gets `ŷ + s · [low, high]`.
///
/// Residuals of calm and volatile days are made comparable by dividing each
/// by its own day's scale before taking quantiles, so one calibration serves
/// both: the interval is narrow when the last 20 days were calm and wide
/// when they were not, instead of one width for every market.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScaledInterval {
    /// Lower quantile of the standardised residuals (negative).
    pub low: f64,
    /// Upper quantile of the standardised residuals (positive).
    pub high: f64,
}

impl ScaledInterval {
    /// Calibrates at `level` on residuals `y - ŷ` and their rows' volatility
    /// scales (positive), via [`interval_offsets`] of `residual / scale`.
    pub fn calibrate(residuals: ArrayView1<'_, f64>, scales: ArrayView1<'_, f64>, level: f64) -> Result<Self, MlError> {
        if residuals.len() != scales.len() {
            return Err(MlError::Model(format!(
                "{} residuals but {} volatility scales",
                residuals.len(),
                scales.len()
            )));
        }
        let standardised: Vec<f64> = residuals.iter().zip(scales.iter()).map(|(r, s)| r / s).collect();
        let (low, high) = interval_offsets(&standardised, level)?;
        Ok(Self { low, high })
    }

    /// Offsets `(low, high)` to add to the predicted log return of a row
    /// with volatility scale `scale`; at least [`MIN_INTERVAL_HALF_WIDTH`]
    /// either side.
    pub fn offsets(&self, scale: f64) -> (f64, f64) {
        (
            (self.low * scale).min(-MIN_INTERVAL_HALF_WIDTH),
            (self.high * scale).max(MIN_INTERVAL_HALF_WIDTH),
        )
    }

    /// Whether a row with volatility scale `scale` and residual `y - ŷ`
    /// fell inside its interval (ends included).
    pub fn covers(&self, scale: f64, residual: f64) -> bool {
        let (low, high) = self.offsets(scale);
        low <= residual && residual <= high
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::features::design_matrix;
    use crate::ml::test_support::synthetic_candles;

    /// Solves `a · x = b` by Gaussian elimination with partial pivoting.
    fn solve(mut a: Array2<f64>, mut b: Array1<f64>) -> Array1<f64> {
        let n = b.len();
        for col in 0..n {
            let pivot = (col..n)
                .max_by(|&i, &j| a[[i, col]].abs().total_cmp(&a[[j, col]].abs()))
                .unwrap();
            assert!(a[[pivot, col]].abs() > 1e-300, "singular matrix");
            if pivot != col {
                for k in 0..n {
                    a.swap([col, k], [pivot, k]);
                }
                b.swap(col, pivot);
            }
            for row in col + 1..n {
                let f = a[[row, col]] / a[[col, col]];
                if f != 0.0 {
                    for k in col..n {
                        a[[row, k]] -= f * a[[col, k]];
                    }
                    b[row] -= f * b[col];
                }
            }
        }
        let mut x = Array1::zeros(n);
        for row in (0..n).rev() {
            let mut acc = b[row];
            for k in row + 1..n {
                acc -= a[[row, k]] * x[k];
            }
            x[row] = acc / a[[row, row]];
        }
        x
    }

    fn rel_close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn gaussian_elimination_solves_a_known_system() {
        let a = ndarray::array![[0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [2.0, 1.0, 0.0]];
        let x = ndarray::array![1.0, -2.0, 3.0];
        let b = a.dot(&x);
        let got = solve(a, b);
        for i in 0..3 {
            assert!((got[i] - x[i]).abs() < 1e-12);
        }
    }

    #[test]
    fn linear_model_equals_closed_form_least_squares() {
        let candles = synthetic_candles(700, 42);
        let d = design_matrix(&candles, 5).unwrap();
        let models = FittedModels::fit(d.x.view(), d.y.view()).unwrap();
        assert_eq!(models.scaler().active_columns().len(), d.x.ncols());

        // Same design matrix the model saw: standardised features plus a
        // column of ones for the intercept.
        let xs = models.scaler().transform(d.x.view());
        let n = xs.nrows();
        let p = xs.ncols();
        let mut xa = Array2::ones((n, p + 1));
        xa.slice_axis_mut(Axis(1), ndarray::Slice::from(..p)).assign(&xs);
        let xtx = xa.t().dot(&xa);
        let xty = xa.t().dot(&d.y);
        let beta = solve(xtx, xty);

        let coef = models.linear_coefficients();
        assert_eq!(coef.len(), p);
        for j in 0..p {
            assert!(
                rel_close(coef[j], beta[j], 1e-6),
                "coef {j}: linfa {} vs closed form {}",
                coef[j],
                beta[j]
            );
        }
        assert!(
            rel_close(models.linear_intercept(), beta[p], 1e-6),
            "intercept: linfa {} vs closed form {}",
            models.linear_intercept(),
            beta[p]
        );
        // With centred features the intercept is the mean target.
        assert!(rel_close(beta[p], d.y.mean().unwrap(), 1e-9));
    }

    #[test]
    fn standardizer_uses_training_statistics_and_drops_constant_columns() {
        let train = ndarray::array![[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]];
        let s = Standardizer::fit(train.view());
        assert_eq!(s.active_columns(), &[0]);
        let test = ndarray::array![[4.0, 9.0]];
        let t = s.transform(test.view());
        assert_eq!(t.shape(), &[1, 1]);
        // mean 2, sample sd 1
        assert_eq!(t[[0, 0]], 2.0);
    }

    #[test]
    fn probabilities_are_probabilities_of_up() {
        let candles = synthetic_candles(600, 9);
        let d = design_matrix(&candles, 1).unwrap();
        let models = FittedModels::fit(d.x.view(), d.y.view()).unwrap();
        let p = models.probability_up(d.x.view());
        assert!(p.iter().all(|v| (0.0..=1.0).contains(v)));
        // Flip every target's sign: P(up) must become roughly 1 - P(up).
        let flipped = d.y.mapv(|v| -v);
        let m2 = FittedModels::fit(d.x.view(), flipped.view()).unwrap();
        let p2 = m2.probability_up(d.x.view());
        let max_gap = p
            .iter()
            .zip(p2.iter())
            .map(|(a, b)| (a + b - 1.0).abs())
            .fold(0.0, f64::max);
        assert!(max_gap < 1e-3, "max |p + p' - 1| = {max_gap}");
    }

    #[test]
    fn interval_offsets_bracket_zero() {
        let r: Vec<f64> = (0..101).map(|i| (i as f64 - 50.0) / 100.0).collect();
        let (lo, hi) = interval_offsets(&r, 0.9).unwrap();
        assert!((lo + 0.45).abs() < 1e-12 && (hi - 0.45).abs() < 1e-12);
        // All-positive residuals: widened symmetrically.
        let r: Vec<f64> = (1..=100).map(|i| i as f64).collect();
        let (lo, hi) = interval_offsets(&r, 0.9).unwrap();
        assert!(lo < 0.0 && hi > 0.0 && (lo + hi).abs() < 1e-12);
        let (lo, hi) = interval_offsets(&[0.0; 10], 0.9).unwrap();
        assert!(lo < 0.0 && hi > 0.0);
        assert!(interval_offsets(&[], 0.9).is_err());
    }

    #[test]
    fn scaled_interval_standardises_residuals_and_rescales() {
        // The same standardised residuals -50..=50 (in hundredths) on calm
        // (scale 1) and volatile (scale 4) rows calibrate to ±0.45.
        let z: Vec<f64> = (0..101).map(|i| (i as f64 - 50.0) / 100.0).collect();
        let scales: Array1<f64> = (0..202).map(|i| if i % 2 == 0 { 1.0 } else { 4.0 }).collect();
        let residuals: Array1<f64> = (0..202).map(|i| z[i / 2] * scales[i]).collect();
        let iv = ScaledInterval::calibrate(residuals.view(), scales.view(), 0.9).unwrap();
        assert!((iv.low + 0.45).abs() < 1e-12 && (iv.high - 0.45).abs() < 1e-12);
        // A volatile row's interval is proportionally wider than a calm one's.
        let (calm_lo, calm_hi) = iv.offsets(1.0);
        let (wild_lo, wild_hi) = iv.offsets(4.0);
        assert!((wild_hi - wild_lo - 4.0 * (calm_hi - calm_lo)).abs() < 1e-12);
        assert!(iv.covers(4.0, 1.7) && !iv.covers(1.0, 1.7));
        assert!(iv.covers(1.0, -0.45) && !iv.covers(1.0, -0.46));
        // Unscaled, the same residuals give one width for both.
        let ones = Array1::ones(202);
        let flat = ScaledInterval::calibrate(residuals.view(), ones.view(), 0.9).unwrap();
        assert_eq!(
            flat.offsets(1.0),
            interval_offsets(residuals.as_slice().unwrap(), 0.9).unwrap()
        );
        // A tiny scale still brackets the forecast.
        let (lo, hi) = iv.offsets(0.0);
        assert!(lo < 0.0 && hi > 0.0);
        assert!(ScaledInterval::calibrate(
            residuals.view(),
            scales.slice_axis(Axis(0), ndarray::Slice::from(..10)),
            0.9
        )
        .is_err());
    }
}
