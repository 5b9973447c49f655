//! `GET /v1/workers`: the workers that are alive, what they run on and what they hold.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use warble_common::workers::{self, WorkerInfo};

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The live workers.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerList {
    /// Workers whose last heartbeat is within the orphan timeout, newest heartbeat first.
    pub workers: Vec<WorkerInfo>,
}

/// Workers that reported a heartbeat recently.
#[utoipa::path(get, path = "/v1/workers", tag = "workers",
    responses(
        (status = 200, description = "Live workers", body = WorkerList),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>) -> Result<Json<WorkerList>, ApiError> {
    let since = chrono::Utc::now() - state.worker_timeout;
    Ok(Json(WorkerList {
        workers: workers::list(&state.db, since).await?,
    }))
}
