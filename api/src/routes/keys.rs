//! `/v1/keys`: admins make, list and revoke API keys.

use crate::keys::{self, ApiKey, Caller, Role};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warble_jobs::quota::{self, Quotas};

use crate::auth::require_admin;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::json::{JsonObject, optional_object};
use crate::routes::audit;
use crate::state::AppState;

/// Longest key name or tenant.
const MAX_NAME: usize = 100;

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// For people, 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub name: String,
    /// `admin` or `user`.
    pub role: Role,
    /// The tenant its jobs belong to (share one between keys to rotate them); default: a new
    /// tenant of its own. 1 to 100 characters, no control characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]+$"
    )]
    pub tenant: Option<String>,
    /// Its limits; default: the server's defaults for user keys, none for admin keys.
    #[serde(default, deserialize_with = "optional_object")]
    pub quotas: Option<Quotas>,
}

/// A new key and its secret, which is shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    /// The key.
    pub key: ApiKey,
    /// Send it as `Authorization: Bearer <secret>`; it cannot be shown again.
    #[schema(example = "wbl_3f9a1c0e...")]
    pub secret: String,
}

/// Every key.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    /// Newest first; secrets are never listed.
    pub keys: Vec<ApiKey>,
}

/// Make a key (admin).
#[utoipa::path(post, path = "/v1/keys", tag = "keys", operation_id = "createKey", request_body = NewKey,
    responses(
        (status = 201, description = "The key and its secret, shown once", body = CreatedKey),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<JsonObject<NewKey>, ApiError>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    require_admin(&caller)?;
    let JsonObject(new) = body?;
    let valid =
        |s: &str| (1..=MAX_NAME).contains(&s.chars().count()) && !s.chars().any(char::is_control);
    if !valid(&new.name) || !new.tenant.as_deref().is_none_or(valid) {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("name and tenant must be 1 to {MAX_NAME} characters, no control characters"),
        ));
    }
    let quotas = new.quotas.unwrap_or(match new.role {
        Role::Admin => Quotas::default(),
        Role::User => state.default_quotas,
    });
    let (key, secret) = keys::create(
        &state.db,
        &new.name,
        new.role,
        new.tenant.as_deref(),
        quotas,
    )
    .await?;
    tracing::info!(by = %caller.key_id, key = %key.id, role = ?key.role, tenant = %key.tenant, "key created");
    let detail = serde_json::json!({
        "name": key.name, "role": key.role, "tenant": key.tenant, "quotas": key.quotas,
    });
    audit::record(&state, &caller, "key.create", &key.id, detail).await;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}

/// List keys (admin).
#[utoipa::path(get, path = "/v1/keys", tag = "keys", operation_id = "listKeys",
    responses(
        (status = 200, description = "Every key, without secrets", body = KeyList),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<KeyList>, ApiError> {
    require_admin(&caller)?;
    Ok(Json(KeyList {
        keys: keys::list(&state.db).await?,
    }))
}

/// Revoke a key (admin). It is refused from then on; its jobs stay. An admin cannot revoke
/// the key it calls with (use another admin key, or `api keys revoke`), so nobody locks
/// themselves out by mistake.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys", operation_id = "revokeKey",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKey),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "`own_key`: the key making the request", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    require_admin(&caller)?;
    if id == caller.key_id {
        return Err(ApiError::new(
            ErrorCode::OwnKey,
            "a key cannot revoke itself; use another admin key",
        ));
    }
    let key = keys::revoke(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    tracing::info!(by = %caller.key_id, key = %key.id, "key revoked");
    let detail = serde_json::json!({ "name": key.name, "tenant": key.tenant });
    audit::record(&state, &caller, "key.revoke", &key.id, detail).await;
    Ok(Json(key))
}

/// Set a key's quotas (admin). The body replaces them all; `null` is no limit. Takes effect
/// on the key's next submission; jobs already accepted are not touched.
#[utoipa::path(put, path = "/v1/keys/{id}/quotas", tag = "keys", operation_id = "setKeyQuotas", request_body = Quotas,
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key with its new quotas", body = ApiKey),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
pub async fn set_quotas(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<JsonObject<Quotas>, ApiError>,
) -> Result<Json<ApiKey>, ApiError> {
    require_admin(&caller)?;
    let JsonObject(quotas) = body?;
    let before = quota::set(&state.db, &id, quotas)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    tracing::info!(by = %caller.key_id, key = %id, ?quotas, "quotas changed");
    let detail = serde_json::json!({ "before": before, "after": quotas });
    audit::record(&state, &caller, "quota.update", &id, detail).await;
    let key = keys::get(&state.db, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("key"))?;
    Ok(Json(key))
}
