//! `POST /v1/batches`: a batch from JSON Lines of URL requests, or from a form of files.
//!
//! JSON Lines are checked whole before anything is made: a batch with any bad line is refused
//! (`invalid_batch`, each bad line listed) and nothing is kept. A good one is recorded with all
//! its requests pending and answered at once; their audio is fetched in the background
//! ([`crate::batch_intake`]). Files are streamed into storage as they arrive, then each is
//! checked and recorded as an upload would be: a file that is refused (not audio, over a
//! quota) fails its own request, not the batch.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use serde_json::{Map, Value};
use ulid::Ulid;
use utoipa::ToSchema;
use warble_jobs::batch::{self, Batch, NewBatch, NewRequest};
use warble_jobs::filename;
use warble_jobs::job::{self, JobError};

use crate::batch_intake;
use crate::destination;
use crate::error::{ApiError, ErrorBody, ErrorCode, LineError};
use crate::keys::Caller;
use crate::routes::jobs::{
    Fields, FilePart, Intake, JobOptions, Received, Refusal, UrlSubmission, accepted_at, admit,
    bad_form, check_features, commit, discard, idempotency_key,
};
use crate::state::AppState;
use warble_jobs::redact::{Policy, Substitution};

/// Longest `custom_id`, in characters.
const MAX_CUSTOM_ID: usize = 256;

/// The multipart form of `POST /v1/batches` (for the spec; the handler streams it).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchForm {
    /// The audio files, one `file` part each; each request's `custom_id` is its file name.
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
    /// For every file: `tdt`, `rnnt` or `ctc`. Options come before the first file.
    #[schema(pattern = "^(tdt|rnnt|ctc)?$")]
    decoder: Option<String>,
    /// For every file's job: a JSON object (at most 16 KB).
    metadata: Option<String>,
    /// For every file's job: where to POST its final event.
    #[schema(max_length = 2048)]
    callback_url: Option<String>,
    /// `true`: label each word with its speaker (see `POST /v1/jobs`).
    speaker_labels: Option<bool>,
    /// With `speaker_labels`: the most speakers to label, 1 to 4.
    #[schema(minimum = 1, maximum = 4)]
    speakers_expected: Option<u8>,
    /// `true`: redact personal information (see `POST /v1/jobs`).
    redact_pii: Option<bool>,
    /// With `redact_pii`: which kinds (a list in JSON, comma-separated in a form); default all.
    redact_pii_policies: Option<Vec<Policy>>,
    /// With `redact_pii`: `entity_name` (default) or `hash`.
    redact_pii_sub: Option<Substitution>,
}

/// One line of a JSON Lines batch (for the spec).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct BatchLine {
    /// The client's name for the request, unique in the batch (1 to 256 characters); results
    /// carry it.
    #[schema(example = "episode-42")]
    custom_id: String,
    /// Where to fetch the audio, as `POST /v1/jobs` takes it.
    #[schema(example = "https://example.com/episode-42.mp3")]
    audio_url: String,
    /// `tdt`, `rnnt` or `ctc`.
    decoder: Option<String>,
    /// A JSON object returned with the job.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Value>,
    /// Where to POST the job's final event.
    callback_url: Option<String>,
    /// `true`: label each word with its speaker (see `POST /v1/jobs`).
    speaker_labels: Option<bool>,
    /// With `speaker_labels`: the most speakers to label, 1 to 4.
    #[schema(minimum = 1, maximum = 4)]
    speakers_expected: Option<u8>,
    /// `true`: redact personal information (see `POST /v1/jobs`).
    redact_pii: Option<bool>,
    /// With `redact_pii`: which kinds (a list in JSON, comma-separated in a form); default all.
    redact_pii_policies: Option<Vec<Policy>>,
    /// With `redact_pii`: `entity_name` (default) or `hash`.
    redact_pii_sub: Option<Substitution>,
}

