//! Every stable error code warble gives, in one table: the API's refusals (each with its HTTP
//! status) and the reasons a job fails (in `job.error.code`, with no status of their own).
//! Programs match on these codes, so a code, once published, keeps its meaning; the messages
//! beside them are for people and may change. The table is served in the OpenAPI document
//! (the `ErrorCode` schema) and listed in the README; a test keeps the README in step.
//!
//! After meilisearch's `Code` table: one enum instead of string literals spread over routes,
//! upload checks, authentication, quotas and the worker.

use serde::{Deserialize, Serialize};

/// Declares [`ErrorCode`] from rows of `Variant = "code", status, "description"`, where the
/// status is `None` for job errors.
macro_rules! error_codes {
    ($($variant:ident = $code:literal, $status:expr, $doc:literal;)*) => {
        /// A stable, machine-readable error code: the `code` of an API error body, or of a failed
        /// job's `error`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode {
            $(
                #[doc = $doc]
                #[serde(rename = $code)]
                $variant,
            )*
        }

        impl ErrorCode {
            /// Every code, in the table's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),*];

            /// The code as sent and stored.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $code,)*
                }
            }

            /// The HTTP status an API error with this code has; `None` for job errors, which
            /// are reported in a job, not as a response.
            pub fn status(self) -> Option<u16> {
                match self {
                    $(Self::$variant => $status,)*
                }
            }

            /// What the code means, for the documentation.
            pub fn description(self) -> &'static str {
                match self {
                    $(Self::$variant => $doc,)*
                }
            }
        }
    };
}

