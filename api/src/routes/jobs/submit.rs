//! `POST /v1/jobs`: an upload becomes a queued job. The order matters: what can be refused
//! before the body is read is ([`admit`]); the form is read with the file streamed to storage
//! ([`Submission`]); the file is checked, then the job recorded and charged in one transaction,
//! then queued. Whatever is refused leaves nothing behind.

use crate::keys::Caller;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use ulid::Ulid;
use utoipa::ToSchema;
use warble_jobs::batch;
use warble_jobs::features::Features;
use warble_jobs::job::{self, Inserted, Job, NewJob};
use warble_jobs::quota;

use super::form::{Fields, Intake, JobOptions, MAX_METADATA_BYTES, Submission};
use super::from_url::{self, UrlSubmission};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;
use crate::upload::{Incoming, UploadLimit};

/// Longest `Idempotency-Key`.
const MAX_IDEMPOTENCY_KEY: usize = 255;
/// Bytes a submission may carry beyond its file: the other fields and the multipart framing.
pub const FORM_OVERHEAD: usize = MAX_METADATA_BYTES + 16 * 1024;

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
    /// `true`: label each word with its speaker ("A", "B", ... in order of first appearance,
    /// from a Sortformer diarization model on the worker), split segments where the speaker
    /// changes, add `utterances` to the transcript and name speakers in SRT (`Speaker A: `) and
    /// VTT (`<v Speaker A>`). A word overlapped by two speakers goes to the one who covers more
    /// of it.
    speaker_labels: Option<bool>,
    /// With `speaker_labels`: the most speakers to label, 1 to 4; the quietest beyond it are
    /// folded into the others.
    #[schema(minimum = 1, maximum = 4)]
    speakers_expected: Option<u8>,
    /// `true`: replace personal information (e-mail addresses, phone, card and social security
    /// numbers, IBANs, IP addresses, URLs; digits or spoken) in the text, words, segments and
    /// every format. The unredacted transcript is never stored.
    redact_pii: Option<bool>,
    /// With `redact_pii`: comma-separated kinds (email_address, phone_number,
    /// credit_card_number, banking_information, us_social_security_number, ip_address, url);
    /// default all.
    redact_pii_policies: Option<String>,
    /// With `redact_pii`: `entity_name` (`[PHONE_NUMBER]`, the default) or `hash` (`#` per
    /// character).
    #[schema(pattern = "^(entity_name|hash)?$")]
    redact_pii_sub: Option<String>,
}

