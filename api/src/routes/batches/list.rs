//! `GET /v1/batches`.

use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;
use warble_jobs::batch;

use super::BatchPage;
use crate::error::{ApiError, ErrorBody};
use crate::keys::Caller;
use crate::routes::page;
use crate::state::AppState;

/// Query of the list route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Batches, newest first: the caller's tenant's (an admin's: every tenant's).
#[utoipa::path(
    get, path = "/v1/batches", tag = "batches", operation_id = "listBatches",
    params(ListQuery),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "A page of batches", body = BatchPage),
        (status = 400, description = "Bad query", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BatchPage>, ApiError> {
    let Query(query) = query?;
    let limit = page::limit(query.limit, 20, 100)?;
    let batches = batch::list(&state.db, caller.scope(), query.cursor.as_deref(), limit).await?;
    let next_cursor = page::next_cursor(&batches, limit, |b| &b.id);
    Ok(Json(BatchPage {
        batches,
        next_cursor,
    }))
}