error_codes! {
    // The request is malformed.
    InvalidMultipart = "invalid_multipart", Some(400), "The body is not a multipart form that can be read.";
    InvalidBody = "invalid_body", Some(400), "The JSON body does not parse, is not an object, or has a field out of range.";
    InvalidQuery = "invalid_query", Some(400), "The query string does not parse or has an unknown value.";
    InvalidLimit = "invalid_limit", Some(400), "`limit` is outside the route's range.";
    InvalidFormat = "invalid_format", Some(400), "`format` is not one of json, text, srt, vtt.";
    InvalidField = "invalid_field", Some(400), "A form field is not UTF-8 text.";
    FieldTooLarge = "field_too_large", Some(400), "A form field is longer than its limit.";
    UnknownField = "unknown_field", Some(400), "The form has a field the route does not take.";
    MissingFile = "missing_file", Some(400), "The form has no `file` part.";
    DuplicateFile = "duplicate_file", Some(400), "The form has more than one `file` part.";
    InvalidDecoder = "invalid_decoder", Some(400), "`decoder` is not one of tdt, rnnt, ctc.";
    InvalidOption = "invalid_option", Some(400), "A speaker-label or redaction option has a value it does not take, or is set without the feature it belongs to (`speakers_expected` needs `speaker_labels=true`; `redact_pii_*` need `redact_pii=true`).";
    InvalidMetadata = "invalid_metadata", Some(400), "`metadata` is not a JSON object.";
    InvalidResponseFormat = "invalid_response_format", Some(400), "`response_format` of `POST /v1/audio/transcriptions` is not one of json, text, srt, vtt, verbose_json.";
    InvalidTimestampGranularity = "invalid_timestamp_granularity", Some(400), "`timestamp_granularities[]` is not `word` or `segment`.";
    InvalidParameter = "invalid_parameter", Some(400), "A parameter of the OpenAI-compatible routes is out of range (`temperature`, `stream`).";
    TranslationNotSupported = "translation_not_supported", Some(400), "`POST /v1/audio/translations`: Parakeet transcribes; it does not translate.";
    InvalidIdempotencyKey = "invalid_idempotency_key", Some(400), "`Idempotency-Key` is not 1 to 255 visible ASCII characters.";
    IdempotencyKeyReused = "idempotency_key_reused", Some(422), "The `Idempotency-Key` was used before for a request with other `speaker_labels` or `redact_pii` settings: use a new key for a new request.";
    KeyRequired = "key_required", Some(400), "Only a key, not a token, can be exchanged for a token.";
    // Who is calling.
    Unauthorized = "unauthorized", Some(401), "No key or token, or one that is not valid, expired or revoked (with `WWW-Authenticate`).";
    Forbidden = "forbidden", Some(403), "The route needs an admin key.";
    // What it names.
    NotFound = "not_found", Some(404), "No such route, or no such job, key, webhook or delivery in the caller's tenant.";
    ModelNotFound = "model_not_found", Some(404), "`model` is neither a model the live workers serve (`GET /v1/models`) nor one of its aliases.";
    MethodNotAllowed = "method_not_allowed", Some(405), "The route does not take this method (see `Allow`).";
    TranscriptNotReady = "transcript_not_ready", Some(409), "The job is queued or running: poll it until it succeeds.";
    NoTranscript = "no_transcript", Some(409), "The job failed or was canceled: it has no transcript (on `POST /v1/audio/transcriptions`, the message gives the job's error).";
    TranscriptUnreadable = "transcript_unreadable", Some(409), "The stored transcript cannot be read.";
    JobFinished = "job_finished", Some(409), "The job already succeeded or failed: only a queued or running job can be canceled.";
    OwnKey = "own_key", Some(409), "An admin cannot revoke the key it calls with.";
    BatchFinished = "batch_finished", Some(409), "Every request of the batch had already ended: there is nothing to cancel.";
    TooManyWebhooks = "too_many_webhooks", Some(409), "The tenant already has the most webhook endpoints allowed (25).";
    Gone = "gone", Some(410), "The job succeeded and its data was deleted.";
    PayloadTooLarge = "payload_too_large", Some(413), "The upload is larger than the server's limit.";
    AudioUrlTooLarge = "audio_url_too_large", Some(413), "The file at `audio_url` is larger than the server's upload limit.";
    BatchTooLarge = "batch_too_large", Some(413), "The batch has more requests or files than `WARBLE_BATCH_MAX_REQUESTS`, or its JSON Lines more bytes than `WARBLE_BATCH_MAX_BYTES`.";
    UnsupportedMediaType = "unsupported_media_type", Some(415), "Not a format warble takes, or the name, declared type and content disagree.";
    InvalidAudio = "invalid_audio", Some(422), "Audio warble takes but cannot use: empty, damaged, too long, or out-of-range rate or channels.";
    InvalidWebhookUrl = "invalid_webhook_url", Some(422), "The webhook URL is not http(s), or names a private address.";
    InvalidAudioUrl = "invalid_audio_url", Some(422), "`audio_url` is not an http(s) URL of a public address, or redirects to one that is not.";
    AudioUrlUnreachable = "audio_url_unreachable", Some(422), "`audio_url` could not be fetched: no such host, no connection, an answer other than 2xx, or more than 5 redirects.";
    AudioUrlTimeout = "audio_url_timeout", Some(422), "Fetching `audio_url` took longer than `WARBLE_AUDIO_URL_TIMEOUT_SECS`.";
    InvalidCallbackUrl = "invalid_callback_url", Some(422), "The job's `callback_url` is not http(s), or names a private address.";
    InvalidBatch = "invalid_batch", Some(422), "Lines of the batch are not valid requests; `lines` lists each one's line number, code and message. Nothing was made.";
    WebhookSecretMissing = "webhook_secret_missing", Some(422), "A `callback_url` needs the tenant's secret first (`POST /v1/webhooks/secret`).";
    // Limits.
    RateLimited = "rate_limited", Some(429), "Too many requests; `Retry-After` and `RateLimit-*` say when to come back.";
    QuotaConcurrentJobs = "quota_concurrent_jobs", Some(429), "The key has as many jobs queued or running as its quota allows.";
    QuotaAudioSeconds = "quota_audio_seconds", Some(429), "The key's seconds of audio for today (UTC) are used up; `Retry-After` is midnight.";
    QuotaUploadBytes = "quota_upload_bytes", Some(429), "The upload is larger than the key's quota.";
    // Ours.
    Internal = "internal", Some(500), "A fault on the server; the body's `request_id` matches the logs.";
    DatabaseUnavailable = "database_unavailable", Some(503), "The database cannot be reached; retry after `Retry-After`.";
    StorageUnavailable = "storage_unavailable", Some(503), "Object storage cannot be reached; retry after `Retry-After`.";
    TranscriptionTimeout = "transcription_timeout", Some(504), "`POST /v1/audio/transcriptions` waited `WARBLE_OPENAI_WAIT_SECS` without the job finishing; the job goes on (its id is in the message: poll `/v1/jobs/{id}`).";
    // Why a job failed (`job.error.code`).
    AudioDecodeFailed = "audio_decode_failed", None, "The job's audio could not be decoded, or holds less (or more) audio than measured at upload.";
    AudioMissing = "audio_missing", None, "The job's audio is no longer in storage.";
    Unsupported = "unsupported", None, "The model cannot do what the job asks (e.g. a decoder head it does not have).";
    TranscriptionFailed = "transcription_failed", None, "The model failed on this audio.";
    TooManyAttempts = "too_many_attempts", None, "The job was started `WARBLE_MAX_ATTEMPTS` times without finishing (workers crashed or could not reach storage).";
    // Added later; the table keeps its order.
    JobNotRetryable = "job_not_retryable", Some(409), "Only a failed or canceled job whose audio was not deleted can be retried.";
}

// A failed job's code is stored as its text, and a text not in the table fails the read.
crate::db::stored_as_text!(ErrorCode, "error code");

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl utoipa::PartialSchema for ErrorCode {
    /// A string enum whose description is the table, so clients and the Swagger page see every
    /// code with its status and meaning.
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let table: String = Self::ALL
            .iter()
            .map(|code| {
                let status = code
                    .status()
                    .map_or("job".to_string(), |status| status.to_string());
                format!("- `{}` ({status}): {}\n", code.as_str(), code.description())
            })
            .collect();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Self::ALL.iter().map(|code| code.as_str())))
            .description(Some(format!(
                "A stable error code. With its HTTP status (or `job`: a failed job's \
                 `error.code`):\n\n{table}"
            )))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_serialise_as_listed() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
            if let Some(status) = code.status() {
                assert!((400..600).contains(&status), "{code}");
            }
        }
    }

    /// The README's table of codes lists every code with its status, so the documentation
    /// cannot fall behind the table.
    #[test]
    fn the_readme_lists_every_code() {
        let readme = include_str!("../../README.md");
        for code in ErrorCode::ALL {
            let status = code
                .status()
                .map_or("job".to_string(), |status| status.to_string());
            let row = format!("| `{}` | {status} |", code.as_str());
            assert!(readme.contains(&row), "README.md lacks the row `{row}`");
        }
    }
}
