//! `POST /v1/batches/{id}/cancel`.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use warble_jobs::batch::{self, Batch, BatchStatus};
use warble_jobs::job;

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::keys::Caller;
use crate::routes::audit;
use crate::state::AppState;

/// Cancel a batch.
///
/// Requests not yet fetched are canceled, and so is each of its jobs still queued or running
/// (each sends its `job.canceled`); its finished jobs keep their results. The batch is
/// `canceling` until its last job has stopped, then `canceled`, and `batch.completed` is sent
/// with that status. Canceling a canceled batch answers it again and changes nothing.
#[utoipa::path(
    post, path = "/v1/batches/{id}/cancel", tag = "batches", operation_id = "cancelBatch",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The batch, `canceling` or `canceled`", body = Batch),
        (status = 404, description = "No such batch", body = ErrorBody),
        (status = 409, description = "`batch_finished`: every request of the batch had already ended", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Batch>, ApiError> {
    let (before, jobs) = batch::cancel(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("batch"))?;
    if before == BatchStatus::Completed {
        return Err(ApiError::new(
            ErrorCode::BatchFinished,
            "every request of the batch had ended: there is nothing to cancel",
        ));
    }
    for job_id in &jobs {
        // Each cancel is the job's own transition, with its webhook; the last settles the batch.
        job::cancel(&state.db, job_id, None).await?;
    }
    batch::settle(&state.db, &id).await?;
    let found = batch::get(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("batch"))?;
    if before == BatchStatus::InProgress {
        tracing::info!(batch = %id, jobs = jobs.len(), "batch canceled");
        let detail = serde_json::json!({ "tenant": found.tenant, "jobs_canceled": jobs.len() });
        audit::record(&state, &caller, "batch.cancel", &id, detail).await;
    }
    Ok(Json(found))
}