/// Submit audio for transcription.
///
/// Accepted: WAV (PCM, IMA or Microsoft ADPCM), FLAC, MP3, M4A/MP4 (AAC or ALAC), ADTS AAC, Ogg
/// Vorbis or Opus (`.ogg`, `.oga`, `.opus`), WebM/Matroska (`.webm`, `.mka`) with Opus or
/// Vorbis; up to 8 channels, 8 to 192 kHz. The file's own bytes must be what its extension
/// says; the part's `Content-Type` is the client's guess, so any audio or video type (or
/// `application/octet-stream`) is taken and recorded as given, and only a type that is not
/// audio (an image, text, a program) is refused. The container is probed before the job is
/// created and its duration measured by counting packets (headers are not trusted): that
/// duration (the job's `duration`) must be within the limit and is what the key's quota is
/// charged, until the worker's decoding settles it. The upload streams to object storage while
/// its SHA-256 is computed; the job is queued and answered at once. Poll `Location` until the
/// status is final. With an `Idempotency-Key` header, repeating the request returns the job the
/// first one made.
///
/// Or send JSON, `{"audio_url": ...}` with the same options: the server fetches the file (a
/// public http(s) address; redirects followed at most 5 times, each checked; within the upload
/// limit and `WARBLE_AUDIO_URL_TIMEOUT_SECS`) and checks it as an upload. The job is answered
/// once the file is in.
#[utoipa::path(
    post, path = "/v1/jobs", tag = "jobs", operation_id = "createJob",
    request_body(content(
        (SubmitForm = "multipart/form-data"),
        (UrlSubmission = "application/json"),
    )),
    params(("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255, pattern = "^[!-~]+$", description = "Makes retries safe: the same key returns the same job (1 to 255 visible ASCII characters)")),
    responses(
        (status = 401, description = "No valid key", body = ErrorBody),
        (status = 202, description = "Queued", body = Job, headers(("Location" = String, description = "The job's URL"))),
        (status = 400, description = "Bad form", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over the upload limit; `audio_url_too_large`: the file at `audio_url` is", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not an accepted format, a declared type that is not audio, or content that is not what the name says", body = ErrorBody),
        (status = 422, description = "`invalid_audio`: empty, damaged, too long, or out-of-range rate or channels; `invalid_callback_url`; `webhook_secret_missing`; `invalid_audio_url`, `audio_url_unreachable`, `audio_url_timeout`", body = ErrorBody),
        (status = 429, description = "`rate_limited`, or over a quota of the key: `quota_concurrent_jobs`, `quota_audio_seconds` (with `Retry-After`), `quota_upload_bytes`", body = ErrorBody),
        (status = 503, description = "Database or storage unavailable", body = ErrorBody),
    )
)]
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, Refusal> {
    let idempotency_key = idempotency_key(&headers, &caller)?;
    let existing = match &idempotency_key {
        Some(key) => job::find_by_idempotency_key(&state.db, key).await?,
        None => None,
    };
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if json {
        let body = axum::body::to_bytes(request.into_body(), from_url::MAX_BODY_BYTES)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidBody,
                    format!(
                        "the JSON body is larger than {} bytes",
                        from_url::MAX_BODY_BYTES
                    ),
                )
            })?;
        let mut submission: UrlSubmission = serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorCode::InvalidBody, e.to_string()))?;
        if let Some(existing) = existing {
            same_features(&existing.job, &submission.features()?)?;
            return Ok(accepted(&existing.job, true));
        }
        let (job, replayed) =
            from_url(&state, &caller, &headers, submission, idempotency_key, None).await?;
        return Ok(accepted(&job, replayed));
    }
    let mut multipart = Multipart::from_request(request, &state)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InvalidMultipart, e.body_text()))?;
    if let Some(existing) = existing {
        // Read the repeated upload to its end before answering: a client still sending it
        // would otherwise see the connection reset instead of the replayed job.
        let features = discard(&mut multipart, state.max_upload_bytes).await;
        same_features(&existing.job, &features)?;
        return Ok(accepted(&existing.job, true));
    }
    let (job, replayed, _) =
        intake::<JobOptions>(&state, &caller, &headers, multipart, idempotency_key).await?;
    Ok(accepted(&job, replayed))
}

/// A job from a URL (request `(id, line)` of a batch): the audio fetched into storage,
/// checked, and the job recorded and queued.
pub(crate) async fn from_url(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    mut submission: UrlSubmission,
    idempotency_key: Option<String>,
    batch: Option<(&str, i64)>,
) -> Result<(Job, bool), ApiError> {
    let (quotas, limit) = admit(state, caller, headers).await?;
    let id = Ulid::generate();
    let audio_key = job::audio_key(id);
    let intake = Intake {
        state,
        tenant: &caller.tenant,
        limit,
        audio_key: &audio_key,
    };
    let options = submission.options(&intake).await?;
    let fetched = from_url::fetch(&intake, &submission.audio_url).await?;
    let received = Received {
        id,
        audio_key,
        file: fetched.file,
        filename: fetched.filename,
        content_type: fetched.content_type,
        options,
        quotas,
        batch: batch.map(|(id, line)| (id.to_string(), line)),
    };
    commit(state, caller, received, idempotency_key).await
}

