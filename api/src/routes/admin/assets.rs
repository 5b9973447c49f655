//! `GET /admin/assets/{file}`: the dashboard's scripts and styles.

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::StaticFile;
use crate::error::{ErrorCode, error_response};

/// Every asset, by the name the page asks for.
static ASSETS: [(&str, StaticFile); 4] = [
    (
        "app.js",
        StaticFile::new(include_str!("../../../admin/app.js"), JS),
    ),
    (
        "api.js",
        StaticFile::new(include_str!("../../../admin/api.js"), JS),
    ),
    (
        "charts.js",
        StaticFile::new(include_str!("../../../admin/charts.js"), JS),
    ),
    (
        "app.css",
        StaticFile::new(
            include_str!("../../../admin/app.css"),
            "text/css; charset=utf-8",
        ),
    ),
];

/// Browsers run a module only when it is served as JavaScript.
const JS: &str = "text/javascript; charset=utf-8";

/// One asset, or 404 `not_found`.
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    match ASSETS.iter().find(|(name, _)| *name == file) {
        Some((_, asset)) => asset.serve(&headers),
        None => error_response(ErrorCode::NotFound, "no such asset").into_response(),
    }
}
