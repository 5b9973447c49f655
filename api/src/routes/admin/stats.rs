//! `GET /v1/admin/stats`: the queue now and per-minute series, for the dashboard (admin).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use utoipa::IntoParams;
use warble_jobs::stats::{self, Stats};

use crate::auth::require_admin;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::keys::Caller;
use crate::state::AppState;

/// The most minutes the series may cover: a day.
const MAX_MINUTES: u32 = 1440;

/// Query of the stats route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Minutes the series cover, ending now: 1 to 1440 (default 60).
    #[param(minimum = 1, maximum = 1440)]
    pub minutes: Option<u32>,
}

/// Queue and throughput (admin): jobs queued and running now, how long the oldest queued job
/// has waited, and for each minute of the window the jobs that finished (by outcome), the
/// seconds of audio transcribed and the queue's depth at the minute's end.
#[utoipa::path(
    get, path = "/v1/admin/stats", tag = "admin", operation_id = "getAdminStats",
    params(StatsQuery),
    responses(
        (status = 200, description = "The numbers", body = Stats),
        (status = 400, description = "`invalid_limit`: `minutes` out of range; `invalid_query`", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    )
)]
pub async fn stats(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<StatsQuery>, QueryRejection>,
) -> Result<Json<Stats>, ApiError> {
    require_admin(&caller)?;
    let Query(query) = query?;
    let minutes = query.minutes.unwrap_or(60);
    if !(1..=MAX_MINUTES).contains(&minutes) {
        return Err(ApiError::new(
            ErrorCode::InvalidLimit,
            format!("minutes must be 1 to {MAX_MINUTES}"),
        ));
    }
    Ok(Json(
        stats::stats(&state.db, chrono::Utc::now(), minutes).await?,
    ))
}
