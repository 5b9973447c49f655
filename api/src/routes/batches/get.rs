//! `GET /v1/batches/{id}`.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use warble_jobs::batch::{self, Batch};

use crate::error::{ApiError, ErrorBody};
use crate::keys::Caller;
use crate::state::AppState;

/// A batch, with its requests counted by status. Another tenant's batch answers 404.
#[utoipa::path(
    get, path = "/v1/batches/{id}", tag = "batches", operation_id = "getBatch",
    params(("id" = String, Path, description = "Batch id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The batch", body = Batch),
        (status = 404, description = "No such batch", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Batch>, ApiError> {
    let found = batch::get(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("batch"))?;
    Ok(Json(found))
}
