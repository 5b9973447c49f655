//! `POST /v1/jobs` with a JSON body: the audio is fetched from `audio_url`, as AssemblyAI and
//! Deepgram take it. The fetch goes through the same SSRF protection as webhooks
//! ([`crate::destination`]: the URL checked, every connection's addresses checked, redirects
//! followed by hand, at most [`MAX_REDIRECTS`], each target checked again), within the upload
//! limit and `WARBLE_AUDIO_URL_TIMEOUT_SECS` per request, and streams into storage through the
//! same checks and probe as an upload. A refusal leaves nothing stored.

use axum::http::header;
use futures::StreamExt;
use serde::Deserialize;
use url::Url;
use utoipa::ToSchema;
use warble_audio::sniff;
use warble_jobs::filename;

use super::form::{Intake, JobOptions, check_features, invalid_option};
use crate::destination;
use crate::error::{ApiError, ErrorCode};
use crate::upload::{Incoming, UploadLimit};
use serde_json::Value;
use warble_jobs::features::Features;
use warble_jobs::redact::{Policy, Substitution};

/// Redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 5;
/// Largest JSON body of a URL submission, bytes: the URLs and the metadata object with room.
pub const MAX_BODY_BYTES: usize = 32 * 1024;

/// A job whose audio is at a URL (the JSON form of `POST /v1/jobs`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UrlSubmission {
    /// Where to fetch the audio: http(s), a public address (redirects are followed, at most 5,
    /// each checked). The same formats and limits as an upload.
    #[schema(max_length = 2048, example = "https://example.com/meeting.mp3")]
    pub audio_url: String,
    /// `tdt`, `rnnt` or `ctc`; default: the model's main decoder.
    pub decoder: Option<String>,
    /// A JSON object (at most 16 KB) returned with the job.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Where to POST the job's final event (see the multipart form).
    #[schema(max_length = 2048)]
    pub callback_url: Option<String>,
    /// Label each word with its speaker (see the multipart form).
    #[schema(value_type = Option<bool>)]
    pub speaker_labels: Option<Value>,
    /// With `speaker_labels`: the most speakers to label, 1 to 4.
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 4)]
    pub speakers_expected: Option<Value>,
    /// Replace personal information in the transcript (docs/redaction.md).
    #[schema(value_type = Option<bool>)]
    pub redact_pii: Option<Value>,
    /// With `redact_pii`: which kinds; absent or empty for all.
    #[schema(value_type = Option<Vec<Policy>>)]
    pub redact_pii_policies: Option<Value>,
    /// With `redact_pii`: `entity_name` (default) or `hash`.
    #[schema(value_type = Option<Substitution>)]
    pub redact_pii_sub: Option<Value>,
}

impl UrlSubmission {
    /// The job options, checked as the multipart form's are.
    pub async fn options(&mut self, intake: &Intake<'_>) -> Result<JobOptions, ApiError> {
        let mut options = JobOptions::default();
        if let Some(decoder) = self.decoder.take().filter(|d| !d.is_empty()) {
            options.set_decoder(decoder)?;
        }
        if let Some(url) = self.callback_url.take().filter(|u| !u.is_empty()) {
            options.set_callback_url(intake, &url).await?;
        }
        if let Some(metadata) = self.metadata.take() {
            options.set_metadata(metadata)?;
        }
        options.features = self.features()?;
        Ok(options)
    }

    /// The speaker-label and redaction settings, checked. Read as JSON values and set through
    /// the form's parser, so that a bad value gets the form's `invalid_option` and wording,
    /// not a deserialiser's.
    pub fn features(&mut self) -> Result<Features, ApiError> {
        let mut features = Features::default();
        for (name, value) in [
            ("speaker_labels", self.speaker_labels.take()),
            ("speakers_expected", self.speakers_expected.take()),
            ("redact_pii", self.redact_pii.take()),
            ("redact_pii_policies", self.redact_pii_policies.take()),
            ("redact_pii_sub", self.redact_pii_sub.take()),
        ] {
            if let Some(value) = value.filter(|v| !v.is_null()) {
                let text = feature_text(&value).ok_or_else(|| {
                    invalid_option(format!(
                        "{name} must be {}",
                        match name {
                            "redact_pii_policies" => "a list of policy names",
                            "speakers_expected" => "a whole number from 1 to 4",
                            "redact_pii_sub" => "entity_name or hash",
                            _ => "true or false",
                        }
                    ))
                })?;
                features.set(name, &text).map_err(invalid_option)?;
            }
        }
        check_features(&features)?;
        Ok(features)
    }
}

/// A JSON option value in the text form the multipart form takes: strings as they are,
/// booleans and numbers written out, a list of strings joined by commas; `None` for anything
/// else.
fn feature_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(value.to_string()),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .map(|names| names.join(",")),
        _ => None,
    }
}

/// What was fetched: the file on its way into storage, and what the server said it is.
pub struct Fetched {
    /// The file, received and not yet checked or committed.
    pub file: Incoming,
    /// The last path segment of the final URL, cleaned for display.
    pub filename: Option<String>,
    /// The answer's `Content-Type`.
    pub content_type: Option<String>,
}

