//! `GET /v1/batches/{id}/results`.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use warble_jobs::batch::{self, ResultLine};

use crate::error::{ApiError, ErrorBody};
use crate::keys::Caller;
use crate::state::AppState;

/// Lines read from the database at a time while the answer streams.
const PAGE: u32 = 200;

/// A batch's results, as JSON Lines.
///
/// One line per request, in the batch's order: `line`, `custom_id`, `job_id` (once its job is
/// made), `status`, and the `transcript` of a succeeded job (as `GET /v1/jobs/{id}/transcript`
/// gives it) or the `error` of a failed one. Available at any time: until the batch has ended,
/// some requests are still `pending`, `queued` or `running`.
#[utoipa::path(
    get, path = "/v1/batches/{id}/results", tag = "batches", operation_id = "getBatchResults",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "JSON Lines: one `ResultLine` object per line (described here as the array of them)", content_type = "application/x-ndjson", body = Vec<ResultLine>),
        (status = 404, description = "No such batch", body = ErrorBody),
    )
)]
pub async fn results(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    batch::get(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("batch"))?;
    // Streamed a page at a time, so a batch of thousands of transcripts is never held whole.
    let pages = futures::stream::try_unfold(Some(0i64), move |after| {
        let db = state.db.clone();
        let id = id.clone();
        async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let lines = batch::results(&db, &id, after, PAGE).await?;
            let Some(last) = lines.last().map(|l| l.line) else {
                return Ok(None);
            };
            let next = (lines.len() == PAGE as usize).then_some(last);
            let mut chunk = Vec::new();
            for line in &lines {
                serde_json::to_writer(&mut chunk, line).expect("a result line serialises");
                chunk.push(b'\n');
            }
            Ok::<_, warble_jobs::db::DbError>(Some((Bytes::from(chunk), next)))
        }
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(pages),
    )
        .into_response())
}