/// A submission form read, its file stored and checked, and its job recorded and queued: the
/// job, whether it is a replay (the same idempotency key made it before), and the form's
/// other fields. The refusals made before the form is read answer at once, closing the
/// connection ([`ApiError::closing`]): they are the `Err(Response)`.
pub(crate) async fn intake<F: Fields>(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    mut multipart: Multipart,
    idempotency_key: Option<String>,
) -> Result<(Job, bool, F), Refusal> {
    // Refused before reading: no point receiving what cannot be kept.
    let (quotas, limit) = match admit(state, caller, headers).await {
        Ok(admitted) => admitted,
        Err(err) => {
            // A small upload is read to its end, so the client gets the answer rather than a
            // broken pipe; a large one is cut off (curl and browsers send
            // `Expect: 100-continue` and never start it).
            discard(&mut multipart, crate::auth::DRAIN_BYTES).await;
            return Err(Refusal::Early(err.closing()));
        }
    };
    let id = Ulid::generate();
    let audio_key = job::audio_key(id);
    let intake = Intake {
        state,
        tenant: &caller.tenant,
        limit,
        audio_key: &audio_key,
    };
    let mut form = match Submission::<F>::read(&intake, &mut multipart).await {
        Ok(form) => form,
        Err(err) => {
            // Read on (up to the upload limit) so that a client still sending gets the error
            // instead of a reset connection.
            discard(&mut multipart, state.max_upload_bytes).await;
            return Err(err.into());
        }
    };
    let Some(file) = form.file.take() else {
        return Err(ApiError::new(ErrorCode::MissingFile, "the form has no `file` part").into());
    };
    let received = Received {
        id,
        audio_key,
        file,
        filename: form.filename,
        content_type: form.content_type,
        options: form.fields.job_options(),
        quotas,
        batch: None,
    };
    let (job, replayed) = commit(state, caller, received, idempotency_key).await?;
    Ok((job, replayed, form.fields))
}

/// A submission whose file is in, not yet checked.
pub(crate) struct Received {
    pub id: Ulid,
    pub audio_key: String,
    pub file: Incoming,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub options: JobOptions,
    pub quotas: quota::Quotas,
    /// The batch request it is: the batch's id and the request's line.
    pub batch: Option<(String, i64)>,
}

/// Checks the received file (a refused one is removed) and records and queues its job.
pub(crate) async fn commit(
    state: &AppState,
    caller: &Caller,
    received: Received,
    idempotency_key: Option<String>,
) -> Result<(Job, bool), ApiError> {
    let (stored, probe) = received.file.finish(state).await?;
    // Checked last, just before the job is recorded: a batch canceled while the file came in
    // and was checked gets no job, and no charge.
    if let Some((batch_id, line)) = &received.batch
        && !batch::is_pending(&state.db, batch_id, *line).await?
    {
        state.storage.delete(&received.audio_key).await?;
        return Err(ApiError::new(
            ErrorCode::BatchFinished,
            "the batch was canceled before this request's job was made",
        ));
    }
    let new = NewJob {
        id: received.id,
        decoder: received.options.decoder,
        metadata: received.options.metadata,
        filename: received.filename,
        content_type: received.content_type,
        audio_key: received.audio_key,
        audio_sha256: stored.sha256,
        audio_bytes: stored.bytes,
        duration: Some(probe.duration_secs),
        idempotency_key,
        callback_url: received.options.callback_url,
        tenant: caller.tenant.clone(),
        key_id: caller.key_id.clone(),
        quotas: received.quotas,
        batch_id: received.batch.map(|(id, _)| id),
        features: received.options.features,
    };
    record(state, &new).await
}

/// Why a submission took no job.
pub enum Refusal {
    /// Refused before the form was read: the response, which closes the connection.
    Early(Response),
    /// Refused while or after reading it.
    Error(ApiError),
}

impl<E: Into<ApiError>> From<E> for Refusal {
    fn from(err: E) -> Self {
        Self::Error(err.into())
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Self::Early(response) => response,
            Self::Error(err) => err.into_response(),
        }
    }
}

