//! The API's one error type: every failure a client can see becomes an
//! RFC 9457 problem document with a stable `code` (SPEC §1, §9).
//!
//! Internal failures are logged with the request id and reach the client as a
//! bare `500 internal`; their cause never leaves the process.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::accounts::{AccountsError, SecretKind};
use crate::portfolio::service::PortfolioError;
use crate::state::StateError;
use crate::store::StoreError;

/// Result alias for handlers and services.
pub type ApiResult<T> = Result<T, ApiError>;

/// An error that is answered to the client as a problem document.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    /// Extra members of the problem document (e.g. `attempts_remaining`).
    pub extra: Map<String, Value>,
    /// Extra response headers (e.g. `Retry-After`).
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            extra: Map::new(),
            headers: Vec::new(),
        }
    }

    /// Replaces the stable code (keeps status and detail).
    pub fn recode(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// Adds a member to the problem document.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: header::HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.push((name, v));
        }
        self
    }

    pub fn validation(field: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail).with("field", field)
    }

    pub fn invalid_json(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail).with_header(header::WWW_AUTHENTICATE, "Bearer")
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    /// A failure whose cause must stay server-side.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server could not complete the request",
        )
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }

    /// The problem document, as JSON.
    pub fn body(&self) -> Value {
        serde_json::to_value(self.problem()).unwrap_or_default()
    }

    fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:fortfolio:problem:{}", self.code),
            title: self.title().to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_string(),
            extra: self.extra.clone(),
        }
    }
}

/// An RFC 9457 problem document. Some problems carry more members:
/// `field` (the request field or parameter at fault), `attempts_remaining`,
/// `locked_until`, `suggestions` (a weak password's), `held` (an
/// insufficient quantity's), `rows` and `needed` (insufficient history),
/// `symbol`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "urn:fortfolio:problem:validation_failed",
    "title": "Unprocessable Entity",
    "status": 422,
    "detail": "quantity: must be greater than 0",
    "code": "validation_failed",
    "field": "quantity",
}))]
pub struct Problem {
    /// `urn:fortfolio:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status's reason phrase.
    pub title: String,
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// The stable code, for programs.
    pub code: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body().to_string();
        let mut resp = (self.status, body).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        for (name, value) in self.headers {
            headers.insert(name, value);
        }
        resp
    }
}

impl ApiError {
    /// A dependency is down for now; the client may retry.
    /// A backend is out of reach (or lost a race it can win on retry):
    /// `503 storage_unavailable` with `Retry-After`, never a 500 (SPEC §10).
    pub fn unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "dependency unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "storage cannot be reached right now; try again shortly",
        )
        .with_header(header::RETRY_AFTER, "1")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => ApiError::unavailable(e),
            StoreError::Backend(_) | StoreError::Corrupt { .. } => ApiError::internal(e),
        }
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        match e {
            StateError::Store(e) => e.into(),
            StateError::Unavailable(_) => ApiError::unavailable(e),
            StateError::Backend(_) => ApiError::internal(e),
        }
    }
}

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> Self {
        let code = e.code();
        match e {
            AccountsError::Invalid { field, message } => ApiError::validation(field, message),
            AccountsError::WeakPassword { field, rejection } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, rejection.reason)
                    .with("field", field)
                    .with("suggestions", rejection.suggestions)
            }
            e @ AccountsError::SamePassword => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string()).with("field", "new_password")
            }
            e @ AccountsError::EmailTaken => ApiError::conflict(code, e.to_string()),
            AccountsError::WrongSecret {
                wrong,
                attempts_remaining,
            } => {
                let detail = match wrong.kind {
                    SecretKind::Password => "email or password is wrong",
                    SecretKind::TotpCode => "the two-factor code is wrong or already used",
                    SecretKind::BackupCode => "the backup code is wrong or already used",
                };
                let e = ApiError::new(StatusCode::UNAUTHORIZED, code, detail)
                    .with("attempts_remaining", attempts_remaining);
                match wrong.field {
                    Some(field) => e.with("field", field),
                    None => e,
                }
            }
            AccountsError::Locked { until } => {
                let retry = (until - chrono::Utc::now()).num_seconds().max(1);
                ApiError::new(
                    StatusCode::LOCKED,
                    code,
                    "too many failed attempts; the account is temporarily locked",
                )
                .with("locked_until", crate::domain::rfc3339(until))
                .with_header(header::RETRY_AFTER, &retry.to_string())
            }
            e @ AccountsError::Disabled => ApiError::new(StatusCode::FORBIDDEN, code, e.to_string()),
            e @ AccountsError::Overloaded { retry_after } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string())
                    .with_header(header::RETRY_AFTER, &retry_after.as_secs().max(1).to_string())
            }
            AccountsError::Unauthenticated(detail) => ApiError::unauthorized(detail),
            e @ (AccountsError::RefreshTokenReused | AccountsError::ChallengeExpired) => {
                ApiError::new(StatusCode::UNAUTHORIZED, code, e.to_string())
            }
            e @ AccountsError::TwoFactorAlreadyEnabled => ApiError::conflict(code, e.to_string()),
            AccountsError::TwoFactorNotEnabled { hint } => {
                let e = ApiError::conflict(code, "two-factor authentication is not enabled");
                match hint {
                    Some(hint) => e.with("detail_hint", hint),
                    None => e,
                }
            }
            AccountsError::NotFound(detail) => ApiError::not_found(detail),
            AccountsError::Forbidden(detail) => ApiError::forbidden(detail),
            e @ AccountsError::ReauthenticationRequired { authenticated_at } => {
                ApiError::new(StatusCode::FORBIDDEN, code, e.to_string())
                    .with("authenticated_at", crate::domain::rfc3339(authenticated_at))
            }
            e @ AccountsError::InvalidToken => ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string()),
            e @ AccountsError::EmailUnavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, e.to_string()),
            e @ AccountsError::EmailNotVerified => ApiError::new(StatusCode::FORBIDDEN, code, e.to_string()),
            AccountsError::Store(e) => e.into(),
            AccountsError::State(e) => e.into(),
            AccountsError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

impl From<PortfolioError> for ApiError {
    fn from(e: PortfolioError) -> Self {
        let unprocessable =
            |code, e: &PortfolioError| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, e.to_string());
        match e {
            PortfolioError::Invalid { field, message } => ApiError::validation(field, message),
            e @ PortfolioError::PriceUnavailable { .. } => {
                unprocessable("price_unavailable", &e).with("field", "price")
            }
            e @ PortfolioError::InsufficientQuantity { held, .. } => unprocessable("insufficient_quantity", &e)
                .with("held", crate::domain::portfolio::amount(held))
                .with("field", "quantity"),
            e @ PortfolioError::OutOfRange => unprocessable("amount_out_of_range", &e),
            e @ PortfolioError::IdempotencyConflict => ApiError::conflict("idempotency_conflict", e.to_string()),
            PortfolioError::Store(e) => e.into(),
            PortfolioError::State(e) => e.into(),
            PortfolioError::Internal(cause) => ApiError::internal(cause),
        }
    }
}
