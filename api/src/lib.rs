//! The warble HTTP API: accepts audio, records and queues jobs, serves their status and
//! transcripts. See the README for the walk-through and `openapi/openapi.json` for the spec.

pub mod audit;
pub mod auth;
pub mod batch_intake;
pub mod destination;
pub mod dispatcher;
pub mod error;
pub mod hardening;
pub mod json;
pub mod keys;
pub mod metrics;
pub mod rate_limit;
pub mod routes;
pub mod state;
mod sweeper;
pub mod token;
mod upload;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::get;
use error::ErrorCode;
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
        routes::jobs::cancel, routes::jobs::delete, routes::keys::create, routes::keys::list, routes::keys::revoke,
        routes::keys::set_quotas, routes::usage::usage, routes::token::issue,
        routes::webhooks::create, routes::webhooks::list, routes::webhooks::get,
        routes::webhooks::update, routes::webhooks::delete, routes::webhooks::rotate,
        routes::webhooks::rotate_tenant_secret, routes::webhooks::endpoint_deliveries,
        routes::webhooks::all_deliveries, routes::webhooks::retry, routes::audit::list, routes::workers::list, routes::health::health,
        routes::health::ready, routes::openai::transcribe, routes::openai::translate,
        routes::openai::list_models, routes::openai::retrieve_model,
        routes::batches::create, routes::batches::list, routes::batches::get,
        routes::batches::cancel, routes::batches::results,
        routes::retention::get, routes::retention::set,
        routes::jobs::retry, routes::admin::stats,
    ),
    modifiers(&Security),
    security(("bearer" = []), ("api_key" = [])),
    tags(
        (name = "jobs", description = "Transcription jobs"),
        (name = "batches", description = "Many requests in one call: JSON Lines of URLs or a form of files, counts, results as JSON Lines, cancel"),
        (name = "keys", description = "API keys (admin)"),
        (name = "audit", description = "Who changed what (admin): keys, quotas, webhooks and their secrets, deliveries retried, jobs canceled, deleted and retried"),
        (name = "retention", description = "How long finished jobs keep their audio and transcript, per tenant (admin)"),
        (name = "usage", description = "Usage against the key's quotas"),
        (name = "webhooks", description = "Signed callbacks when jobs change (Standard Webhooks)"),
        (name = "auth", description = "Short-lived tokens"),
        (name = "workers", description = "The workers and what they hold"),
        (name = "health", description = "Probes"),
        (name = "openai", description = "OpenAI-compatible transcription: the form, formats, streaming and error shape of OpenAI's audio API, served by jobs"),
        (name = "admin", description = "What the admin dashboard (`/admin`) shows beyond the other routes"),
    )
)]
pub struct ApiDoc;

