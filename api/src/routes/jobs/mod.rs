//! `/v1/jobs`: submit audio ([`submit`]), poll the job, fetch the transcript, list, cancel.

mod form;
mod submit;

pub use submit::{__path_submit, FORM_OVERHEAD, submit};

use crate::keys::Caller;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warble_jobs::job::{self, Job, JobStatus};
use warble_jobs::transcript::{Format, Transcript};

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::routes::{audit, page};
use crate::state::AppState;

/// A job's status. Another tenant's job answers 404, as if it did not exist.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
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
    let found = job::get(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
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
    get, path = "/v1/jobs/{id}/transcript", tag = "jobs",
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
    // Only a succeeded job ever had a transcript, so only its can be gone; waiting helps only
    // a job that has not finished.
    let transcript = match (status, text) {
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
    let transcript: Transcript = serde_json::from_str(&transcript).map_err(|e| {
        tracing::error!(job = %id, error = %e, "stored transcript does not parse");
        ApiError::new(
            ErrorCode::TranscriptUnreadable,
            "the stored transcript cannot be read",
        )
    })?;
    Ok((
        [(header::CONTENT_TYPE, query.format.content_type())],
        transcript.render(query.format),
    )
        .into_response())
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
    get, path = "/v1/jobs", tag = "jobs",
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
    let jobs = job::list(
        &state.db,
        caller.scope(),
        query.status,
        query.cursor.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = page::next_cursor(&jobs, limit, |j| &j.id);
    Ok(Json(JobPage { jobs, next_cursor }))
}

/// Cancel a job and delete its data.
///
/// A queued or running job becomes `canceled` (a running worker stops using it); for any job
/// the audio and the transcript are deleted. The job record stays, so its id keeps answering.
#[utoipa::path(
    delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The job afterwards", body = Job),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let stored = job::cancel_and_forget(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("job"))?;
    state.storage.delete(&stored.audio_key).await?;
    tracing::info!(job = %id, status = stored.job.status.as_str(), "job deleted");
    let detail = serde_json::json!({ "tenant": stored.job.tenant, "status": stored.job.status });
    audit::record(&state, &caller, "job.delete", &id, detail).await;
    Ok(Json(stored.job))
}