/// Fetches `raw` into storage under the intake's key.
pub async fn fetch(intake: &Intake<'_>, raw: &str) -> Result<Fetched, ApiError> {
    let state = intake.state;
    let settings = &state.audio_url;
    let mut url = destination::check_url(raw, settings.allow_private)
        .map_err(|e| ApiError::new(ErrorCode::InvalidAudioUrl, format!("audio_url: {e}")))?;
    let client = destination::client_as(
        settings.allow_private,
        settings.timeout,
        concat!("warble/", env!("CARGO_PKG_VERSION")),
    );
    for _ in 0..=MAX_REDIRECTS {
        let response = client
            .get(url.clone())
            .send()
            .await
            .map_err(|e| failed(settings.timeout, &e))?;
        let status = response.status();
        if status.is_redirection() {
            url = redirect(&url, response.headers(), settings.allow_private)?;
            continue;
        }
        if !status.is_success() {
            return Err(ApiError::new(
                ErrorCode::AudioUrlUnreachable,
                format!("audio_url answered HTTP {}", status.as_u16()),
            ));
        }
        if response
            .content_length()
            .is_some_and(|length| length > intake.limit.bytes)
        {
            return Err(too_large(intake.limit));
        }
        let filename = url
            .path_segments()
            .and_then(|mut segments| segments.next_back())
            .and_then(filename::sanitize);
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        // A URL's path is often no file name (`/download?id=7`, `/get.php`): without an
        // audio extension there, the type the server sends names the format.
        let extension = filename
            .as_deref()
            .and_then(filename::extension)
            .filter(|e| sniff::extensions().any(|a| a.eq_ignore_ascii_case(e)))
            .or_else(|| {
                content_type
                    .as_deref()
                    .and_then(sniff::extension_for_mime)
                    .map(str::to_string)
            });
        let mut file = Incoming::start(
            state,
            intake.audio_key,
            extension.as_deref(),
            content_type.as_deref(),
        )
        .await?;
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let written = match chunk {
                Ok(chunk) => file.write(&chunk, intake.limit).await.map_err(|e| match e {
                    ApiError::Refused {
                        code: ErrorCode::PayloadTooLarge,
                        ..
                    } => too_large(intake.limit),
                    other => other,
                }),
                Err(e) => Err(failed(settings.timeout, &e)),
            };
            if let Err(err) = written {
                file.abort().await;
                return Err(err);
            }
        }
        return Ok(Fetched {
            file,
            filename,
            content_type,
        });
    }
    Err(ApiError::new(
        ErrorCode::AudioUrlUnreachable,
        format!("audio_url redirects more than {MAX_REDIRECTS} times"),
    ))
}

/// The next URL of a redirect, checked as the first one was: a redirect may not lead where the
/// URL itself could not.
fn redirect(
    from: &Url,
    headers: &axum::http::HeaderMap,
    allow_private: bool,
) -> Result<Url, ApiError> {
    let location = headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::AudioUrlUnreachable,
                "audio_url answered a redirect without a Location",
            )
        })?;
    let next = from.join(location).map_err(|e| {
        ApiError::new(
            ErrorCode::AudioUrlUnreachable,
            format!("audio_url redirects to an invalid URL: {e}"),
        )
    })?;
    destination::check_url(next.as_str(), allow_private).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidAudioUrl,
            format!("audio_url redirects to a URL that is refused: {e}"),
        )
    })
}

/// A failed request: the time limit, or why it could not be made (refused destinations are
/// named by the guarded resolver's error).
fn failed(timeout: std::time::Duration, err: &reqwest::Error) -> ApiError {
    if err.is_timeout() {
        return ApiError::new(
            ErrorCode::AudioUrlTimeout,
            format!(
                "fetching audio_url took longer than {} s",
                timeout.as_secs_f64()
            ),
        );
    }
    // The innermost cause says it in a few words (no such host, refused, non-public address).
    let mut cause: &dyn std::error::Error = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let refused = cause
        .downcast_ref::<destination::DestinationError>()
        .is_some();
    ApiError::new(
        if refused {
            ErrorCode::InvalidAudioUrl
        } else {
            ErrorCode::AudioUrlUnreachable
        },
        format!("audio_url could not be fetched: {cause}"),
    )
}

fn too_large(limit: UploadLimit) -> ApiError {
    ApiError::new(
        ErrorCode::AudioUrlTooLarge,
        format!(
            "the file at audio_url is larger than the limit of {} bytes",
            limit.bytes
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_are_checked_like_the_url() {
        let from = Url::parse("https://example.com/a/b.wav").unwrap();
        let to = |location: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(header::LOCATION, location.parse().unwrap());
            redirect(&from, &headers, false)
        };
        assert_eq!(
            to("../c.mp3").unwrap().as_str(),
            "https://example.com/c.mp3"
        );
        for private in [
            "http://127.0.0.1/x.wav",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:8080/x.wav",
            "http://[::1]/x.wav",
            "file:///etc/passwd",
        ] {
            match to(private) {
                Err(ApiError::Refused { code, .. }) => {
                    assert_eq!(code, ErrorCode::InvalidAudioUrl, "{private}")
                }
                other => panic!("{private}: {other:?}"),
            }
        }
    }
}
