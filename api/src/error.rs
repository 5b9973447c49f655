//! The API's one error type and its JSON form: `{"error": {"code", "message"}}` with a stable
//! `code`. Internal details (SQL, paths, URLs) go to the log, never to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use warble_common::db::DbError;
use warble_common::storage::StorageError;

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; `code` says how.
    #[error("{message}")]
    BadRequest {
        /// Stable code, e.g. `missing_file`.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// No such job (or route).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The resource exists but not in a state that allows this.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// The resource existed and was deleted.
    #[error("{0}")]
    Gone(&'static str),
    /// The upload is larger than the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// A file type we do not take, or one that is not what its name and type say.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Audio we take but cannot use: broken, empty, too long, out-of-range parameters.
    #[error("{0}")]
    InvalidAudio(String),
    /// A well-formed request the server cannot act on; `code` says why.
    #[error("{message}")]
    Unprocessable {
        /// Stable code, e.g. `invalid_webhook_url`.
        code: &'static str,
        /// For people.
        message: String,
    },
    /// No valid key or token.
    #[error("{0}")]
    Unauthorized(String),
    /// A valid caller without the role for this route.
    #[error("this route needs an admin key")]
    Forbidden,
    /// Too many requests; the headers say when to come back.
    #[error("too many requests; retry after {} s", .0.reset)]
    RateLimited(crate::rate_limit::RateHeaders),
    /// The caller's key is over one of its quotas.
    #[error(transparent)]
    Quota(#[from] warble_common::quota::QuotaExceeded),
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
        Self::bad_request("invalid_query", rejection.body_text())
    }
}

/// A JSON body that does not parse or fit: 400 `invalid_body`.
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        Self::bad_request("invalid_body", rejection.body_text())
    }
}

impl ApiError {
    /// A 413 naming the limit.
    pub fn too_large(limit: u64) -> Self {
        Self::TooLarge(format!(
            "the upload is larger than the limit of {limit} bytes"
        ))
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

    /// A 400 with `code` and `message`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
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
    /// Stable, machine-readable.
    #[schema(example = "not_found")]
    pub code: String,
    /// For people.
    #[schema(example = "job not found")]
    pub message: String,
    /// On server-side failures (5xx): the request's id, also in our logs; quote it when you
    /// report the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Builds an error response; also used for errors raised outside handlers (extractors, the
/// fallback route).
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_string(),
            message: message.into(),
            request_id: status
                .is_server_error()
                .then(crate::hardening::current_request_id)
                .flatten(),
        },
    };
    (status, Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            Self::BadRequest { code, .. } => error_response(StatusCode::BAD_REQUEST, code, message),
            Self::NotFound(_) => error_response(StatusCode::NOT_FOUND, "not_found", message),
            Self::Conflict { code, .. } => error_response(StatusCode::CONFLICT, code, message),
            Self::Gone(_) => error_response(StatusCode::GONE, "gone", message),
            Self::TooLarge(_) => {
                error_response(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
            }
            Self::UnsupportedMediaType(_) => error_response(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                message,
            ),
            Self::InvalidAudio(_) => {
                error_response(StatusCode::UNPROCESSABLE_ENTITY, "invalid_audio", message)
            }
            Self::Unprocessable { code, .. } => {
                error_response(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            Self::Unauthorized(_) => {
                let mut response =
                    error_response(StatusCode::UNAUTHORIZED, "unauthorized", message);
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            Self::Forbidden => error_response(StatusCode::FORBIDDEN, "forbidden", message),
            Self::RateLimited(limits) => {
                let mut response =
                    error_response(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message);
                let headers = response.headers_mut();
                limits.apply(headers);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(limits.reset));
                response
            }
            Self::Quota(exceeded) => {
                let mut response =
                    error_response(StatusCode::TOO_MANY_REQUESTS, exceeded.code(), message);
                if let Some(secs) = exceeded.retry_after(chrono::Utc::now()) {
                    response
                        .headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                response
            }
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                error_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "something went wrong on our side; try again",
                )
            }
            // Only an outage is worth the client's retry; any other failure is ours to fix,
            // and a 503 would have clients retry it for ever.
            Self::Db(err) if err.is_unavailable() => {
                tracing::error!(error = %err, "database unavailable");
                unavailable(
                    "database_unavailable",
                    "the database did not answer; try again",
                )
            }
            Self::Db(err) => Self::Internal(format!("database: {err}")).into_response(),
            Self::Storage(err) if err.is_unavailable() => {
                tracing::error!(error = %err, "storage unavailable");
                unavailable(
                    "storage_unavailable",
                    "object storage did not answer; try again",
                )
            }
            Self::Storage(err) => Self::Internal(format!("storage: {err}")).into_response(),
        }
    }
}

/// A 503 for a dependency that failed, with the `Retry-After` that well-behaved clients wait.
fn unavailable(code: &str, message: &str) -> Response {
    let mut response = error_response(StatusCode::SERVICE_UNAVAILABLE, code, message);
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}
