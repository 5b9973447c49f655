//! `/v1/tenants/{tenant}/retention` (admin): how long a tenant's finished jobs keep their
//! audio and transcript; the sweep itself is `warble_jobs::retention`, run by the API's
//! sweeper.

use axum::extract::{Path, State};
use axum::{Extension, Json};
use warble_jobs::retention::{self, Periods, TenantRetention};

use crate::auth::require_admin;
use crate::error::{ApiError, ErrorBody};
use crate::json::JsonObject;
use crate::keys::Caller;
use crate::routes::audit;
use crate::state::AppState;

/// A tenant's periods as they apply: its own where set, else the server's.
async fn of(state: &AppState, tenant: &str) -> Result<TenantRetention, ApiError> {
    let own = retention::own(&state.db, tenant).await?;
    let server = state.retention;
    Ok(TenantRetention {
        tenant: tenant.to_string(),
        own,
        effective: Periods {
            audio_secs: own.audio_secs.or(server.audio_secs),
            transcript_secs: own.transcript_secs.or(server.transcript_secs),
        },
    })
}

/// A tenant's retention: its own periods and those that apply.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/retention", tag = "retention", operation_id = "getRetention",
    params(("tenant" = String, Path, description = "Tenant")),
    responses(
        (status = 200, description = "The tenant's periods", body = TenantRetention),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(tenant): Path<String>,
) -> Result<Json<TenantRetention>, ApiError> {
    require_admin(&caller)?;
    Ok(Json(of(&state, &tenant).await?))
}

/// Set a tenant's retention.
///
/// Seconds after a job ends that its audio and its transcript are kept: `0` deletes them at
/// the next sweep (every `WARBLE_SWEEP_INTERVAL_MS`), `null` takes the server's period
/// (`WARBLE_RETAIN_AUDIO_SECS`, `WARBLE_RETAIN_TRANSCRIPT_SECS`). Jobs still queued or running
/// are never touched. Audited as `retention.update`.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/retention", tag = "retention", operation_id = "setRetention",
    params(("tenant" = String, Path, description = "Tenant")),
    request_body = Periods,
    responses(
        (status = 200, description = "The tenant's periods", body = TenantRetention),
        (status = 400, description = "Bad body: a period that is not a whole number of seconds from 0 to 2147483647 (68 years)", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    )
)]
pub async fn set(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(tenant): Path<String>,
    body: Result<JsonObject<Periods>, ApiError>,
) -> Result<Json<TenantRetention>, ApiError> {
    require_admin(&caller)?;
    let JsonObject(periods) = body?;
    let before = retention::own(&state.db, &tenant).await?;
    retention::set(&state.db, &tenant, periods).await?;
    tracing::info!(by = %caller.key_id, %tenant, ?periods, "retention changed");
    let detail = serde_json::json!({ "before": before, "after": periods });
    audit::record(&state, &caller, "retention.update", &tenant, detail).await;
    Ok(Json(of(&state, &tenant).await?))
}
