//! `GET /v1/audit`: the audit log (admin).

use crate::audit::{self, Entry};
use crate::keys::Caller;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::require_admin;
use crate::error::{ApiError, ErrorBody};
use crate::routes::page;
use crate::state::AppState;

/// Query of the audit listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub entries: Vec<Entry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The audit log (admin): every change to keys, quotas, webhooks and jobs, newest first.
///
/// One entry per change, with who made it (`actor`: a key id, `cli` for the `api keys`
/// command, `startup` for the first admin key), what (`action`) and on what (`target`):
/// keys made (`key.create`) and revoked (`key.revoke`);
/// quotas changed (`quota.update`);
/// webhook endpoints registered (`webhook.create`), changed (`webhook.update`) and deleted
/// (`webhook.delete`), an endpoint's secret rotated (`webhook.rotate_secret`) and the tenant's
/// default secret rotated (`webhook.rotate_tenant_secret`);
/// deliveries retried (`delivery.retry`);
/// jobs canceled (`job.cancel`) and deleted (`job.delete`).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", operation_id = "listAuditEntries", params(AuditQuery),
    responses(
        (status = 200, description = "A page of entries", body = AuditPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    require_admin(&caller)?;
    let Query(query) = query?;
    let limit = page::limit(query.limit, 100, 500)?;
    let entries = audit::list(&state.db, query.cursor.as_deref(), limit).await?;
    let next_cursor = page::next_cursor(&entries, limit, |e| &e.id);
    Ok(Json(AuditPage {
        entries,
        next_cursor,
    }))
}

/// Records an action that already happened. A failure is logged, not returned: the action
/// stands, and its answer (a key's only showing of its secret) must reach the caller.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) {
    if let Err(err) = audit::record(&state.db, &caller.key_id, action, target, detail).await {
        tracing::error!(error = %err, action, target, "could not write the audit log");
    }
}
