//! The warble HTTP API: accepts audio, records and queues jobs, serves their status and
//! transcripts. See the README for the walk-through and `openapi/openapi.json` for the spec.

pub mod error;
pub mod routes;
pub mod state;
mod sweeper;
mod upload;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::get;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub use state::AppState;
pub use sweeper::spawn_sweeper;

/// The OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "warble", description = "Batch speech-to-text with NVIDIA Parakeet models: submit audio, poll the job, fetch the transcript."),
    paths(
        routes::jobs::submit, routes::jobs::list, routes::jobs::get, routes::jobs::transcript,
        routes::jobs::delete, routes::workers::list, routes::health::health,
        routes::health::ready,
    ),
    tags(
        (name = "jobs", description = "Transcription jobs"),
        (name = "workers", description = "The workers and what they hold"),
        (name = "health", description = "Probes"),
    )
)]
pub struct ApiDoc;

/// The spec as served at `/openapi.json` and committed at `openapi/openapi.json`.
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the spec serialises")
        + "\n"
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    // Uploads stream to storage and their file is limited to `max_upload_bytes` as it
    // arrives; the body as a whole may add the form's other fields and framing.
    let body_limit = usize::try_from(state.max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(routes::jobs::FORM_OVERHEAD);
    let jobs = Router::new()
        .route(
            "/v1/jobs",
            axum::routing::post(routes::jobs::submit).get(routes::jobs::list),
        )
        .layer(DefaultBodyLimit::max(body_limit));
    Router::new()
        .merge(jobs)
        .route(
            "/v1/jobs/{id}",
            get(routes::jobs::get).delete(routes::jobs::delete),
        )
        .route("/v1/jobs/{id}/transcript", get(routes::jobs::transcript))
        .route("/v1/workers", get(routes::workers::list))
        .route("/health", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        .route(
            "/openapi.json",
            get(|| async { ([("content-type", "application/json")], openapi_json()) }),
        )
        .merge(SwaggerUi::new("/docs").url("/docs/openapi.json", ApiDoc::openapi()))
        .fallback(|| async {
            error::error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
        })
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// How often the API looks for recorded jobs the queue does not have yet.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
