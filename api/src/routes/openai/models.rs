//! `GET /v1/models`: the models the live workers serve, as OpenAI lists models. A worker
//! reports the model it was started with (a Hugging Face repository or a local file); the id
//! shown is the repository (`nvidia/parakeet-tdt-0.6b-v2`) or the file's stem, never a server
//! path.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;
use warble_jobs::workers::{self, model_id};

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::keys::Caller;
use crate::state::AppState;

/// The alias that stands for whatever the workers serve, for tools that only send OpenAI's
/// model name.
pub const WHISPER_ALIAS: &str = "whisper-1";

/// A model, as OpenAI describes one.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Model {
    /// The name to send as `model`.
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// When the first live worker serving it started, Unix seconds.
    pub created: i64,
    /// Always `warble`.
    pub owned_by: &'static str,
}

/// The list of [`Model`]s.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// The models, by id.
    pub data: Vec<Model>,
}

/// Whether `requested` names `id`: the id itself, or a repository id's last part
/// (`parakeet-tdt-0.6b-v2` for `nvidia/parakeet-tdt-0.6b-v2`).
pub fn names(id: &str, requested: &str) -> bool {
    requested == id || id.rsplit('/').next() == Some(requested)
}

/// The models the live workers serve.
pub async fn served(state: &AppState) -> Result<Vec<Model>, ApiError> {
    let since = chrono::Utc::now() - state.worker_timeout;
    let mut models: BTreeMap<String, i64> = BTreeMap::new();
    for worker in workers::list(&state.db, since).await? {
        let created = worker.started_at.timestamp();
        models
            .entry(model_id(&worker.model))
            .and_modify(|c| *c = (*c).min(created))
            .or_insert(created);
    }
    Ok(models
        .into_iter()
        .map(|(id, created)| Model {
            id,
            object: "model",
            created,
            owned_by: "warble",
        })
        .collect())
}

/// The models the live workers serve (OpenAI-compatible).
///
/// Any of these ids (or a repository id's last part, or `whisper-1` for whatever is served)
/// may be sent as `model` to `POST /v1/audio/transcriptions`.
#[utoipa::path(get, path = "/v1/models", tag = "openai", operation_id = "listModels",
    responses(
        (status = 200, description = "The served models", body = ModelList),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub async fn list_models(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
) -> Result<Json<ModelList>, ApiError> {
    Ok(Json(ModelList {
        object: "list",
        data: served(&state).await?,
    }))
}

/// One served model (OpenAI-compatible).
#[utoipa::path(get, path = "/v1/models/{model}", tag = "openai", operation_id = "getModel",
    params(("model" = String, Path, description = "A model id from `GET /v1/models`")),
    responses(
        (status = 200, description = "The model", body = Model),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "`model_not_found`", body = ErrorBody),
        (status = 503, description = "Database unavailable", body = ErrorBody),
    ))]
pub async fn retrieve_model(
    State(state): State<AppState>,
    Extension(_caller): Extension<Caller>,
    Path(model): Path<String>,
) -> Result<Json<Model>, ApiError> {
    served(&state)
        .await?
        .into_iter()
        .find(|m| m.id == model)
        .map(Json)
        .ok_or_else(|| not_served(&model))
}

/// 404 `model_not_found`.
pub fn not_served(model: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ModelNotFound,
        format!("the model {model:?} is not served here; GET /v1/models lists those that are"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_the_id_or_a_repository_ids_last_part() {
        assert!(names("nvidia/parakeet-tdt-0.6b-v2", "parakeet-tdt-0.6b-v2"));
        assert!(names(
            "nvidia/parakeet-tdt-0.6b-v2",
            "nvidia/parakeet-tdt-0.6b-v2"
        ));
        assert!(!names("nvidia/parakeet-tdt-0.6b-v2", "parakeet"));
    }
}
