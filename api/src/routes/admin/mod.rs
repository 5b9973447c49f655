//! The admin dashboard: a page of static files written by hand (`api/admin/`: HTML, vanilla
//! JavaScript modules and CSS, no build step), compiled into the binary, which calls the
//! JSON API with the admin key the person signs in with; and the one endpoint only it needed,
//! [`stats`].

mod assets;
mod page;
mod stats;

pub use assets::asset;
pub use page::page;
pub use stats::{__path_stats, StatsQuery, stats};

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// A file of the dashboard, with its content type.
pub(crate) struct StaticFile {
    body: &'static str,
    content_type: &'static str,
}

impl StaticFile {
    /// `body`, served as `content_type`.
    pub(crate) const fn new(body: &'static str, content_type: &'static str) -> Self {
        Self { body, content_type }
    }

    /// The file, or 304 if the browser's copy (`If-None-Match`) is this one. `no-cache` has
    /// the browser ask every time: the names never change, so a new release must be seen at
    /// once, and the ETag (a hash of a few kilobytes, taken per request) keeps the asking
    /// cheap.
    pub(crate) fn serve(&self, request: &HeaderMap) -> Response {
        let etag = format!(
            "\"{}\"",
            &warble_jobs::hex(&Sha256::digest(self.body))[..32]
        );
        let fresh = request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
        let headers = [
            (header::CACHE_CONTROL, "no-cache".to_string()),
            (header::ETAG, etag),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        (
            headers,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(self.content_type),
            )],
            self.body,
        )
            .into_response()
    }
}
