//! `/v1/webhooks`: endpoints that hear about a tenant's jobs, their secrets, and the log of
//! what was sent. Users manage their tenant's; admins see every tenant's.

use crate::destination;
use crate::keys::Caller;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use warble_jobs::webhook::outbox::{self, Delivery, DeliveryStatus};
use warble_jobs::webhook::{self, Changes, Event, Webhook};

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::json::JsonObject;
use crate::routes::{audit, page};
use crate::state::AppState;

/// Longest description.
const MAX_DESCRIPTION: usize = 500;

/// An endpoint to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http` or `https`, on a public address.
    #[schema(
        example = "https://example.com/hooks/warble",
        format = "uri",
        max_length = 2048
    )]
    pub url: String,
    /// At least one of `job.started`, `job.succeeded`, `job.failed`, `job.canceled`.
    #[schema(min_items = 1)]
    pub events: Vec<Event>,
    /// For people, up to 500 characters.
    #[schema(max_length = 500)]
    pub description: Option<String>,
}

/// Changes to an endpoint; what is left out stays as it is.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookChanges {
    /// A new URL.
    #[schema(format = "uri", max_length = 2048)]
    pub url: Option<String>,
    /// New events (at least one).
    #[schema(min_items = 1)]
    pub events: Option<Vec<Event>>,
    /// A new description; `""` clears it.
    #[schema(max_length = 500)]
    pub description: Option<String>,
    /// `true` sends again (also after a 410 disabled it), `false` stops sending.
    pub enabled: Option<bool>,
}

/// A new endpoint and its secret, shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWebhook {
    /// The endpoint.
    pub webhook: Webhook,
    /// Verifies `webhook-signature` (Standard Webhooks); it cannot be shown again.
    #[schema(example = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")]
    pub secret: String,
}

/// A new secret, shown only this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewSecret {
    /// The secret that signs from now on.
    pub secret: String,
    /// Until then the previous secret signs too (a second signature in the header); `null`
    /// when there was no previous secret (a tenant's first).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
}

/// Endpoints.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookList {
    /// Newest first.
    pub webhooks: Vec<Webhook>,
}

/// Query of the delivery logs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryQuery {
    /// Only deliveries in this state: `retrying` lists those whose endpoint failed and that
    /// wait for their next attempt, `failed` those given up.
    pub status: Option<DeliveryStatus>,
    /// Only deliveries about this job.
    pub job_id: Option<String>,
    /// Page size, 1 to 100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryPage {
    /// Newest first.
    pub deliveries: Vec<Delivery>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A URL the server may send to, or 422 `invalid_webhook_url` saying why not.
fn check_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    destination::check_url(url, state.webhook_allow_private)
        .map(String::from)
        .map_err(|err| ApiError::new(ErrorCode::InvalidWebhookUrl, err.to_string()))
}

fn check_description(description: Option<&str>) -> Result<(), ApiError> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION => Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("description must be at most {MAX_DESCRIPTION} characters"),
        )),
        _ => Ok(()),
    }
}

fn check_events(events: &[Event]) -> Result<(), ApiError> {
    if events.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "events must name at least one event",
        ));
    }
    Ok(())
}

