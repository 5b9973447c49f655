//! `POST /v1/audio/transcriptions`: OpenAI's transcription request, served by a job. The upload
//! goes through the same checks, storage, quotas and queue as `POST /v1/jobs`; then the request
//! waits for the job (up to `WARBLE_OPENAI_WAIT_SECS`) and answers in the asked format, or as
//! server-sent events with `stream=true`. A client that goes away leaves the job running; its
//! result stays at `/v1/jobs/{id}`.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::multipart::{Field, MultipartRejection};
use axum::extract::{Multipart, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::json;
use utoipa::ToSchema;
use warble_jobs::features::{self, Features};
use warble_jobs::job::{self, Job, JobStatus};
use warble_jobs::transcript::Transcript;

use super::models::{self, WHISPER_ALIAS};
use super::render::{self, Granularities, ResponseFormat};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::keys::Caller;
use crate::routes::jobs::{
    Fields, Intake, Refusal, idempotency_key, intake, invalid_option, small_text, stored_transcript,
};
use crate::state::AppState;

/// First pause between looks at the job; it grows to [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(100);
/// Longest pause between looks at the job.
const POLL_MAX: Duration = Duration::from_secs(1);
/// How often a waiting stream sends a comment, so that proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// The language reported when the request names none: the Parakeet v2 models' only one.
const DEFAULT_LANGUAGE: &str = "english";

/// The multipart form of `POST /v1/audio/transcriptions` (for the spec; the handler streams
/// it).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TranscriptionForm {
    /// The audio file (the formats of `POST /v1/jobs`).
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A model from `GET /v1/models`, a repository id's last part (`parakeet-tdt-0.6b-v2`), or
    /// `whisper-1` for whatever the workers serve; default: what they serve.
    model: Option<String>,
    /// Accepted and not used: Parakeet detects nothing and has one vocabulary; reported back
    /// as the `language` of `verbose_json` (default `english`).
    language: Option<String>,
    /// Accepted and not used: Parakeet takes no prompt.
    prompt: Option<String>,
    /// 0 to 1; accepted and not used: decoding is greedy, which is temperature 0.
    temperature: Option<f64>,
    /// `json` (default), `text`, `srt`, `vtt` or `verbose_json`.
    response_format: Option<String>,
    /// `word` and/or `segment`, for `verbose_json` (also sent as `timestamp_granularities`).
    #[schema(rename = "timestamp_granularities[]")]
    timestamp_granularities: Option<Vec<String>>,
    /// `true`: server-sent events, `transcript.text.delta` per segment, then
    /// `transcript.text.done`.
    stream: Option<bool>,
    /// Accepted and not used: warble cuts long audio itself (`--chunk-seconds`).
    chunking_strategy: Option<String>,
    /// warble's extension: `true` labels speakers; `verbose_json` segments and words then
    /// carry a `speaker` ("A", "B", ...), SRT and VTT name it.
    speaker_labels: Option<bool>,
    /// warble's extension: with `speaker_labels`, the most speakers to label (1 to 4).
    #[schema(minimum = 1, maximum = 4)]
    speakers_expected: Option<u8>,
    /// warble's extension: redact personal information (see `POST /v1/jobs`).
    redact_pii: Option<bool>,
    /// warble's extension: with `redact_pii`, comma-separated kinds (default all).
    redact_pii_policies: Option<String>,
    /// warble's extension: with `redact_pii`, `entity_name` (default) or `hash`.
    #[schema(pattern = "^(entity_name|hash)?$")]
    redact_pii_sub: Option<String>,
}

/// The request's parameters besides its file.
#[derive(Debug, Default)]
pub struct Params {
    model: Option<String>,
    language: Option<String>,
    response_format: ResponseFormat,
    granularities: Granularities,
    stream: bool,
    /// warble's extensions: speaker labels (segments of `verbose_json` then carry a
    /// `speaker`) and redaction, as on `POST /v1/jobs`.
    features: Features,
}

impl Fields for Params {
    const NAMES: &'static str = "model, language, prompt, temperature, response_format, \
                                 timestamp_granularities[], stream, chunking_strategy, \
                                 speaker_labels, speakers_expected, redact_pii, \
                                 redact_pii_policies, redact_pii_sub";