/// Records `new` (charged to its key's quotas in the same transaction) and queues it: the job
/// and whether an earlier request with the same idempotency key made it instead. A refusal
/// removes the job's stored audio, so nothing is left behind.
pub(crate) async fn record(state: &AppState, new: &NewJob) -> Result<(Job, bool), ApiError> {
    let inserted = match job::insert(&state.db, new).await {
        Ok(inserted) => inserted,
        Err(err) => {
            // Nothing refers to the audio: do not leave it behind.
            state.storage.delete(&new.audio_key).await.ok();
            return Err(err.into());
        }
    };
    match inserted {
        Inserted::OverQuota(exceeded) => {
            state.storage.delete(&new.audio_key).await?;
            Err(ApiError::Quota(exceeded))
        }
        Inserted::Existing(existing) => {
            // A concurrent request with the same key won; ours is a duplicate.
            state.storage.delete(&new.audio_key).await?;
            Ok((existing.job, true))
        }
        Inserted::Created(created) => {
            // The job is recorded, so the client gets it whatever happens next: if the queue
            // cannot take it now, or noting that it did fails, the sweeper hands it over (again;
            // queue tasks are keyed by job id) and sets the flag later. An error here would
            // have the client submit, and be charged, twice.
            enqueue(state, &created.job.id).await;
            tracing::info!(job = %created.job.id, bytes = created.job.audio_bytes, "job submitted");
            Ok((created.job, false))
        }
    }
}

/// The checks made before an upload is read: its declared size against the server's limit and
/// the key's upload quota, and the key's other quotas as they stand.
pub(crate) async fn admit(
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

/// The request's `Idempotency-Key`, scoped to the caller's tenant so that two tenants' keys
/// never meet.
pub(crate) fn idempotency_key(
    headers: &HeaderMap,
    caller: &Caller,
) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value.to_str().ok().filter(|k| {
        !k.is_empty() && k.len() <= MAX_IDEMPOTENCY_KEY && k.chars().all(|c| c.is_ascii_graphic())
    });
    match key {
        Some(key) => Ok(Some(format!("{}/{key}", caller.tenant))),
        None => Err(ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        )),
    }
}

/// Reads and drops the rest of a form, up to about `limit` bytes.
///
/// Returns the speaker-label and redaction settings among the fields read, which a replay must
/// repeat.
pub(crate) async fn discard(multipart: &mut Multipart, limit: u64) -> Features {
    let mut read = 0u64;
    let mut features = Features::default();
    while let Ok(Some(mut field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_string();
        let mut value = Vec::new();
        while let Ok(Some(chunk)) = field.chunk().await {
            read += chunk.len() as u64;
            if read > limit {
                return features;
            }
            if name != "file" && value.len() < 1024 {
                value.extend_from_slice(&chunk);
            }
        }
        // A bad value counts as a different request: it differs from what was recorded.
        if let Ok(value) = String::from_utf8(value)
            && !value.trim().is_empty()
            && features.set(&name, &value).is_err()
        {
            features.speakers_expected = Some(0);
        }
    }
    features
}

/// Refuses a replay (the same `Idempotency-Key`) that asks for other speaker labels or
/// redaction than the job it names: answering with that job would hand out, say, an
/// unredacted transcript to a request that asked for redaction.
fn same_features(existing: &Job, features: &Features) -> Result<(), ApiError> {
    if existing.features == *features {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::IdempotencyKeyReused,
        "this Idempotency-Key was used for a request with other speaker_labels or redact_pii \
         settings; use a new key for a new request",
    ))
}

/// 202 with the job, its `Location`, and whether it is a replay of an earlier request.
fn accepted(job: &Job, replayed: bool) -> Response {
    accepted_at(job, &format!("/v1/jobs/{}", job.id), replayed)
}

/// 202 with `body`, its `location`, and whether it is a replay of an earlier request (the same
/// `Idempotency-Key`): the answer of every route that makes something to poll.
pub(crate) fn accepted_at(
    body: &impl serde::Serialize,
    location: &str,
    replayed: bool,
) -> Response {
    let mut response = (StatusCode::ACCEPTED, Json(body)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    if replayed {
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Hands a recorded job to the queue and notes that it did; on failure, only logs it: the
/// sweeper hands over the jobs not noted (again: queue tasks are keyed by job id) and notes
/// them later.
pub(crate) async fn enqueue(state: &AppState, id: &str) {
    match state.queue.push(id).await {
        Ok(()) => {
            if let Err(err) = job::mark_enqueued(&state.db, id).await {
                tracing::warn!(job = %id, error = %err, "enqueued; flag left to the sweeper");
            }
        }
        Err(err) => tracing::warn!(job = %id, error = %err, "enqueue deferred"),
    }
}
