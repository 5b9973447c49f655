//! `POST /v1/jobs/{id}/retry`: a failed or canceled job, queued again (admin).

use axum::extract::{Path, State};
use axum::{Extension, Json};
use warble_jobs::job::{self, Job, Retry};

use crate::auth::require_admin;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::keys::Caller;
use crate::routes::audit;
use crate::routes::jobs::submit::enqueue;
use crate::state::AppState;

/// Retry a failed or canceled job (admin).
///
/// The job becomes `queued` again: its error, progress and `finished_at` are cleared and its
/// `attempts` start again from 0 (its `started_at` stays that of its first start); a worker
/// transcribes its kept audio as if it were new, and `job.started` is sent again when one
/// takes it. Admins only, because the job is not charged again to its key's quotas.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/retry", tag = "jobs", operation_id = "retryJob",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 200, description = "The job, queued", body = Job),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "`job_not_retryable`: the job is queued, running or succeeded, or its audio was deleted", body = ErrorBody),
    )
)]
pub async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    require_admin(&caller)?;
    let stored = match job::retry(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?
    {
        Retry::Retried(stored) => stored,
        Retry::Refused(stored) => {
            let why = match stored.job.deleted_at {
                Some(_) => "its audio was deleted".to_string(),
                None => format!("it is {}", stored.job.status.as_str()),
            };
            return Err(ApiError::new(
                ErrorCode::JobNotRetryable,
                format!("the job cannot be retried: {why}; only a failed or canceled job can"),
            ));
        }
    };
    tracing::info!(job = %id, "job retried");
    let detail = serde_json::json!({ "tenant": stored.job.tenant });
    audit::record(&state, &caller, "job.retry", &id, detail).await;
    // The job is queued again whatever happens next: it is recorded as not enqueued, so the
    // sweeper hands it over if the queue cannot take it now.
    enqueue(&state, &id).await;
    let mut retried = stored.job;
    job::with_queue_positions(&state.db, std::slice::from_mut(&mut retried)).await?;
    Ok(Json(retried))
}
