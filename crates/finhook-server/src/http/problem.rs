//! API errors, rendered as RFC 9457 `application/problem+json`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use finhook_core::flinks::{CallbackError, FieldError};
use serde::Serialize;

use crate::ingest::IngestError;
use crate::store::{FailureKind, StoreError};

/// Everything a handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("a valid API key is required as `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("this action needs the admin key")]
    Forbidden,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{detail}")]
    BadRequest { title: &'static str, detail: String },
    #[error("{detail}")]
    Validation { detail: String, errors: Vec<FieldError> },
    #[error("the body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("{0}")]
    Conflict(String),
    #[error(
        "this instance may send {rate} callbacks per second (bursts of {burst}); nothing was stored; retry after {retry_after_seconds} s"
    )]
    RateLimited { retry_after_seconds: u64, rate: u32, burst: u32 },
    #[error("the body did not arrive within {seconds} s; nothing was stored; send it again")]
    BodyTimeout { seconds: u64 },
    #[error(
        "the server is receiving as many callback bytes as it holds at once ({budget_bytes}); nothing was stored; retry after {retry_after_seconds} s"
    )]
    Busy { budget_bytes: usize, retry_after_seconds: u64 },
    #[error(
        "this instance stores {stored_bytes} bytes of callbacks and may store {quota_bytes}; nothing was stored; retry once retention has removed old callbacks, or ask the operator to raise instance_quota_bytes"
    )]
    QuotaExceeded { stored_bytes: u64, quota_bytes: u64 },
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// A fault of the server itself, neither the caller's nor the store's.
    #[error("could not {what}")]
    Internal { what: &'static str, source: Box<dyn std::error::Error + Send + Sync> },
}

/// An RFC 9457 problem; `errors` lists schema violations by JSON path.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
}

impl From<crate::http::limit::Limited> for ApiError {
    fn from(limited: crate::http::limit::Limited) -> Self {
        Self::RateLimited { retry_after_seconds: limited.retry_after_seconds, rate: limited.rate, burst: limited.burst }
    }
}

impl ApiError {
    pub fn validation(path: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Validation {
            detail: format!("{path} {message}"),
            errors: vec![FieldError { path: path.to_string(), message }],
        }
    }

    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            Self::BadRequest { title, .. } => (StatusCode::BAD_REQUEST, "bad-request", title),
            Self::Validation { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "validation", "Validation failed"),
            Self::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large"),
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate-limited", "Too many requests"),
            Self::BodyTimeout { .. } => (StatusCode::REQUEST_TIMEOUT, "body-timeout", "Body too slow"),
            Self::Busy { .. } => (StatusCode::SERVICE_UNAVAILABLE, "busy", "Busy"),
            Self::QuotaExceeded { .. } => {
                (StatusCode::INSUFFICIENT_STORAGE, "quota-exceeded", "Storage quota exceeded")
            }
            Self::Store(error) => match error.kind() {
                FailureKind::DiskFull => (StatusCode::INSUFFICIENT_STORAGE, "storage-full", "Storage full"),
                FailureKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "store-unavailable", "Store unavailable"),
                FailureKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
            },
            Self::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let detail = match &self {
            Self::Store(error) => {
                tracing::error!(error = %ErrorChain(error), "store failure while answering a request");
                match error.kind() {
                    FailureKind::DiskFull => {
                        "the server's storage is full; nothing was stored or changed; retry after the operator frees space"
                    }
                    FailureKind::Unavailable => {
                        "the store cannot commit writes right now; nothing was stored or changed; retry after the Retry-After delay"
                    }
                    FailureKind::Internal => "the server could not complete the request; nothing was changed",
                }
                .to_string()
            }
            Self::Internal { what, .. } => {
                tracing::error!(error = %ErrorChain(&self), "internal failure while answering a request");
                format!("the server could not {what}; nothing was changed")
            }
            other => other.to_string(),
        };
        let errors = match &self {
            Self::Validation { errors, .. } => Some(errors.as_slice()),
            _ => None,
        };
        let problem =
            Problem { kind: format!("urn:finhook:problem:{slug}"), title, status: status.as_u16(), detail, errors };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Self::RateLimited { retry_after_seconds, .. } | Self::Busy { retry_after_seconds, .. } = self {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        } else if let Some(seconds) = retry_after(status) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response
    }
}

/// How long a client should wait before retrying a request the store could not take.
fn retry_after(status: StatusCode) -> Option<&'static str> {
    match status {
        StatusCode::SERVICE_UNAVAILABLE => Some("5"),
        StatusCode::INSUFFICIENT_STORAGE => Some("30"),
        _ => None,
    }
}

/// Displays an error with its causes, `outer: inner: ...`, for log lines.
pub(crate) struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut cause = self.0.source();
        while let Some(error) = cause {
            write!(f, ": {error}")?;
            cause = error.source();
        }
        Ok(())
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> Self {
        match error {
            IngestError::Callback(CallbackError::Invalid(errors)) => Self::Validation {
                detail: "the callback does not match the schema of its ResponseType; see errors".to_string(),
                errors,
            },
            IngestError::Callback(invalid) => Self::BadRequest { title: "Malformed callback", detail: invalid.to_string() },
            IngestError::TooLarge { limit } => Self::PayloadTooLarge { limit },
            IngestError::BodyRead(detail) => Self::BadRequest { title: "Unreadable body", detail },
            IngestError::KeyReused { message_id } => Self::Conflict(format!(
                "this Idempotency-Key was already used for {message_id} with a different body; use a new key for a new callback"
            )),
            IngestError::Store(error) => Self::Store(error),
        }
    }
}