/// Create a batch.
///
/// Send JSON Lines (`Content-Type: application/jsonl`, or `application/x-ndjson`): one
/// request per line, `{"custom_id", "audio_url", "decoder", "metadata", "callback_url"}`
/// (the options of `POST /v1/jobs`). Every line is checked first; if any is bad, the batch is
/// refused with `invalid_batch`, listing each bad line, and nothing is made. The audio of a
/// good batch is fetched in the background under the same rules as a URL job; a URL that
/// cannot be fetched fails its own request (`audio_url_unreachable`, ...).
///
/// Or send a multipart form of `file` parts (with `decoder`, `metadata`, `callback_url`
/// before them, for all): each file is checked as an upload; one that is refused fails its
/// own request.
///
/// At most `WARBLE_BATCH_MAX_REQUESTS` requests (10 000) and `WARBLE_BATCH_MAX_BYTES` of JSON
/// Lines (16 MiB). Each request becomes a job (listed in `/v1/jobs`, with `batch_id`), charged
/// to the key's quotas as it is made; URL requests wait while the key is at its
/// concurrent-jobs quota. `batch.completed` is sent once every request has ended.
#[utoipa::path(
    post, path = "/v1/batches", tag = "batches", operation_id = "createBatch",
    request_body(content(
        (Vec<BatchLine> = "application/jsonl"),
        (BatchForm = "multipart/form-data"),
    )),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Makes retries safe: the same key returns the batch the first request made (1 to 255 visible ASCII characters)")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 202, description = "The batch, its requests pending or made", body = Batch, headers(("Location" = String, description = "The batch's URL"))),
        (status = 400, description = "`invalid_body`: not UTF-8, or no requests; a bad form", body = ErrorBody),
        (status = 413, description = "`batch_too_large`: too many requests or bytes; `payload_too_large`: a file over the upload limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: neither JSON Lines nor a form", body = ErrorBody),
        (status = 422, description = "`invalid_batch`: bad lines, each in `error.lines`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, or a quota of the key", body = ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, Refusal> {
    if headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|e| e.as_bytes() != b"identity")
    {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the batch without Content-Encoding",
        )
        .into());
    }
    let idempotency_key = idempotency_key(&headers, &caller)?;
    if let Some(key) = &idempotency_key
        && let Some(existing) = batch::by_idempotency_key(&state.db, key).await?
    {
        return Ok(accepted(&existing, true));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let batch = if [
        "application/jsonl",
        "application/x-ndjson",
        "application/json-lines",
    ]
    .iter()
    .any(|t| content_type.starts_with(t))
    {
        from_lines(&state, &caller, request, idempotency_key).await?
    } else if content_type.starts_with("multipart/form-data") {
        from_files(&state, &caller, &headers, request, idempotency_key).await?
    } else {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send JSON Lines (Content-Type: application/jsonl) or a multipart form of files",
        )
        .into());
    };
    Ok(accepted(&batch.0, batch.1))
}

/// 202 with the batch, its `Location`, and whether it is a replay of an earlier request.
fn accepted(batch: &Batch, replayed: bool) -> Response {
    accepted_at(batch, &format!("/v1/batches/{}", batch.id), replayed)
}

/// A batch from JSON Lines: checked whole, recorded, and handed to the background intake.
async fn from_lines(
    state: &AppState,
    caller: &Caller,
    request: Request,
    idempotency_key: Option<String>,
) -> Result<(Batch, bool), ApiError> {
    let limits = state.batch_limits;
    let body = axum::body::to_bytes(request.into_body(), limits.max_bytes)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::BatchTooLarge,
                format!("the batch is larger than {} bytes", limits.max_bytes),
            )
        })?;
    let text = std::str::from_utf8(&body).map_err(|e| {
        let line = body[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ApiError::new(
            ErrorCode::InvalidBody,
            format!("the batch is not UTF-8 (line {line})"),
        )
    })?;
    // Editors and spreadsheets on Windows start a UTF-8 file with a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty())
        .collect();
    if lines.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "the batch has no requests",
        ));
    }
    if lines.len() > limits.max_requests {
        return Err(ApiError::new(
            ErrorCode::BatchTooLarge,
            format!(
                "the batch has {} requests; at most {} are taken",
                lines.len(),
                limits.max_requests
            ),
        ));
    }
    let intake = Intake {
        state,
        tenant: &caller.tenant,
        limit: crate::upload::UploadLimit::new(state.max_upload_bytes, None),
        audio_key: "",
    };
    let mut seen = HashMap::new();
    let mut requests = Vec::with_capacity(lines.len());
    let mut errors = Vec::new();
    for (number, line) in lines {
        match check_line(&intake, number, line, &mut seen).await {
            Ok(request) => requests.push(request),
            Err(err) => {
                let (code, message) = err.public();
                errors.push(LineError {
                    line: number,
                    code,
                    message,
                });
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidLines(errors));
    }
    let (batch, replayed) = batch::create(
        &state.db,
        &NewBatch {
            id: Ulid::generate().to_string(),
            tenant: caller.tenant.clone(),
            key_id: caller.key_id.clone(),
            idempotency_key,
            requests,
        },
    )
    .await?;
    if !replayed {
        tracing::info!(batch = %batch.id, requests = batch.request_counts.total, "batch created");
        batch_intake::spawn(state.clone(), batch.id.clone());
    }
    Ok((batch, replayed))
}

