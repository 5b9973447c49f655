//! `/v1/keys`: admins make, list and revoke API keys.

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use warble_common::keys::{self, ApiKey, Caller, Role};

use crate::auth::require_admin;
use crate::error::{ApiError, ErrorBody};
use crate::routes::audit;
use crate::state::AppState;

/// Longest key name or tenant.
const MAX_NAME: usize = 100;

/// A key to make.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    /// For people, 1 to 100 characters.
    pub name: String,
    /// `admin` or `user`.
    pub role: Role,
    /// The tenant its jobs belong to (share one between keys to rotate them); default: a new
    /// tenant of its own.
    pub tenant: Option<String>,
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
#[utoipa::path(post, path = "/v1/keys", tag = "keys", request_body = NewKey,
    responses(
        (status = 201, description = "The key and its secret, shown once", body = CreatedKey),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<Json<NewKey>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    require_admin(&caller)?;
    let Json(new) = body.map_err(|e| ApiError::bad_request("invalid_body", e.body_text()))?;
    let valid =
        |s: &str| (1..=MAX_NAME).contains(&s.chars().count()) && !s.chars().any(char::is_control);
    if !valid(&new.name) || !new.tenant.as_deref().is_none_or(valid) {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("name and tenant must be 1 to {MAX_NAME} characters, no control characters"),
        ));
    }
    let (key, secret) =
        keys::create(&state.db, &new.name, new.role, new.tenant.as_deref(), None).await?;
    tracing::info!(by = %caller.key_id, key = %key.id, role = ?key.role, tenant = %key.tenant, "key created");
    let detail = serde_json::json!({ "name": key.name, "role": key.role, "tenant": key.tenant });
    audit::record(&state, &caller, "key.create", &key.id, detail).await;
    Ok((StatusCode::CREATED, Json(CreatedKey { key, secret })))
}

/// List keys (admin).
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
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

/// Revoke a key (admin). It is refused from then on; its jobs stay.
#[utoipa::path(delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "The revoked key", body = ApiKey),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<ApiKey>, ApiError> {
    require_admin(&caller)?;
    let key = keys::revoke(&state.db, &id)
        .await?
        .ok_or(ApiError::NotFound("key"))?;
    tracing::info!(by = %caller.key_id, key = %key.id, "key revoked");
    let detail = serde_json::json!({ "name": key.name, "tenant": key.tenant });
    audit::record(&state, &caller, "key.revoke", &key.id, detail).await;
    Ok(Json(key))
}
