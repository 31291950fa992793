//! `POST /predictions`: a model's forecast with its out-of-sample record.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use rust_decimal::prelude::FromPrimitive;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use super::limited;
use super::prices::unknown_symbol;
use crate::domain::Symbol;
use crate::http::error::{ApiError, ApiResult};
use crate::http::extract::{AppJson, AuthUser};
use crate::http::state::AppState;
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

fn price(x: f64) -> Value {
    Decimal::from_f64(x)
        .map(|d| Value::String(money(d.round_dp(6))))
        .unwrap_or(Value::Null)
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The evaluation block (shared with `fortfolio model evaluate --json`).
pub fn evaluation_json(e: &Evaluation) -> Value {
    json!({
        "method": e.method,
        "folds": e.folds.len(),
        "directional_accuracy": round(e.directional_accuracy, 4),
        "baseline_directional_accuracy": round(e.baseline_directional_accuracy, 4),
        "mae": round(e.mae, 6),
        "baseline_mae": round(e.baseline_mae, 6),
        "interval_level": e.interval_level,
        "interval_coverage": round(e.interval_coverage, 4),
        "fold_details": e.folds,
    })
}

fn prediction_json(symbol: &str, p: &Prediction) -> Value {
    // The model works in log returns; clients get the simple return.
    let simple = p.predicted_return.exp_m1();
    json!({
        "symbol": symbol,
        "horizon_days": p.horizon,
        "as_of": p.as_of.to_string(),
        "last_close": price(p.last_close),
        "predicted_close": price(p.predicted_close),
        "predicted_return": round(simple, 6),
        "direction": if p.probability_up >= 0.5 { "up" } else { "down" },
        "probability_up": round(p.probability_up, 4),
        "interval": {"low": price(p.interval_low), "high": price(p.interval_high), "level": p.level},
        "model": {
            "kind": p.model_kind,
            "features": p.features,
            "trained_from": p.trained_from.to_string(),
            "trained_to": p.trained_to.to_string(),
            "samples": p.samples,
        },
        "evaluation": evaluation_json(&p.evaluation),
    })
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
) -> ApiResult<Json<Value>> {
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
    Ok(Json(prediction_json(symbol.as_str(), &p)))
}
