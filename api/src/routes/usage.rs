//! `/v1/usage`: a key's usage and limits.

use crate::keys::Caller;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;
use warble_jobs::quota::{self, Usage};

use crate::auth::require_admin;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Whose usage.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Another key's (admins only); default: the caller's own.
    pub key_id: Option<String>,
}

/// Usage and limits of the calling key: jobs queued or running, audio submitted today (UTC)
/// and when that count resets, the largest upload it may send, against its quotas.
#[utoipa::path(get, path = "/v1/usage", tag = "usage", operation_id = "getUsage", params(UsageQuery),
    responses(
        (status = 200, description = "Usage and limits", body = Usage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "`key_id` given by a user key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
pub async fn usage(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Result<Json<Usage>, ApiError> {
    let Query(query) = query?;
    let key_id = match query.key_id {
        Some(key_id) => {
            require_admin(&caller)?;
            key_id
        }
        None => caller.key_id,
    };
    let quotas = quota::of(&state.db, &key_id)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    let mut usage = quota::usage(&state.db, &key_id, quotas).await?;
    usage.upload_bytes_limit = usage.upload_bytes_limit.min(state.max_upload_bytes);
    Ok(Json(usage))
}
