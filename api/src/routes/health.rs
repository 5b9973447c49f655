//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use crate::state::AppState;

/// Probe answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unavailable` when a dependency does not answer.
    pub status: &'static str,
    /// Per dependency: `ok` or `unavailable` (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
}

/// What readiness checked.
#[derive(Debug, Serialize, ToSchema)]
pub struct Checks {
    /// The database.
    pub database: &'static str,
    /// Object storage.
    pub storage: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health", tag = "health", operation_id = "getHealth", security(()),
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        checks: None,
    })
}

/// The database and object storage answer.
#[utoipa::path(get, path = "/ready", tag = "health", operation_id = "getReadiness", security(()),
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "A dependency is down", body = Health),
    ))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let (db, storage) = tokio::join!(state.db.ping(), state.storage.check());
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    if let Err(err) = &db {
        tracing::warn!(error = %err, "readiness: database");
    }
    if let Err(err) = &storage {
        tracing::warn!(error = %err, "readiness: storage");
    }
    let all = db.is_ok() && storage.is_ok();
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(Health {
            status: word(all),
            checks: Some(Checks {
                database: word(db.is_ok()),
                storage: word(storage.is_ok()),
            }),
        }),
    )
}
