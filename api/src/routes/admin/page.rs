//! `GET /admin`: the dashboard's page. It is public: it holds no data, and asks for a key.

use axum::http::HeaderMap;
use axum::response::Response;

use super::StaticFile;

static PAGE: StaticFile = StaticFile::new(
    include_str!("../../../admin/index.html"),
    "text/html; charset=utf-8",
);

/// The dashboard's HTML.
pub async fn page(headers: HeaderMap) -> Response {
    PAGE.serve(&headers)
}