/// Checks one line as `POST /v1/jobs` would check its JSON, plus its `custom_id` (`seen` maps
/// those before it to their lines).
async fn check_line(
    intake: &Intake<'_>,
    number: usize,
    line: &str,
    seen: &mut HashMap<String, usize>,
) -> Result<NewRequest, ApiError> {
    let invalid = |message: String| ApiError::new(ErrorCode::InvalidBody, message);
    let mut object: Map<String, Value> =
        serde_json::from_str(line).map_err(|e| invalid(format!("not a JSON object: {e}")))?;
    let custom_id = match object.remove("custom_id") {
        Some(Value::String(id))
            if (1..=MAX_CUSTOM_ID).contains(&id.chars().count())
                && !id.trim().is_empty()
                && !id.chars().any(char::is_control) =>
        {
            id
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidField,
                format!(
                    "custom_id must be a string of 1 to {MAX_CUSTOM_ID} characters, not blank, \
                     without control characters"
                ),
            ));
        }
    };
    if let Some(first) = seen.insert(custom_id.clone(), number) {
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("custom_id {custom_id:?} is also on line {first}: each must be unique"),
        ));
    }
    let mut submission: UrlSubmission = serde_json::from_value(Value::Object(object.clone()))
        .map_err(|e| invalid(e.to_string()))?;
    destination::check_url(&submission.audio_url, intake.state.audio_url.allow_private)
        .map_err(|e| ApiError::new(ErrorCode::InvalidAudioUrl, format!("audio_url: {e}")))?;
    submission.options(intake).await?;
    Ok(NewRequest {
        line: number as i64,
        custom_id,
        audio_url: Some(submission.audio_url),
        options: Some(Value::Object(object).to_string()),
    })
}

/// A file of the form: its request's `custom_id`, and the file in storage, not yet checked, or
/// why it was refused as it came in.
struct Upload {
    custom_id: String,
    received: Result<(Ulid, String, FilePart), ApiError>,
}

/// Whether a refusal while a file came in concerns that file alone (its type, its size), so
/// that its request fails and the others go on; a form that cannot be read, or storage or the
/// database failing, ends the whole batch.
fn of_the_file(err: &ApiError) -> bool {
    match err {
        ApiError::Refused { code, .. } => *code != ErrorCode::InvalidMultipart,
        ApiError::Quota(_) => true,
        _ => false,
    }
}

