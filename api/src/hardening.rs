//! What every response carries, errors included: security headers, CORS for the configured
//! origins only, and a request id (`X-Request-Id`, also in every log line of the request and
//! in the body of internal errors, so a user's report can be matched to the log).

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

/// The request id header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    /// The id of the request being handled, for errors built far from the request.
    static CURRENT_REQUEST: String;
}

/// The id of the request this task is handling, if any.
pub fn current_request_id() -> Option<String> {
    CURRENT_REQUEST.try_with(Clone::clone).ok()
}

/// Gives each request an id (a new ULID; a client's own is not trusted, as it would end up in
/// our logs), runs it inside a span and the task-local that carry it, and returns it.
pub async fn request_id(mut request: Request, next: Next) -> Response {
    let id = ulid::Ulid::generate().to_string();
    let value = HeaderValue::from_str(&id).expect("a ULID is a header value");
    request
        .headers_mut()
        .insert(REQUEST_ID.clone(), value.clone());
    let span = tracing::info_span!("request", id = %id, method = %request.method(), path = %request.uri().path());
    let mut response =
        tracing::Instrument::instrument(CURRENT_REQUEST.scope(id, next.run(request)), span).await;
    response.headers_mut().insert(REQUEST_ID.clone(), value);
    response
}

/// The Content-Security-Policy: our own scripts and styles only (Swagger UI's styles are
/// partly inline, its icons `data:` images), nothing may frame us.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
                   img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

/// Layers that set the security headers on every response.
pub fn security_headers() -> [SetResponseHeaderLayer<HeaderValue>; 4] {
    [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CSP),
    ]
    .map(|(name, value)| SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value)))
}

/// CORS: browsers on `origins` (exact `scheme://host[:port]`) may call the API; with none
/// configured, only pages served from localhost.
pub fn cors(origins: &[String]) -> CorsLayer {
    let allow = if origins.is_empty() {
        AllowOrigin::predicate(|origin, _| is_localhost(origin))
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            REQUEST_ID.clone(),
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// `http(s)://localhost`, `127.0.0.1` or `[::1]`, any port.
fn is_localhost(origin: &HeaderValue) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = match rest.strip_prefix("[::1]") {
        Some(port) => return port.is_empty() || is_port(port),
        None => rest.split(':').next().unwrap_or_default(),
    };
    let port = &rest[host.len()..];
    matches!(host, "localhost" | "127.0.0.1") && (port.is_empty() || is_port(port))
}

fn is_port(suffix: &str) -> bool {
    suffix
        .strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_localhost_origins_by_default() {
        for ok in [
            "http://localhost",
            "http://localhost:3000",
            "https://127.0.0.1:8443",
            "http://[::1]:5173",
        ] {
            assert!(is_localhost(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "http://localhost.evil.example",
            "http://127.0.0.1.nip.io",
            "http://localhost:3000@evil.example",
            "null",
            "file://",
            "http://[::1]evil",
        ] {
            assert!(!is_localhost(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
