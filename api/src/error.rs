//! The API's one error type and its JSON form: `{"error": {"code", "message"}}` with a stable
//! `code` from the table ([`ErrorCode`]), which also gives the status. Internal details (SQL,
//! paths, URLs) go to the log, never to the client. The `From` impls classify: a database or
//! storage outage is a 503 to retry, any other failure of theirs a 500.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use warble_jobs::db::DbError;
pub use warble_jobs::error_code::ErrorCode;
use warble_jobs::storage::StorageError;

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A refusal: the request is malformed, not allowed, names nothing, or cannot be acted on.
    /// The status is the code's ([`ErrorCode::status`]).
    #[error("{message}")]
    Refused {
        /// Stable, from the table.
        code: ErrorCode,
        /// For people.
        message: String,
    },
    /// Too many requests; the headers say when to come back.
    #[error("too many requests; retry after {} s", .0.reset)]
    RateLimited(crate::rate_limit::RateHeaders),
    /// The caller's key is over one of its quotas.
    #[error(transparent)]
    Quota(#[from] warble_jobs::quota::QuotaExceeded),
    /// Lines of a batch that are not valid requests: 422 `invalid_batch`, listing each.
    #[error("lines of the batch are not valid requests ({} of them); nothing was made", .0.len())]
    InvalidLines(Vec<LineError>),
    /// Our own fault; the details are logged, the client gets a generic message.
    #[error("internal error")]
    Internal(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Object storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// A query string that does not parse: 400 `invalid_query`.
impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::new(ErrorCode::InvalidQuery, rejection.body_text())
    }
}

/// A JSON body that does not parse or fit: 400 `invalid_body`.
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        Self::new(ErrorCode::InvalidBody, rejection.body_text())
    }
}

impl ApiError {
    /// A refusal with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Refused {
            code,
            message: message.into(),
        }
    }

    /// 404: no such `what` (job, key, webhook, ...) for this caller.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// The code and message a client may see for this error, for reporting it somewhere else
    /// than a response (a batch request's result): internal details stay in the log.
    pub fn public(&self) -> (ErrorCode, String) {
        match self {
            Self::Refused { code, message } => (*code, message.clone()),
            Self::Quota(exceeded) => (exceeded.code(), exceeded.to_string()),
            Self::RateLimited(_) => (ErrorCode::RateLimited, self.to_string()),
            Self::InvalidLines(_) => (ErrorCode::InvalidBatch, self.to_string()),
            Self::Db(err) if err.is_unavailable() => (
                ErrorCode::DatabaseUnavailable,
                "the database did not answer".into(),
            ),
            Self::Storage(err) if err.is_unavailable() => (
                ErrorCode::StorageUnavailable,
                "object storage did not answer".into(),
            ),
            Self::Internal(_) | Self::Db(_) | Self::Storage(_) => {
                tracing::error!(error = %self, "internal error");
                (
                    ErrorCode::Internal,
                    "something went wrong on our side".into(),
                )
            }
        }
    }

    /// A 413 naming the limit.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            ErrorCode::PayloadTooLarge,
            format!("the upload is larger than the limit of {limit} bytes"),
        )
    }

    /// The response, closing the connection: for refusals made before the request's body was
    /// read, whose connection cannot carry another request (without the header, a client may
    /// reuse it and see it close under its next request).
    pub fn closing(self) -> Response {
        let mut response = self.into_response();
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// The error body.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// `code` and `message` of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: see the table of codes.
    pub code: ErrorCode,
    /// For people.
    #[schema(example = "job not found")]
    pub message: String,
    /// On server-side failures (5xx): the request's id, also in our logs; quote it when you
    /// report the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// `invalid_batch`: each line that is not a valid request (the first 100).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineError>>,
}

/// Why one line of a batch is not a valid request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineError {
    /// The line's number, from 1 (for uploads: the file's place).
    pub line: usize,
    /// What is wrong, as the same field of a single job would be refused.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}

/// Line errors listed in an `invalid_batch` answer; the message counts them all.
const MAX_LINE_ERRORS: usize = 100;

/// Builds the response of an error with `code`, at the code's status; also used for errors
/// raised outside handlers (extractors, the fallback route).
pub fn error_response(code: ErrorCode, message: impl Into<String>) -> Response {
    let status = code
        .status()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .expect("API error codes have a status");
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message: message.into(),
            request_id: status
                .is_server_error()
                .then(crate::hardening::current_request_id)
                .flatten(),
            lines: None,
        },
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            Self::Refused { code, .. } => {
                let mut response = error_response(code, message);
                if code == ErrorCode::Unauthorized {
                    response
                        .headers_mut()
                        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                }
                response
            }
            Self::RateLimited(limits) => {
                let mut response = error_response(ErrorCode::RateLimited, message);
                let headers = response.headers_mut();
                limits.apply(headers);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(limits.reset));
                response
            }
            Self::Quota(exceeded) => {
                let mut response = error_response(exceeded.code(), message);
                if let Some(secs) = exceeded.retry_after(chrono::Utc::now()) {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
            Self::InvalidLines(mut lines) => {
                lines.truncate(MAX_LINE_ERRORS);
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                let body = ErrorBody {
                    error: ErrorDetail {
                        code: ErrorCode::InvalidBatch,
                        message,
                        request_id: None,
                        lines: Some(lines),
                    },
                };
                (status, Json(body)).into_response()
            }
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                error_response(
                    ErrorCode::Internal,
                    "something went wrong on our side; try again",
                )
            }
            // Only an outage is worth the client's retry; any other failure is ours to fix,
            // and a 503 would have clients retry it for ever.
            Self::Db(err) if err.is_unavailable() => {
                tracing::error!(error = %err, "database unavailable");
                unavailable(
                    ErrorCode::DatabaseUnavailable,
                    "the database did not answer; try again",
                )
            }
            Self::Db(err) => Self::Internal(format!("database: {err}")).into_response(),
            Self::Storage(err) if err.is_unavailable() => {
                tracing::error!(error = %err, "storage unavailable");
                unavailable(
                    ErrorCode::StorageUnavailable,
                    "object storage did not answer; try again",
                )
            }
            Self::Storage(err) => Self::Internal(format!("storage: {err}")).into_response(),
        }
    }
}

/// A 503 for a dependency that failed, with the `Retry-After` that well-behaved clients wait.
fn unavailable(code: ErrorCode, message: &str) -> Response {
    let mut response = error_response(code, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}