/// A batch from a form of files: all received, the batch recorded, then each file checked and
/// its job recorded as an upload's would be.
async fn from_files(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    request: Request,
    idempotency_key: Option<String>,
) -> Result<(Batch, bool), Refusal> {
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InvalidMultipart, e.body_text()))?;
    let (quotas, limit) = match admit(state, caller, headers).await {
        Ok(admitted) => admitted,
        Err(err) => return Err(Refusal::Early(err.closing())),
    };
    let mut options = JobOptions::default();
    let mut uploads: Vec<Upload> = Vec::new();
    // How many files so far had each name: a repeated name gets `#2`, `#3`, ... so that
    // custom_ids stay unique.
    let mut names: HashMap<String, usize> = HashMap::new();
    let read = async {
        while let Some(mut field) = multipart.next_field().await.map_err(bad_form)? {
            let name = field.name().unwrap_or_default().to_string();
            let id = Ulid::generate();
            let audio_key = job::audio_key(id);
            let intake = Intake {
                state,
                tenant: &caller.tenant,
                limit,
                audio_key: &audio_key,
            };
            if name != "file" {
                if !uploads.is_empty() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidMultipart,
                        format!("{name} comes after a file: send the options first"),
                    ));
                }
                if !options.take(&intake, &name, &mut field).await? {
                    return Err(ApiError::new(
                        ErrorCode::UnknownField,
                        format!(
                            "unknown form field {name:?}; expected file, {}",
                            JobOptions::NAMES
                        ),
                    ));
                }
                continue;
            }
            if uploads.is_empty() {
                check_features(&options.features)?;
            }
            if uploads.len() == state.batch_limits.max_requests {
                return Err(ApiError::new(
                    ErrorCode::BatchTooLarge,
                    format!(
                        "at most {} files are taken",
                        state.batch_limits.max_requests
                    ),
                ));
            }
            let file_name = field
                .file_name()
                .and_then(filename::sanitize)
                .unwrap_or_else(|| format!("file-{}", uploads.len() + 1));
            let seen = names.entry(file_name.clone()).or_default();
            *seen += 1;
            let custom_id = match *seen {
                1 => file_name,
                n => format!("{file_name}#{n}"),
            };
            let received = match FilePart::receive(&intake, &mut field).await {
                Ok(part) => Ok((id, audio_key, part)),
                Err(err) if of_the_file(&err) => Err(err),
                Err(err) => return Err(err),
            };
            uploads.push(Upload {
                custom_id,
                received,
            });
        }
        Ok(())
    }
    .await;
    if let Err(err) = read {
        abort(uploads).await;
        discard(&mut multipart, state.max_upload_bytes).await;
        return Err(err.into());
    }
    if uploads.is_empty() {
        return Err(ApiError::new(ErrorCode::MissingFile, "the form has no `file` part").into());
    }
    let shared = serde_json::to_string(&options).expect("options serialise");
    let requests = (1..)
        .zip(&uploads)
        .map(|(line, upload)| NewRequest {
            line,
            custom_id: upload.custom_id.clone(),
            audio_url: None,
            options: Some(shared.clone()),
        })
        .collect();
    let id = Ulid::generate().to_string();
    let new = NewBatch {
        id: id.clone(),
        tenant: caller.tenant.clone(),
        key_id: caller.key_id.clone(),
        idempotency_key,
        requests,
    };
    let (batch, replayed) = match batch::create(&state.db, &new).await {
        Ok(created) => created,
        Err(err) => {
            abort(uploads).await;
            return Err(err.into());
        }
    };
    if replayed {
        abort(uploads).await;
        return Ok((batch, true));
    }
    // Held while the files are recorded, so that no background intake takes these requests
    // for uploads whose request ended.
    let _hold = batch::claim(&state.db, &id, None, batch_intake::LEASE_MS)
        .await?
        .map(|lease| batch_intake::Hold::new(state, &id, lease));
    for (line, upload) in (1..).zip(uploads) {
        let made = match upload.received {
            Ok((job_id, audio_key, part)) => {
                let received = Received {
                    id: job_id,
                    audio_key,
                    file: part.file,
                    filename: part.filename,
                    content_type: part.content_type,
                    options: options.clone(),
                    quotas,
                    batch: Some((id.clone(), line)),
                };
                commit(state, caller, received, None).await
            }
            Err(err) => Err(err),
        };
        match made {
            Ok((job, _)) => batch_intake::note_job(state, &id, line, &job.id).await?,
            Err(err) => {
                let (code, message) = err.public();
                batch::refused(&state.db, &id, line, &JobError::new(code, message)).await?;
            }
        }
    }
    let batch = batch::get(&state.db, &id, None)
        .await?
        .ok_or_else(|| ApiError::Internal("a batch just made is not found".into()))?;
    tracing::info!(batch = %id, files = batch.request_counts.total, "batch of files created");
    Ok((batch, false))
}

/// Removes the stored files of a form that made no batch.
async fn abort(uploads: Vec<Upload>) {
    for upload in uploads {
        if let Ok((_, _, part)) = upload.received {
            part.file.abort().await;
        }
    }
}
