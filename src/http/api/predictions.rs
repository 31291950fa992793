//! `POST /predictions`: a model's forecast with its out-of-sample record.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::limited;
use super::prices::unknown_symbol;
use crate::domain::Symbol;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppJson, AuthUser};
use crate::http::state::AppState;
use crate::ml::evaluate::FoldReport;
use crate::ml::{Evaluation, MlError, Prediction, MAX_HORIZON};
use crate::portfolio::money;
use crate::security::rate_limit::Group;

pub fn router(state: &AppState) -> Router<AppState> {
    limited(
        state,
        Group::Predictions,
        Router::new().route("/predictions", post(create)),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictionBody {
    symbol: String,
    #[serde(default = "default_horizon")]
    horizon_days: i64,
}

fn default_horizon() -> i64 {
    5
}

/// A model price as money, to 6 places (`None` if not finite).
fn price(x: f64) -> Option<String> {
    Decimal::from_f64(x).map(|d| money(d.round_dp(6)))
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The out-of-sample record (shared with `fortfolio model evaluate --json`).
#[derive(Debug, Serialize)]
pub struct EvaluationView<'a> {
    pub method: &'static str,
    pub folds: usize,
    pub directional_accuracy: f64,
    pub baseline_directional_accuracy: f64,
    pub mae: f64,
    pub baseline_mae: f64,
    pub interval_level: f64,
    pub interval_coverage: f64,
    pub fold_details: &'a [FoldReport],
}

impl<'a> From<&'a Evaluation> for EvaluationView<'a> {
    fn from(e: &'a Evaluation) -> Self {
        Self {
            method: e.method,
            folds: e.folds.len(),
            directional_accuracy: round(e.directional_accuracy, 4),
            baseline_directional_accuracy: round(e.baseline_directional_accuracy, 4),
            mae: round(e.mae, 6),
            baseline_mae: round(e.baseline_mae, 6),
            interval_level: e.interval_level,
            interval_coverage: round(e.interval_coverage, 4),
            fold_details: &e.folds,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct IntervalView {
    pub low: Option<String>,
    pub high: Option<String>,
    pub level: f64,
}

#[derive(Debug, Serialize)]
pub struct ModelView<'a> {
    pub kind: &'static str,
    pub features: &'a [&'static str],
    pub trained_from: String,
    pub trained_to: String,
    pub samples: usize,
}

/// A forecast with the model that made it and its record.
#[derive(Debug, Serialize)]
pub struct PredictionView<'a> {
    pub symbol: &'a str,
    pub horizon_days: usize,
    pub as_of: String,
    pub last_close: Option<String>,
    pub predicted_close: Option<String>,
    pub predicted_return: f64,
    pub direction: &'static str,
    pub probability_up: f64,
    pub interval: IntervalView,
    pub model: ModelView<'a>,
    pub evaluation: EvaluationView<'a>,
}

impl<'a> PredictionView<'a> {
    pub fn new(symbol: &'a str, p: &'a Prediction) -> Self {
        Self {
            symbol,
            horizon_days: p.horizon,
            as_of: p.as_of.to_string(),
            last_close: price(p.last_close),
            predicted_close: price(p.predicted_close),
            // The model works in log returns; clients get the simple return.
            predicted_return: round(p.predicted_return.exp_m1(), 6),
            direction: if p.probability_up >= 0.5 { "up" } else { "down" },
            probability_up: round(p.probability_up, 4),
            interval: IntervalView {
                low: price(p.interval_low),
                high: price(p.interval_high),
                level: p.level,
            },
            model: ModelView {
                kind: p.model_kind,
                features: &p.features,
                trained_from: p.trained_from.to_string(),
                trained_to: p.trained_to.to_string(),
                samples: p.samples,
            },
            evaluation: EvaluationView::from(&p.evaluation),
        }
    }
}

pub fn ml_error(e: MlError) -> ApiError {
    match e {
        MlError::InsufficientHistory { rows, needed } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "insufficient_history",
            format!("{rows} days of prices are known; at least {needed} are needed"),
        )
        .with("rows", rows)
        .with("needed", needed),
        MlError::InvalidInput(why) => ApiError::validation("symbol", format!("this series cannot be modelled: {why}")),
        MlError::Model(why) => ApiError::internal(why),
    }
}

async fn create(
    State(state): State<AppState>,
    _auth: AuthUser,
    AppJson(body): AppJson<PredictionBody>,
) -> ApiResult<Response> {
    let symbol = Symbol::parse(&body.symbol).map_err(|e| ApiError::validation("symbol", e))?;
    if !(1..=MAX_HORIZON as i64).contains(&body.horizon_days) {
        return Err(ApiError::validation(
            "horizon_days",
            format!("horizon_days must be from 1 to {MAX_HORIZON}"),
        ));
    }
    let series = state
        .market
        .book
        .get(symbol.as_str())
        .ok_or_else(|| unknown_symbol(symbol.as_str()))?;
    let version = state.market.book.version(symbol.as_str());
    let p = state
        .predictor
        .predict(series, body.horizon_days as usize, version)
        .await
        .map_err(ml_error)?;
    Ok(Json(PredictionView::new(symbol.as_str(), &p)).into_response())
}