/// Register an endpoint for the caller's tenant.
#[utoipa::path(post, path = "/v1/webhooks", tag = "webhooks", operation_id = "createWebhook", request_body = NewWebhook,
    responses(
        (status = 201, description = "The endpoint and its secret, shown once", body = CreatedWebhook),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 409, description = "`too_many_webhooks`: the tenant has 25 endpoints", body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url`: not http(s), or not a public address", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Result<JsonObject<NewWebhook>, ApiError>,
) -> Result<(StatusCode, Json<CreatedWebhook>), ApiError> {
    let JsonObject(new) = body?;
    check_events(&new.events)?;
    check_description(new.description.as_deref())?;
    let url = check_url(&state, &new.url)?;
    let description = new.description.as_deref().filter(|d| !d.is_empty());
    let (webhook, secret) =
        webhook::create(&state.db, &caller.tenant, &url, &new.events, description)
            .await?
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::TooManyWebhooks,
                    format!(
                        "a tenant may have {} endpoints; delete one first",
                        webhook::MAX_PER_TENANT
                    ),
                )
            })?;
    let detail = serde_json::json!({ "url": webhook.url, "events": webhook.events });
    audit::record(&state, &caller, "webhook.create", &webhook.id, detail).await;
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook { webhook, secret }),
    ))
}

/// List endpoints: the caller's tenant's (an admin's: every tenant's).
#[utoipa::path(get, path = "/v1/webhooks", tag = "webhooks", operation_id = "listWebhooks",
    responses(
        (status = 200, description = "Endpoints, without secrets", body = WebhookList),
        (status = 401, description = "No valid key", body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<WebhookList>, ApiError> {
    let webhooks = webhook::list(&state.db, caller.scope()).await?;
    Ok(Json(WebhookList { webhooks }))
}

/// One endpoint.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "getWebhook",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ))]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    webhook::get(&state.db, &id, caller.scope())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found("webhook"))
}

/// Change an endpoint: URL, events, description, or enable it again.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "updateWebhook", request_body = WebhookChanges,
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = Webhook),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
        (status = 422, description = "`invalid_webhook_url`", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Result<JsonObject<WebhookChanges>, ApiError>,
) -> Result<Json<Webhook>, ApiError> {
    let JsonObject(changes) = body?;
    if let Some(events) = &changes.events {
        check_events(events)?;
    }
    check_description(changes.description.as_deref())?;
    let url = changes
        .url
        .as_deref()
        .map(|url| check_url(&state, url))
        .transpose()?;
    let applied = Changes {
        url: url.as_deref(),
        events: changes.events.as_deref(),
        description: changes
            .description
            .as_deref()
            .map(|d| Some(d).filter(|d| !d.is_empty())),
        enabled: changes.enabled,
    };
    let webhook = webhook::update(&state.db, &id, caller.scope(), &applied)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let detail = serde_json::json!({
        "url": url, "events": changes.events, "enabled": changes.enabled,
    });
    audit::record(&state, &caller, "webhook.update", &id, detail).await;
    Ok(Json(webhook))
}

/// Delete an endpoint; its pending and retrying deliveries are given up.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "webhooks", operation_id = "deleteWebhook",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The deleted endpoint", body = Webhook),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Webhook>, ApiError> {
    let webhook = webhook::delete(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let detail = serde_json::json!({ "url": webhook.url });
    audit::record(&state, &caller, "webhook.delete", &id, detail).await;
    Ok(Json(webhook))
}

/// Give an endpoint a new secret. The old one keeps signing too (a second signature) for
/// `WARBLE_WEBHOOK_ROTATION_GRACE_SECS`, so receivers can switch without missing a delivery.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", operation_id = "rotateWebhookSecret",
    params(("id" = String, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The new secret, shown once", body = NewSecret),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ))]
pub async fn rotate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<NewSecret>, ApiError> {
    let (webhook, secret) =
        webhook::rotate(&state.db, &id, caller.scope(), state.webhook_rotation_grace)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook"))?;
    audit::record(
        &state,
        &caller,
        "webhook.rotate_secret",
        &id,
        serde_json::json!({}),
    )
    .await;
    Ok(Json(NewSecret {
        secret,
        previous_secret_expires_at: webhook.previous_secret_expires_at,
    }))
}

/// Make or rotate the tenant's default secret, which signs the callbacks sent to a job's own
/// `callback_url`. Needed before submitting a job with one.
#[utoipa::path(post, path = "/v1/webhooks/secret", tag = "webhooks", operation_id = "rotateTenantSecret",
    responses(
        (status = 200, description = "The new secret, shown once", body = NewSecret),
        (status = 401, description = "No valid key", body = ErrorBody),
    ))]
pub async fn rotate_tenant_secret(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<NewSecret>, ApiError> {
    let (secret, previous_secret_expires_at) =
        webhook::rotate_tenant_secret(&state.db, &caller.tenant, state.webhook_rotation_grace)
            .await?;
    let detail = serde_json::json!({ "tenant": caller.tenant });
    audit::record(
        &state,
        &caller,
        "webhook.rotate_tenant_secret",
        &caller.tenant,
        detail,
    )
    .await;
    Ok(Json(NewSecret {
        secret,
        previous_secret_expires_at,
    }))
}

/// What was sent to one endpoint, newest first.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", operation_id = "listWebhookDeliveries",
    params(("id" = String, Path, description = "Endpoint id"), DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "No such endpoint", body = ErrorBody),
    ))]
pub async fn endpoint_deliveries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let Query(query) = query?;
    webhook::get(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    deliveries_page(&state, &caller, Some(&id), query).await
}

/// Everything sent for the caller's tenant (an admin's: every tenant's), to endpoints and to
/// jobs' own callback URLs, newest first.
#[utoipa::path(get, path = "/v1/webhooks/deliveries", tag = "webhooks", operation_id = "listDeliveries", params(DeliveryQuery),
    responses(
        (status = 200, description = "A page of deliveries", body = DeliveryPage),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    ))]
pub async fn all_deliveries(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<DeliveryQuery>, QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let Query(query) = query?;
    deliveries_page(&state, &caller, None, query).await
}

async fn deliveries_page(
    state: &AppState,
    caller: &Caller,
    webhook: Option<&str>,
    query: DeliveryQuery,
) -> Result<Json<DeliveryPage>, ApiError> {
    let limit = page::limit(query.limit, 50, 100)?;
    let deliveries = outbox::list(
        &state.db,
        caller.scope(),
        webhook,
        query.job_id.as_deref(),
        query.status,
        query.cursor.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = page::next_cursor(&deliveries, limit, |d| &d.id);
    Ok(Json(DeliveryPage {
        deliveries,
        next_cursor,
    }))
}

/// Send a delivery again now (one more attempt), e.g. one that failed while the receiver
/// was down.
#[utoipa::path(post, path = "/v1/webhooks/deliveries/{id}/retry", tag = "webhooks", operation_id = "retryDelivery",
    params(("id" = String, Path, description = "Delivery id (its webhook-id)")),
    responses(
        (status = 200, description = "The delivery, `pending` or (attempted before) `retrying`", body = Delivery),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "No such delivery", body = ErrorBody),
    ))]
pub async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Delivery>, ApiError> {
    let delivery = outbox::retry(&state.db, &id, caller.scope())
        .await?
        .ok_or_else(|| ApiError::not_found("delivery"))?;
    audit::record(
        &state,
        &caller,
        "delivery.retry",
        &id,
        serde_json::json!({}),
    )
    .await;
    Ok(Json(delivery))
}
