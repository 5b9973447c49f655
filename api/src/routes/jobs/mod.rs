//! `/v1/jobs`: submit audio ([`submit`]), poll the job, fetch the transcript, list, cancel,
//! delete, retry ([`retry`]).

mod form;
mod from_url;
mod retry;
mod submit;

pub(crate) use form::{
    Fields, FilePart, Intake, JobOptions, bad_form, check_features, invalid_option, small_text,
};
pub(crate) use from_url::UrlSubmission;
pub use retry::{__path_retry, retry};
pub use submit::Refusal;
pub use submit::{__path_submit, FORM_OVERHEAD, submit};
pub(crate) use submit::{
    Received, accepted_at, admit, commit, discard, from_url, idempotency_key, intake,
};

use crate::keys::Caller;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warble_jobs::job::{self, Cancel, Job, JobStatus};
use warble_jobs::transcript::{Format, Transcript};

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::routes::{audit, page};
use crate::state::AppState;

/// A job's status. Another tenant's job answers 404, as if it did not exist.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "getJob",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let mut found = job::get(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    job::with_queue_positions(&state.db, std::slice::from_mut(&mut found.job)).await?;
    Ok(Json(found.job))
}

/// `?format=` of the transcript route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptQuery {
    /// `json` (default), `text`, `srt` or `vtt`.
    #[serde(default)]
    #[param(inline, required = false)]
    pub format: Format,
}

/// A finished job's transcript.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/transcript", tag = "jobs", operation_id = "getTranscript",
    params(("id" = String, Path, description = "Job id"), TranscriptQuery),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The transcript in the asked format", content(
            (Transcript = "application/json"),
            (String = "text/plain"),
            (String = "application/x-subrip"),
            (String = "text/vtt"),
        )),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 400, description = "`invalid_format`: not one of the formats", body = ErrorBody),
        (status = 409, description = "`transcript_not_ready`: the job is queued or running; `no_transcript`: it failed or was canceled", body = ErrorBody),
        (status = 410, description = "`gone`: the job succeeded and its transcript was deleted", body = ErrorBody),
    )
)]
pub async fn transcript(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TranscriptQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidFormat,
            "format must be json, text, srt or vtt",
        )
    })?;
    let (status, text) = job::transcript(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    let transcript = stored_transcript(&id, status, text)?;
    Ok((
        [(header::CONTENT_TYPE, query.format.content_type())],
        transcript.render(query.format),
    )
        .into_response())
}

/// A job's transcript from its status and stored JSON ([`job::transcript`]), or why it has
/// none.
pub(crate) fn stored_transcript(
    id: &str,
    status: JobStatus,
    text: Option<String>,
) -> Result<Transcript, ApiError> {
    // Only a succeeded job ever had a transcript, so only its can be gone; waiting helps only
    // a job that has not finished.
    let text = match (status, text) {
        (JobStatus::Succeeded, Some(text)) => text,
        (JobStatus::Succeeded, None) => {
            return Err(ApiError::new(ErrorCode::Gone, "the transcript was deleted"));
        }
        (JobStatus::Queued | JobStatus::Running, _) => {
            return Err(ApiError::new(
                ErrorCode::TranscriptNotReady,
                format!("the job is {}; poll it until it succeeds", status.as_str()),
            ));
        }
        (JobStatus::Failed, _) => {
            return Err(ApiError::new(
                ErrorCode::NoTranscript,
                "the job failed: it has no transcript",
            ));
        }
        (JobStatus::Canceled, _) => {
            return Err(ApiError::new(
                ErrorCode::NoTranscript,
                "the job was canceled: it has no transcript",
            ));
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        tracing::error!(job = %id, error = %e, "stored transcript does not parse");
        ApiError::new(
            ErrorCode::TranscriptUnreadable,
            "the stored transcript cannot be read",
        )
    })
}

/// Query of the list route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state.
    pub status: Option<JobStatus>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Jobs, newest first: the caller's tenant's (an admin's: every tenant's).
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs", operation_id = "listJobs",
    params(ListQuery),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Bad query", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let Query(query) = query?;
    let limit = page::limit(query.limit, 20, 100)?;
    let mut jobs = job::list(
        &state.db,
        caller.scope(),
        query.status,
        query.cursor.as_deref(),
        limit,
    )
    .await?;
    job::with_queue_positions(&state.db, &mut jobs).await?;
    let next_cursor = page::next_cursor(&jobs, limit, |j| &j.id);
    Ok(Json(JobPage { jobs, next_cursor }))
}

/// Cancel a queued or running job.
///
/// It becomes `canceled`, `job.canceled` is sent, and a worker that holds it stops at its next
/// write. Its audio is kept until the job is deleted (`DELETE /v1/jobs/{id}`). Canceling a
/// canceled job answers it again and changes nothing.
#[utoipa::path(
    post, path = "/v1/jobs/{id}/cancel", tag = "jobs", operation_id = "cancelJob",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The job, canceled", body = Job),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "`job_finished`: the job succeeded or failed", body = ErrorBody),
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    match cancel_audited(&state, &caller, &id).await? {
        Cancel::Canceled(stored) | Cancel::AlreadyCanceled(stored) => Ok(Json(stored.job)),
        Cancel::Finished(stored) => Err(ApiError::new(
            ErrorCode::JobFinished,
            format!(
                "the job {}: only a queued or running job can be canceled",
                stored.job.status.as_str()
            ),
        )),
    }
}

/// Delete a job's audio and transcript.
///
/// A queued or running job is canceled first, as `POST /v1/jobs/{id}/cancel` would (and
/// audited as that cancel). The record stays, with `deleted_at` set, so its id keeps
/// answering; a succeeded job's transcript then answers 410 `gone`. Deleting a deleted job
/// answers it again and changes nothing.
#[utoipa::path(
    delete, path = "/v1/jobs/{id}", tag = "jobs", operation_id = "deleteJob",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The job, with `deleted_at` set", body = Job),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let audio_key = cancel_audited(&state, &caller, &id)
        .await?
        .job()
        .audio_key
        .clone();
    // Audio before the record: `deleted_at` never claims audio that is still stored. If
    // storage fails here, the job is not marked, and repeating the request finishes it.
    state.storage.delete(&audio_key).await?;
    let job = match job::delete(&state.db, &id, caller.scope()).await? {
        Some(deleted) => {
            tracing::info!(job = %id, status = deleted.job.status.as_str(), "job deleted");
            let detail =
                serde_json::json!({ "tenant": deleted.job.tenant, "status": deleted.job.status });
            audit::record(&state, &caller, "job.delete", &id, detail).await;
            deleted.job
        }
        // Deleted before (the job is final by now, so that is the only reason): as it is.
        None => {
            job::get(&state.db, &id, caller.scope())
                .await?
                .ok_or_else(|| ApiError::not_found("job"))?
                .job
        }
    };
    Ok(Json(job))
}

/// Cancels the job if it is queued or running, and audits that cancel (`job.cancel`): the
/// cancel route's work, which deleting a job starts with.
async fn cancel_audited(state: &AppState, caller: &Caller, id: &str) -> Result<Cancel, ApiError> {
    let outcome = job::cancel(&state.db, id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    if let Cancel::Canceled(stored) = &outcome {
        tracing::info!(job = %id, "job canceled");
        let detail = serde_json::json!({ "tenant": stored.job.tenant });
        audit::record(state, caller, "job.cancel", id, detail).await;
    }
    Ok(outcome)
}