    async fn take(
        &mut self,
        intake: &Intake<'_>,
        name: &str,
        field: &mut Field<'_>,
    ) -> Result<bool, ApiError> {
        // Long enough for any of them; a prompt is at most a few hundred tokens.
        let value = small_text(field, 8 * 1024).await?;
        let value = value.trim();
        if value.is_empty() {
            return Ok(features::NAMES.split(", ").any(|f| f == name)
                || matches!(
                    name,
                    "model"
                        | "language"
                        | "prompt"
                        | "temperature"
                        | "response_format"
                        | "timestamp_granularities[]"
                        | "timestamp_granularities"
                        | "stream"
                        | "chunking_strategy"
                ));
        }
        match name {
            "model" => {
                check_model(intake.state, value).await?;
                self.model = Some(value.to_string());
            }
            "language" => self.language = Some(value.to_string()),
            "prompt" | "chunking_strategy" => {}
            "temperature" => match value.parse::<f64>() {
                Ok(t) if (0.0..=1.0).contains(&t) => {}
                _ => return Err(invalid("temperature must be a number from 0 to 1")),
            },
            "response_format" => {
                self.response_format = ResponseFormat::parse(value).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidResponseFormat,
                        format!("response_format must be one of {}", ResponseFormat::NAMES),
                    )
                })?;
            }
            "timestamp_granularities[]" | "timestamp_granularities" => match value {
                "word" => self.granularities.words = true,
                "segment" => self.granularities.segments = true,
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidTimestampGranularity,
                        "timestamp_granularities[] must be word or segment",
                    ));
                }
            },
            "stream" => {
                self.stream = match value {
                    "true" | "True" | "1" => true,
                    "false" | "False" | "0" => false,
                    _ => return Err(invalid("stream must be true or false")),
                }
            }
            _ => return self.features.set(name, value).map_err(invalid_option),
        }
        Ok(true)
    }

    fn job_options(&self) -> crate::routes::jobs::JobOptions {
        crate::routes::jobs::JobOptions {
            features: self.features.clone(),
            ..Default::default()
        }
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(ErrorCode::InvalidParameter, message)
}

/// `model` must name what the live workers serve, or be the alias for it.
async fn check_model(state: &AppState, requested: &str) -> Result<(), ApiError> {
    if requested == WHISPER_ALIAS {
        return Ok(());
    }
    let served = models::served(state).await?;
    if served.iter().any(|m| models::names(&m.id, requested)) {
        Ok(())
    } else {
        Err(models::not_served(requested))
    }
}

