//! `/v1/jobs`: submit audio, poll the job, fetch the transcript, list, cancel.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use ulid::Ulid;
use utoipa::{IntoParams, ToSchema};
use warble_common::job::{self, Inserted, Job, JobStatus, NewJob};
use warble_common::keys::Caller;
use warble_common::quota;
use warble_common::transcript::{Format, Transcript};
use warble_common::{destination, filename, webhook};

use crate::error::{ApiError, ErrorBody};
use crate::routes::{audit, page};
use crate::state::AppState;
use crate::upload::{Incoming, UploadLimit};

/// Largest `metadata` object, bytes of JSON.
const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Longest `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Bytes a submission may carry beyond its file: the other fields and the multipart framing.
pub const FORM_OVERHEAD: usize = MAX_METADATA_BYTES + 16 * 1024;
/// Decoders a job may ask for.
const DECODERS: [&str; 3] = ["tdt", "rnnt", "ctc"];

/// The multipart form of `POST /v1/jobs` (for the spec; the handler streams it).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct SubmitForm {
    /// The audio file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `tdt`, `rnnt` or `ctc`; default (also when empty): the model's main decoder.
    #[schema(pattern = "^(tdt|rnnt|ctc)?$")]
    decoder: Option<String>,
    /// A JSON object (at most 16 KB) returned with the job; empty is none.
    metadata: Option<String>,
    /// Where to POST `job.succeeded`, `job.failed` or `job.canceled` for this job (http or
    /// https, a public address), signed with the tenant's default secret
    /// (`POST /v1/webhooks/secret`, needed first); empty is none.
    #[schema(max_length = 2048)]
    callback_url: Option<String>,
}

/// Submit audio for transcription.
///
/// Accepted: WAV, FLAC, MP3, M4A/MP4 (AAC), ADTS AAC, Ogg Vorbis or Opus (`.ogg`, `.oga`,
/// `.opus`), WebM/Matroska (`.webm`, `.mka`) with Opus or Vorbis; up to 8 channels, 8 to
/// 192 kHz. The extension, the part's `Content-Type` and the file's own first bytes must agree,
/// and the container is probed before the job is created: its duration (also returned as the
/// job's `duration`) must be within the limit. The upload streams to object storage while its
/// SHA-256 is computed; the job is queued and answered at once. Poll `Location` until the
/// status is final. With an `Idempotency-Key` header, repeating the request returns the job the
/// first one made.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs",
    request_body(content = SubmitForm, content_type = "multipart/form-data"),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Makes retries safe: the same key returns the same job (1 to 255 visible ASCII characters)")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 202, description = "Queued", body = Job, headers(("Location" = String, description = "The job's URL"))),
        (status = 400, description = "Bad form", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over the upload limit", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not an accepted format, or the name, type and content disagree", body = ErrorBody),
        (status = 422, description = "`invalid_audio`: empty, damaged, too long, or out-of-range rate or channels; `invalid_callback_url`; `webhook_secret_missing`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, or over a quota of the key: `quota_concurrent_jobs`, `quota_audio_seconds` (with `Retry-After`), `quota_upload_bytes`", body = ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = ErrorBody),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut multipart =
        multipart.map_err(|e| ApiError::bad_request("invalid_multipart", e.body_text()))?;
    // Idempotency keys are the client's own: scoped to its tenant, so that two tenants' keys
    // never meet.
    let idempotency_key = idempotency_key(&headers)?.map(|key| format!("{}/{key}", caller.tenant));
    if let Some(key) = &idempotency_key
        && let Some(existing) = job::find_by_idempotency_key(&state.db, key).await?
    {
        // Read the repeated upload to its end before answering: a client still sending it
        // would otherwise see the connection reset instead of the replayed job.
        discard(&mut multipart, state.max_upload_bytes).await;
        return Ok(accepted(&existing.job, true));
    }
    // Refused before reading: no point receiving what cannot be kept.
    let (quotas, limit) = match admit(&state, &caller, &headers).await {
        Ok(admitted) => admitted,
        Err(err) => {
            // A small upload is read to its end, so the client gets the answer rather than a
            // broken pipe; a large one is cut off (curl and browsers send
            // `Expect: 100-continue` and never start it).
            discard(&mut multipart, crate::auth::DRAIN_BYTES).await;
            return Ok(err.closing());
        }
    };
    let id = Ulid::generate();
    let audio_key = job::audio_key(id);
    let mut form = Form::default();
    let mut incoming: Option<Incoming> = None;
    let read = read_form(
        &state,
        &caller.tenant,
        &mut multipart,
        limit,
        &audio_key,
        &mut form,
        &mut incoming,
    )
    .await;
    let (stored, probe) = match (read, incoming) {
        (Ok(()), Some(incoming)) => incoming.finish(&state).await?,
        (Ok(()), None) => {
            return Err(ApiError::bad_request(
                "missing_file",
                "the form has no `file` part",
            ));
        }
        (Err(err), incoming) => {
            if let Some(incoming) = incoming {
                incoming.abort().await;
            }
            // Read on (up to the upload limit) so that a client still sending gets the error
            // instead of a reset connection.
            discard(&mut multipart, state.max_upload_bytes).await;
            return Err(err);
        }
    };
    let new = NewJob {
        id,
        decoder: form.decoder,
        metadata: form.metadata,
        filename: form.filename,
        content_type: form.content_type,
        audio_key: audio_key.clone(),
        audio_sha256: stored.sha256,
        audio_bytes: stored.bytes,
        duration: Some(probe.duration_secs),
        idempotency_key,
        callback_url: form.callback_url,
        tenant: caller.tenant.clone(),
        key_id: caller.key_id.clone(),
        quotas,
    };
    let inserted = match job::insert(&state.db, &new).await {
        Ok(inserted) => inserted,
        Err(err) => {
            // Nothing refers to the audio: do not leave it behind.
            state.storage.delete(&audio_key).await.ok();
            return Err(err.into());
        }
    };
    match inserted {
        Inserted::OverQuota(exceeded) => {
            state.storage.delete(&audio_key).await?;
            Err(ApiError::Quota(exceeded))
        }
        Inserted::Existing(existing) => {
            // A concurrent request with the same key won; ours is a duplicate.
            state.storage.delete(&audio_key).await?;
            Ok(accepted(&existing.job, true))
        }
        Inserted::Created(created) => {
            // The job is recorded; if the queue cannot take it now, the API's re-enqueue loop
            // hands it over later, so the client still gets its job.
            match state.queue.push(&created.job.id).await {
                Ok(()) => job::mark_enqueued(&state.db, &created.job.id).await?,
                Err(err) => tracing::warn!(job = %created.job.id, error = %err, "enqueue deferred"),
            }
            tracing::info!(job = %created.job.id, bytes = created.job.audio_bytes, "job submitted");
            Ok(accepted(&created.job, false))
        }
    }
}

/// The checks made before an upload is read: its declared size against the server's limit and
/// the key's upload quota, and the key's other quotas as they stand.
async fn admit(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
) -> Result<(quota::Quotas, UploadLimit), ApiError> {
    let quotas = quota::of(&state.db, &caller.key_id)
        .await?
        .unwrap_or_default();
    let limit = UploadLimit::new(state.max_upload_bytes, quotas.upload_bytes);
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && length > limit.bytes + FORM_OVERHEAD as u64
    {
        return Err(limit.refusal());
    }
    quota::precheck(&state.db, &caller.key_id, quotas)
        .await?
        .map_err(ApiError::Quota)?;
    Ok((quotas, limit))
}

/// The non-file fields of the form.
#[derive(Default)]
struct Form {
    decoder: Option<String>,
    callback_url: Option<String>,
    metadata: Option<serde_json::Value>,
    filename: Option<String>,
    content_type: Option<String>,
}

/// Reads the form, streaming the `file` part into `upload` as it arrives.
async fn read_form(
    state: &AppState,
    tenant: &str,
    multipart: &mut Multipart,
    limit: UploadLimit,
    audio_key: &str,
    form: &mut Form,
    incoming: &mut Option<Incoming>,
) -> Result<(), ApiError> {
    while let Some(mut field) = multipart.next_field().await.map_err(bad_form)? {
        match field.name().unwrap_or_default() {
            "file" => {
                if incoming.is_some() {
                    return Err(ApiError::bad_request(
                        "duplicate_file",
                        "send one `file` part",
                    ));
                }
                form.filename = field.file_name().and_then(filename::sanitize);
                form.content_type = field.content_type().map(str::to_string);
                let extension = form.filename.as_deref().and_then(filename::extension);
                let target = incoming.insert(
                    Incoming::start(
                        state,
                        audio_key,
                        extension.as_deref(),
                        form.content_type.as_deref(),
                    )
                    .await?,
                );
                while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                    target.write(&chunk, limit).await?;
                }
            }
            // An empty field is one left blank in a form: not given.
            "decoder" => {
                let value = small_text(&mut field, 64).await?;
                if value.is_empty() {
                    continue;
                }
                if !DECODERS.contains(&value.as_str()) {
                    return Err(ApiError::bad_request(
                        "invalid_decoder",
                        format!("decoder must be one of {}", DECODERS.join(", ")),
                    ));
                }
                form.decoder = Some(value);
            }
            "callback_url" => {
                let value = small_text(&mut field, destination::MAX_URL_LEN + 1).await?;
                if value.is_empty() {
                    continue;
                }
                let url =
                    destination::check_url(&value, state.webhook_allow_private).map_err(|err| {
                        ApiError::Unprocessable {
                            code: "invalid_callback_url",
                            message: err.to_string(),
                        }
                    })?;
                if !webhook::has_tenant_secret(&state.db, tenant).await? {
                    return Err(ApiError::Unprocessable {
                        code: "webhook_secret_missing",
                        message: "callbacks are signed with your tenant's secret: make it \
                                  first with POST /v1/webhooks/secret"
                            .into(),
                    });
                }
                form.callback_url = Some(url.into());
            }
            "metadata" => {
                let value = small_text(&mut field, MAX_METADATA_BYTES).await?;
                if value.is_empty() {
                    continue;
                }
                match serde_json::from_str::<serde_json::Value>(&value) {
                    Ok(object @ serde_json::Value::Object(_)) => form.metadata = Some(object),
                    _ => {
                        return Err(ApiError::bad_request(
                            "invalid_metadata",
                            "metadata must be a JSON object",
                        ));
                    }
                }
            }
            other => {
                return Err(ApiError::bad_request(
                    "unknown_field",
                    format!(
                        "unknown form field {other:?}; expected file, decoder, metadata, \
                         callback_url"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A form that could not be parsed, or a body over axum's limit.
fn bad_form(err: axum::extract::multipart::MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::TooLarge("the request body is larger than the limit".into());
    }
    ApiError::bad_request("invalid_multipart", err.body_text())
}

/// A text field of at most `limit` bytes.
async fn small_text(
    field: &mut axum::extract::multipart::Field<'_>,
    limit: usize,
) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_string();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::bad_request(
                "field_too_large",
                format!("{name} is longer than {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::bad_request("invalid_field", format!("{name} is not UTF-8")))
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().ok().filter(|k| {
        !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.chars().all(|c| c.is_ascii_graphic())
    });
    match key {
        Some(key) => Ok(Some(key.to_string())),
        None => Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// Reads and drops the rest of a form, up to about `limit` bytes.
async fn discard(multipart: &mut Multipart, limit: u64) {
    let mut read = 0u64;
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(chunk)) = field.chunk().await {
            read += chunk.len() as u64;
            if read > limit {
                return;
            }
        }
    }
}

/// 202 with the job, its `Location`, and whether it is a replay of an earlier request.
fn accepted(job: &Job, replayed: bool) -> Response {
    let location = format!("/v1/jobs/{}", job.id);
    let mut response = (StatusCode::ACCEPTED, Json(job)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, value);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// A job's status. Another tenant's job answers 404, as if it did not exist.
#[utoipa::path(
    get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The job", body = Job),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let found = job::get(&state.db, &id, caller.scope())
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    Ok(Json(found.job))
}

/// `?format=` of the transcript route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TranscriptQuery {
    /// `json` (default), `text`, `srt` or `vtt`.
    #[serde(default)]
    #[param(inline, required = false)]
    pub format: Format,
}

/// A finished job's transcript.
#[utoipa::path(
    get, path = "/v1/jobs/{id}/transcript", tag = "jobs",
    params(("id" = String, Path, description = "Job id"), TranscriptQuery),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The transcript in the asked format", content(
            (Transcript = "application/json"),
            (String = "text/plain"),
            (String = "application/x-subrip"),
            (String = "text/vtt"),
        )),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 400, description = "`invalid_format`: not one of the formats", body = ErrorBody),
        (status = 409, description = "The job has not succeeded", body = ErrorBody),
        (status = 410, description = "The transcript was deleted", body = ErrorBody),
    )
)]
pub async fn transcript(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<TranscriptQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|_| {
        ApiError::bad_request("invalid_format", "format must be json, text, srt or vtt")
    })?;
    let (status, text) = job::transcript(&state.db, &id, caller.scope())
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    let transcript = match (status, text) {
        (JobStatus::Succeeded, Some(text)) => text,
        (JobStatus::Succeeded | JobStatus::Canceled, None) => {
            return Err(ApiError::Gone("the transcript was deleted"));
        }
        (status, _) => {
            return Err(ApiError::Conflict {
                code: "transcript_not_ready",
                message: format!("the job is {}, not succeeded", status.as_str()),
            });
        }
    };
    let transcript: Transcript = serde_json::from_str(&transcript).map_err(|e| {
        tracing::error!(job = %id, error = %e, "stored transcript does not parse");
        ApiError::Conflict {
            code: "transcript_unreadable",
            message: "the stored transcript cannot be read".into(),
        }
    })?;
    Ok((
        [(header::CONTENT_TYPE, query.format.content_type())],
        transcript.render(query.format),
    )
        .into_response())
}

/// Query of the list route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only jobs in this state.
    pub status: Option<JobStatus>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// Newest first.
    pub jobs: Vec<Job>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Jobs, newest first: the caller's tenant's (an admin's: every tenant's).
#[utoipa::path(
    get, path = "/v1/jobs", tag = "jobs",
    params(ListQuery),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "Bad query", body = ErrorBody),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let Query(query) = query?;
    let limit = page::limit(query.limit, 20, 100)?;
    let jobs = job::list(
        &state.db,
        caller.scope(),
        query.status,
        query.cursor.as_deref(),
        limit,
    )
    .await?;
    let next_cursor = page::next_cursor(&jobs, limit, |j| &j.id);
    Ok(Json(JobPage { jobs, next_cursor }))
}

/// Cancel a job and delete its data.
///
/// A queued or running job becomes `canceled` (a running worker stops using it); for any job
/// the audio and the transcript are deleted. The job record stays, so its id keeps answering.
#[utoipa::path(
    delete, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "Job id")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 200, description = "The job afterwards", body = Job),
        (status = 404, description = "No such job", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let stored = job::cancel_and_forget(&state.db, &id, caller.scope())
        .await?
        .ok_or(ApiError::NotFound("job"))?;
    state.storage.delete(&stored.audio_key).await?;
    tracing::info!(job = %id, status = stored.job.status.as_str(), "job deleted");
    let detail = serde_json::json!({ "tenant": stored.job.tenant, "status": stored.job.status });
    audit::record(&state, &caller, "job.delete", &id, detail).await;
    Ok(Json(stored.job))
}
