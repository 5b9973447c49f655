//! The OpenAI-compatible surface: `POST /v1/audio/transcriptions` (what the `openai` SDKs,
//! LiteLLM, Open WebUI and many scripts send), `GET /v1/models` and a refusing
//! `POST /v1/audio/translations`. It follows OpenAI's API reference for
//! [transcriptions](https://platform.openai.com/docs/api-reference/audio/createTranscription):
//! the same form, response formats and streaming events, and errors in OpenAI's shape
//! ([`error::openai_errors`]). Behind it is an ordinary job: queued, charged to the key's
//! quotas, listed in `/v1/jobs` and announced by webhooks; the request waits for it.

pub mod error;
pub mod models;
mod render;
pub mod transcriptions;

pub use models::{__path_list_models, __path_retrieve_model, list_models, retrieve_model};
pub use transcriptions::{__path_transcribe, __path_translate, transcribe, translate};