/// Transcribe audio (OpenAI-compatible).
///
/// OpenAI's `createTranscription`, served by a warble job: the upload is checked, stored,
/// charged and queued as by `POST /v1/jobs` (the job is listed there and fires webhooks), and
/// the request waits for it, up to `WARBLE_OPENAI_WAIT_SECS` (default 300). Errors are in
/// OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`; once the job is made,
/// they carry `x-should-retry: false`, since a retry would make another job (send an
/// `Idempotency-Key` to make retries safe). A `transcription_timeout` names the job, which goes
/// on.
#[utoipa::path(
    post, path = "/v1/audio/transcriptions", tag = "openai", operation_id = "createTranscription",
    request_body(content = TranscriptionForm, content_type = "multipart/form-data"),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "The same key answers with the same job")),
    responses(
        (status = 200, description = "The transcript in `response_format`: JSON `{text, usage}` or `verbose_json`, text, SubRip or WebVTT; with `stream=true`, `text/event-stream`", content(
            (serde_json::Value = "application/json"),
            (String = "text/plain"),
            (String = "application/x-subrip"),
            (String = "text/vtt"),
            (String = "text/event-stream"),
        )),
        (status = 400, description = "Bad form or parameter: `invalid_response_format`, `invalid_timestamp_granularity`, `invalid_parameter`, ...", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 404, description = "`model_not_found`", body = ErrorBody),
        (status = 409, description = "`no_transcript`: the job failed (the message gives its error) or was canceled", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`invalid_audio`", body = ErrorBody),
        (status = 429, description = "`rate_limited` or a quota, with `Retry-After`", body = ErrorBody),
        (status = 503, description = "Database or storage unavailable, with `Retry-After`", body = ErrorBody),
        (status = 504, description = "`transcription_timeout`: the job goes on", body = ErrorBody),
    )
)]
pub async fn transcribe(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, Refusal> {
    let multipart =
        multipart.map_err(|e| ApiError::new(ErrorCode::InvalidMultipart, e.body_text()))?;
    let key = idempotency_key(&headers, &caller)?;
    let (job, _, params) = intake::<Params>(&state, &caller, &headers, multipart, key).await?;
    let language = params
        .language
        .clone()
        .unwrap_or_else(|| DEFAULT_LANGUAGE.into());
    if params.stream {
        return Ok(with_job(stream(state, job.clone()), &job));
    }
    let response = match wait(&state, &job).await {
        Ok(transcript) => {
            let (body, content_type) = render::render(
                &transcript,
                params.response_format,
                params.granularities,
                &language,
            );
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Err(err) => final_error(err),
    };
    Ok(with_job(response, &job))
}

/// The events of `stream=true`: a `transcript.text.delta` per segment, then
/// `transcript.text.done` with the whole text, as OpenAI streams transcriptions; an error
/// after the job was made is an event `{"error": {...}}` in OpenAI's shape.
fn stream(state: AppState, job: Job) -> Response {
    let events =
        futures::stream::once(async move { wait(&state, &job).await }).flat_map(|outcome| {
            let events: Vec<Event> = match outcome {
                Ok(transcript) => text_events(&transcript),
                Err(err) => vec![error_event(err)],
            };
            futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>))
        });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// The deltas (a segment each, separated by spaces) and the done event.
fn text_events(transcript: &Transcript) -> Vec<Event> {
    let mut events: Vec<Event> = transcript
        .served()
        .segments
        .iter()
        .enumerate()
        .map(|(i, segment)| {
            let delta = if i == 0 {
                segment.text.clone()
            } else {
                format!(" {}", segment.text)
            };
            event(json!({"type": "transcript.text.delta", "delta": delta}))
        })
        .collect();
    events.push(event(json!({
        "type": "transcript.text.done",
        "text": transcript.text,
        "usage": render::usage(transcript),
    })));
    events
}

fn event(data: serde_json::Value) -> Event {
    Event::default().data(data.to_string())
}

/// An error as a stream event: the body of the error response, in OpenAI's shape.
fn error_event(err: ApiError) -> Event {
    let (code, message) = match err {
        ApiError::Refused { code, message } => (code, message),
        ApiError::Db(err) if err.is_unavailable() => {
            tracing::error!(error = %err, "database unavailable");
            (
                ErrorCode::DatabaseUnavailable,
                "the database did not answer".to_string(),
            )
        }
        other => {
            tracing::error!(error = %other, "streamed transcription failed");
            (
                ErrorCode::Internal,
                "something went wrong on our side".to_string(),
            )
        }
    };
    let kind = if code.status().is_some_and(|s| s >= 500) {
        "server_error"
    } else {
        "invalid_request_error"
    };
    event(json!({"error": {"message": message, "type": kind, "param": null, "code": code}}))
}

/// Waits for the job to finish: its transcript, or why there is none.
async fn wait(state: &AppState, job: &Job) -> Result<Transcript, ApiError> {
    let deadline = Instant::now() + state.openai_wait;
    let mut pause = POLL_FIRST;
    loop {
        let (status, text) = job::transcript(&state.db, &job.id, None)
            .await?
            .ok_or_else(|| ApiError::not_found("job"))?;
        match status {
            JobStatus::Queued | JobStatus::Running => {}
            JobStatus::Failed => return Err(failed(state, &job.id).await),
            _ => return stored_transcript(&job.id, status, text),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(ApiError::new(
                ErrorCode::TranscriptionTimeout,
                format!(
                    "job {id} is still {status} after {secs} s and goes on: poll /v1/jobs/{id}, \
                     then fetch /v1/jobs/{id}/transcript",
                    id = job.id,
                    status = status.as_str(),
                    secs = state.openai_wait.as_secs()
                ),
            ));
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 3 / 2).min(POLL_MAX);
    }
}

/// `no_transcript` with the failed job's own error.
async fn failed(state: &AppState, id: &str) -> ApiError {
    let error = match job::get(&state.db, id, None).await {
        Ok(Some(stored)) => stored.job.error,
        Ok(None) => None,
        Err(err) => return err.into(),
    };
    let reason = error.map_or_else(
        || "no reason recorded".to_string(),
        |e| format!("{}: {}", e.code, e.message),
    );
    ApiError::new(
        ErrorCode::NoTranscript,
        format!("job {id} failed ({reason}): it has no transcript"),
    )
}

/// An error after the job was made: a retry would make another job, so the SDKs are told not
/// to (`x-should-retry`, which the official SDKs follow).
fn final_error(err: ApiError) -> Response {
    let mut response = err.into_response();
    response
        .headers_mut()
        .insert("x-should-retry", HeaderValue::from_static("false"));
    response
}

/// Every answer names the job it made, so that a client can find it later.
fn with_job(mut response: Response, job: &Job) -> Response {
    if let Ok(value) = HeaderValue::from_str(&job.id) {
        response.headers_mut().insert("x-warble-job-id", value);
    }
    response
}

/// Translate audio into English (OpenAI-compatible): not supported.
///
/// Parakeet transcribes in the language spoken; it does not translate. Answered before the
/// upload is read.
#[utoipa::path(
    post, path = "/v1/audio/translations", tag = "openai", operation_id = "createTranslation",
    responses(
        (status = 400, description = "`translation_not_supported`", body = ErrorBody),
        (status = 401, description = "No valid key", body = ErrorBody),
    )
)]
pub async fn translate(Extension(_caller): Extension<Caller>) -> Response {
    let mut response = ApiError::new(
        ErrorCode::TranslationNotSupported,
        "translation is not supported: Parakeet transcribes audio in the language spoken; use \
         POST /v1/audio/transcriptions",
    )
    .closing();
    response
        .headers_mut()
        .insert("x-should-retry", HeaderValue::from_static("false"));
    response
}
