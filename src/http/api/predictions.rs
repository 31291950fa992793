//! `POST /predictions`: a model's forecast with its out-of-sample record.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::prices::unknown_symbol;
use super::Limits;
use crate::domain::Symbol;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppJson, AuthUser};
use crate::http::state::AppState;
use crate::ml::evaluate::FoldReport;
use crate::ml::{Evaluation, MlError, Prediction, MAX_HORIZON};
use crate::portfolio::money;
use crate::security::rate_limit::Group;

pub fn router(limits: Limits) -> OpenApiRouter<AppState> {
    limits.apply(Group::Predictions, OpenApiRouter::new().routes(routes!(create)))
}

problems!(PredictionProblems {
    404 => ["unknown_symbol"],
    422 => ["insufficient_history"],
});

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PredictionRequest)]
struct PredictionBody {
    #[schema(value_type = crate::domain::schema::SymbolText)]
    symbol: String,
    /// Trading days ahead.
    #[serde(default = "default_horizon", deserialize_with = "whole_number")]
    #[schema(minimum = 1, maximum = 30, default = 5)]
    horizon_days: i64,
}

fn default_horizon() -> i64 {
    5
}

/// A JSON integer, however written (`13`, `13.0`, `1.3e1`), as JSON Schema
/// counts integers.
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(serde::de::Error::custom("expected a whole number")),
    }
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
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Evaluation)]
pub struct EvaluationView<'a> {
    #[schema(value_type = String, example = "walk-forward")]
    pub method: &'static str,
    pub folds: usize,
    pub directional_accuracy: f64,
    pub baseline_directional_accuracy: f64,
    pub mae: f64,
    pub baseline_mae: f64,
    pub interval_level: f64,
    pub interval_coverage: f64,
    #[schema(value_type = Vec<FoldReport>)]
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

/// The prediction interval of the close.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Interval)]
pub struct IntervalView {
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub low: Option<String>,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub high: Option<String>,
    /// The nominal coverage, e.g. 0.8.
    pub level: f64,
}

/// The model that made the forecast.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Model)]
pub struct ModelView<'a> {
    #[schema(value_type = String)]
    pub kind: &'static str,
    #[schema(value_type = Vec<String>)]
    pub features: &'a [&'static str],
    #[schema(value_type = crate::domain::schema::Date)]
    pub trained_from: String,
    #[schema(value_type = crate::domain::schema::Date)]
    pub trained_to: String,
    pub samples: usize,
}

/// A forecast with the model that made it and its record.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Prediction)]
pub struct PredictionView<'a> {
    #[schema(value_type = String, example = "AAPL")]
    pub symbol: &'a str,
    pub horizon_days: usize,
    /// The date of the last close used.
    #[schema(value_type = crate::domain::schema::Date)]
    pub as_of: String,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub last_close: Option<String>,
    #[schema(value_type = Option<crate::domain::schema::Money>)]
    pub predicted_close: Option<String>,
    /// Simple return to the predicted close.
    pub predicted_return: f64,
    #[schema(value_type = String, pattern = "^(up|down)$")]
    pub direction: &'static str,
    #[schema(minimum = 0.0, maximum = 1.0)]
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

/// Forecast a symbol's close
///
/// A model trained on the symbol's daily history, with its walk-forward
/// out-of-sample record beside a naive baseline.
#[utoipa::path(
    post,
    path = "/predictions",
    operation_id = "predict",
    tag = "predictions",
    security(("bearer" = []), ("cookie" = [])),
    request_body(content = PredictionBody, example = json!({"symbol": "AAPL", "horizon_days": 5})),
    responses((status = 200, description = "The forecast", body = PredictionView), PredictionProblems),
)]
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
