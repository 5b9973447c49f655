//! `GET /v1/workers`: the workers that are alive, what they run on and what they hold.

use crate::keys::Caller;
use axum::extract::State;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use warble_jobs::workers::{self, WorkerInfo};

use crate::auth::require_admin;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The live workers.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerList {
    /// Workers whose last heartbeat is within the orphan timeout, newest heartbeat first.
    pub workers: Vec<WorkerInfo>,
}

/// Workers that reported a heartbeat recently (admin).
#[utoipa::path(get, path = "/v1/workers", tag = "workers", operation_id = "listWorkers",
    responses(
        (status = 200, description = "Live workers", body = WorkerList),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<WorkerList>, ApiError> {
    require_admin(&caller)?;
    let since = chrono::Utc::now() - state.worker_timeout;
    Ok(Json(WorkerList {
        workers: workers::list(&state.db, since).await?,
    }))
}