/// The two ways to send a key.
struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

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
    // A batch's JSON Lines are limited by `WARBLE_BATCH_MAX_BYTES` as they are read, and each
    // of its files by the upload limit: the body as a whole has no limit of its own.
    let batches = Router::new()
        .route(
            "/v1/batches",
            axum::routing::post(routes::batches::create).get(routes::batches::list),
        )
        .layer(DefaultBodyLimit::disable());
    // OpenAI's routes answer errors in OpenAI's shape, including the key's and the rate
    // limiter's (the layer is outside `require_key`).
    let openai = Router::new()
        .route(
            "/v1/audio/transcriptions",
            axum::routing::post(routes::openai::transcribe),
        )
        .layer(DefaultBodyLimit::max(body_limit))
        .route(
            "/v1/audio/translations",
            axum::routing::post(routes::openai::translate),
        )
        .route("/v1/models", get(routes::openai::list_models))
        .route("/v1/models/{model}", get(routes::openai::retrieve_model))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(middleware::map_response(
            routes::openai::error::openai_errors,
        ));
    // Everything here needs a key; the probes and the docs below do not.
    let protected = Router::new()
        .merge(jobs)
        .merge(batches)
        .route("/v1/batches/{id}", get(routes::batches::get))
        .route(
            "/v1/batches/{id}/cancel",
            axum::routing::post(routes::batches::cancel),
        )
        .route("/v1/batches/{id}/results", get(routes::batches::results))
        .route(
            "/v1/jobs/{id}",
            get(routes::jobs::get).delete(routes::jobs::delete),
        )
        .route("/v1/jobs/{id}/transcript", get(routes::jobs::transcript))
        .route(
            "/v1/jobs/{id}/cancel",
            axum::routing::post(routes::jobs::cancel),
        )
        .route(
            "/v1/keys",
            get(routes::keys::list).post(routes::keys::create),
        )
        .route("/v1/keys/{id}", axum::routing::delete(routes::keys::revoke))
        .route(
            "/v1/keys/{id}/quotas",
            axum::routing::put(routes::keys::set_quotas),
        )
        .route("/v1/usage", get(routes::usage::usage))
        .route(
            "/v1/webhooks",
            get(routes::webhooks::list).post(routes::webhooks::create),
        )
        .route(
            "/v1/webhooks/secret",
            axum::routing::post(routes::webhooks::rotate_tenant_secret),
        )
        .route(
            "/v1/webhooks/deliveries",
            get(routes::webhooks::all_deliveries),
        )
        .route(
            "/v1/webhooks/deliveries/{id}/retry",
            axum::routing::post(routes::webhooks::retry),
        )
        .route(
            "/v1/webhooks/{id}",
            get(routes::webhooks::get)
                .patch(routes::webhooks::update)
                .delete(routes::webhooks::delete),
        )
        .route(
            "/v1/webhooks/{id}/rotate-secret",
            axum::routing::post(routes::webhooks::rotate),
        )
        .route(
            "/v1/webhooks/{id}/deliveries",
            get(routes::webhooks::endpoint_deliveries),
        )
        .route("/v1/workers", get(routes::workers::list))
        .route("/v1/auth/token", axum::routing::post(routes::token::issue))
        .route("/v1/audit", get(routes::audit::list))
        .route(
            "/v1/tenants/{tenant}/retention",
            get(routes::retention::get).put(routes::retention::set),
        )
        .route(
            "/v1/jobs/{id}/retry",
            axum::routing::post(routes::jobs::retry),
        )
        .route("/v1/admin/stats", get(routes::admin::stats))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ));
    // The docs and the dashboard's page (which holds no data: it asks for a key) are public
    // but limited per client address; the probes are never limited.
    let docs = Router::new()
        .route(
            "/openapi.json",
            get(|| async { ([("content-type", "application/json")], openapi_json()) }),
        )
        .merge(SwaggerUi::new("/docs").url("/docs/openapi.json", ApiDoc::openapi()))
        .route("/admin", get(routes::admin::page))
        .route("/admin/", get(routes::admin::page))
        .route("/admin/assets/{file}", get(routes::admin::asset))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            rate_limit::by_ip,
        ));
    let router = Router::new()
        .merge(protected)
        .merge(openai)
        .merge(docs)
        .route("/health", get(routes::health::health))
        .route("/ready", get(routes::health::ready))
        // Counted by route pattern, so only matched routes (the fallback's 404s are not).
        .route_layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::track,
        ))
        .fallback(|| async { error::error_response(ErrorCode::NotFound, "no such route") })
        .method_not_allowed_fallback(|| async {
            error::error_response(
                ErrorCode::MethodNotAllowed,
                "this route does not take that method",
            )
        })
        .layer(TraceLayer::new_for_http())
        .layer(hardening::cors(&state.cors_origins));
    let [nosniff, frames, referrer, csp] = hardening::security_headers();
    router
        .layer(nosniff)
        .layer(frames)
        .layer(referrer)
        .layer(csp)
        .layer(middleware::from_fn(hardening::request_id))
        .with_state(state)
}
