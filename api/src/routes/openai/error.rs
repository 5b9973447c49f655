//! Errors in OpenAI's shape on the OpenAI-compatible routes:
//! `{"error": {"message", "type", "param", "code"}}`, where `code` is warble's stable code
//! (the same table as everywhere else) and `type` OpenAI's class of error. The SDKs classify by
//! status (`AuthenticationError` for 401, `RateLimitError` for 429, ...); the status and
//! headers (`Retry-After`, `RateLimit-*`) stay as the rest of the API sends them.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};

/// Largest error body rewritten; ours are far smaller.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Middleware: rewrites every error response of warble's shape (`{"error": {"code",
/// "message"}}`) into OpenAI's, whoever made it (authentication, rate limits, the handler).
pub async fn openai_errors(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_ERROR_BODY).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let Some(error) = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|mut v| v.get_mut("error").map(Value::take))
    else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let mut body = json!({
        "error": {
            "message": error["message"],
            "type": kind,
            "param": param(error["code"].as_str().unwrap_or_default()),
            "code": error["code"],
        }
    });
    if let Some(request_id) = error.get("request_id") {
        body["error"]["request_id"] = request_id.clone();
    }
    let bytes = serde_json::to_vec(&body).expect("JSON serialises");
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(bytes))
}

/// The request parameter an error code is about, as OpenAI names it in `param`.
fn param(code: &str) -> Option<&'static str> {
    Some(match code {
        "missing_file"
        | "duplicate_file"
        | "invalid_audio"
        | "unsupported_media_type"
        | "payload_too_large"
        | "quota_upload_bytes" => "file",
        "model_not_found" => "model",
        "invalid_response_format" => "response_format",
        "invalid_timestamp_granularity" => "timestamp_granularities",
        _ => return None,
    })
}
