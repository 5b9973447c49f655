//! The multipart form of `POST /v1/jobs`, read field by field as it arrives: the file part
//! streams into storage (and a local spool) through [`Incoming`], the small fields are
//! checked as they come.

use crate::destination;
use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use warble_jobs::features::{self, Features};
use warble_jobs::{filename, webhook};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;
use crate::upload::{Incoming, UploadLimit};

/// Largest `metadata` object, bytes of JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Decoders a job may ask for.
const DECODERS: [&str; 3] = ["tdt", "rnnt", "ctc"];

/// What reading a form needs to know: whose it is, how much it may carry, and where its file
/// goes.
pub struct Intake<'a> {
    /// The server.
    pub state: &'a AppState,
    /// The submitting key's tenant (its callback secret is checked).
    pub tenant: &'a str,
    /// How large the file may be.
    pub limit: UploadLimit,
    /// The storage key of the file.
    pub audio_key: &'a str,
}

/// The fields of a submission form besides its file: each route's own.
pub trait Fields: Default {
    /// The names taken, for the error on an unknown one (`file` is always taken).
    const NAMES: &'static str;

    /// Takes the field `name`; `Ok(false)` if the route has no such field.
    async fn take(
        &mut self,
        intake: &Intake<'_>,
        name: &str,
        field: &mut Field<'_>,
    ) -> Result<bool, ApiError>;

    /// What the job is to do besides transcribing.
    fn job_options(&self) -> JobOptions;
}

/// A submission as read: the file, on its way into storage, and the other fields, checked.
pub struct Submission<F> {
    /// The `file` part, received and not yet checked or committed (`None`: the form had none).
    pub file: Option<Incoming>,
    /// The file part's name, cleaned for display.
    pub filename: Option<String>,
    /// The file part's declared type, as the client sent it.
    pub content_type: Option<String>,
    /// The route's other fields.
    pub fields: F,
}

impl<F: Fields> Submission<F> {
    /// Reads the whole form. On a refusal the part of the file already stored is removed.
    pub async fn read(intake: &Intake<'_>, multipart: &mut Multipart) -> Result<Self, ApiError> {
        let mut form = Self {
            file: None,
            filename: None,
            content_type: None,
            fields: F::default(),
        };
        let read = async {
            while let Some(mut field) = multipart.next_field().await.map_err(bad_form)? {
                form.take(intake, &mut field).await?;
            }
            check_features(&form.fields.job_options().features)
        }
        .await;
        match read {
            Ok(()) => Ok(form),
            Err(err) => {
                if let Some(file) = form.file.take() {
                    file.abort().await;
                }
                Err(err)
            }
        }
    }

    /// Takes one field: the file here, the others by the route's [`Fields`].
    async fn take(&mut self, intake: &Intake<'_>, field: &mut Field<'_>) -> Result<(), ApiError> {
        let name = field.name().unwrap_or_default().to_string();
        if name != "file" {
            return match self.fields.take(intake, &name, field).await? {
                true => Ok(()),
                false => Err(ApiError::new(
                    ErrorCode::UnknownField,
                    format!("unknown form field {name:?}; expected file, {}", F::NAMES),
                )),
            };
        }
        if self.file.is_some() {
            return Err(ApiError::new(
                ErrorCode::DuplicateFile,
                "send one `file` part",
            ));
        }
        let part = FilePart::receive(intake, field).await?;
        self.file = Some(part.file);
        self.filename = part.filename;
        self.content_type = part.content_type;
        Ok(())
    }
}

/// A file part of a form, streamed into storage, not yet checked.
pub struct FilePart {
    /// The file.
    pub file: Incoming,
    /// The part's name, cleaned for display.
    pub filename: Option<String>,
    /// The part's declared type, as the client sent it.
    pub content_type: Option<String>,
}

impl FilePart {
    /// Streams the part into storage under the intake's key, within its limit; on a refusal
    /// what was stored is removed.
    pub async fn receive(intake: &Intake<'_>, field: &mut Field<'_>) -> Result<Self, ApiError> {
        let filename = field.file_name().and_then(filename::sanitize);
        let content_type = field.content_type().map(str::to_string);
        let extension = filename.as_deref().and_then(filename::extension);
        let mut file = Incoming::start(
            intake.state,
            intake.audio_key,
            extension.as_deref(),
            content_type.as_deref(),
        )
        .await?;
        let written = async {
            while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
                file.write(&chunk, intake.limit).await?;
            }
            Ok::<_, ApiError>(())
        }
        .await;
        match written {
            Ok(()) => Ok(Self {
                file,
                filename,
                content_type,
            }),
            Err(err) => {
                file.abort().await;
                Err(err)
            }
        }
    }
}

/// The options of `POST /v1/jobs` besides its file. An empty text field is one left blank in a
/// form: not given.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct JobOptions {
    /// `decoder`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoder: Option<String>,
    /// `callback_url`, checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    /// `metadata`, a JSON object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<serde_json::Value>,
    /// Speaker labels and redaction.
    #[serde(flatten)]
    pub features: Features,
}

/// Refuses settings of a feature that is not asked for (`speakers_expected` without
/// `speaker_labels`, ...).
pub fn check_features(features: &Features) -> Result<(), ApiError> {
    features.check().map_err(invalid_option)
}

/// An option's value the route does not take.
pub fn invalid_option(message: String) -> ApiError {
    ApiError::new(ErrorCode::InvalidOption, message)
}

impl JobOptions {
    /// Checks and takes `decoder`.
    pub fn set_decoder(&mut self, value: String) -> Result<(), ApiError> {
        if !DECODERS.contains(&value.as_str()) {
            return Err(ApiError::new(
                ErrorCode::InvalidDecoder,
                format!("decoder must be one of {}", DECODERS.join(", ")),
            ));
        }
        self.decoder = Some(value);
        Ok(())
    }

    /// Checks and takes `callback_url`: a public http(s) URL, and the tenant's signing secret
    /// must exist.
    pub async fn set_callback_url(
        &mut self,
        intake: &Intake<'_>,
        value: &str,
    ) -> Result<(), ApiError> {
        let url = destination::check_url(value, intake.state.webhook_allow_private)
            .map_err(|err| ApiError::new(ErrorCode::InvalidCallbackUrl, err.to_string()))?;
        if !webhook::has_tenant_secret(&intake.state.db, intake.tenant).await? {
            return Err(ApiError::new(
                ErrorCode::WebhookSecretMissing,
                "callbacks are signed with your tenant's secret: make it first with \
                 POST /v1/webhooks/secret",
            ));
        }
        self.callback_url = Some(url.into());
        Ok(())
    }

    /// Checks and takes `metadata`: a JSON object of at most [`MAX_METADATA_BYTES`].
    pub fn set_metadata(&mut self, value: serde_json::Value) -> Result<(), ApiError> {
        if !value.is_object() {
            return Err(ApiError::new(
                ErrorCode::InvalidMetadata,
                "metadata must be a JSON object",
            ));
        }
        if value.to_string().len() > MAX_METADATA_BYTES {
            return Err(ApiError::new(
                ErrorCode::FieldTooLarge,
                format!("metadata is longer than {MAX_METADATA_BYTES} bytes"),
            ));
        }
        self.metadata = Some(value);
        Ok(())
    }

    /// Sets the feature field `name` from its text; `Ok(false)` if `name` is no feature.
    pub fn set_feature(&mut self, name: &str, value: &str) -> Result<bool, ApiError> {
        self.features.set(name, value).map_err(invalid_option)
    }
}

impl Fields for JobOptions {
    const NAMES: &'static str = "decoder, metadata, callback_url, speaker_labels, \
                                 speakers_expected, redact_pii, redact_pii_policies, \
                                 redact_pii_sub";

    async fn take(
        &mut self,
        intake: &Intake<'_>,
        name: &str,
        field: &mut Field<'_>,
    ) -> Result<bool, ApiError> {
        let limit = match name {
            "decoder" => 64,
            "callback_url" => destination::MAX_URL_LEN + 1,
            "metadata" => MAX_METADATA_BYTES,
            _ if features::NAMES.split(", ").any(|f| f == name) => 512,
            _ => return Ok(false),
        };
        let value = small_text(field, limit).await?;
        if value.is_empty() {
            return Ok(true);
        }
        match name {
            "decoder" => self.set_decoder(value)?,
            "callback_url" => self.set_callback_url(intake, &value).await?,
            "metadata" => match serde_json::from_str::<serde_json::Value>(&value) {
                Ok(object) => self.set_metadata(object)?,
                Err(_) => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidMetadata,
                        "metadata must be a JSON object",
                    ));
                }
            },
            _ => {
                self.set_feature(name, &value)?;
            }
        }
        Ok(true)
    }

    fn job_options(&self) -> JobOptions {
        JobOptions {
            decoder: self.decoder.clone(),
            callback_url: self.callback_url.clone(),
            metadata: self.metadata.clone(),
            features: self.features.clone(),
        }
    }
}

/// A form that could not be parsed, or a body over axum's limit.
pub(crate) fn bad_form(err: MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            ErrorCode::PayloadTooLarge,
            "the request body is larger than the limit",
        );
    }
    ApiError::new(ErrorCode::InvalidMultipart, err.body_text())
}

/// A text field of at most `limit` bytes.
pub async fn small_text(field: &mut Field<'_>, limit: usize) -> Result<String, ApiError> {
    let name = field.name().unwrap_or_default().to_string();
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(bad_form)? {
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::new(
                ErrorCode::FieldTooLarge,
                format!("{name} is longer than {limit} bytes"),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| ApiError::new(ErrorCode::InvalidField, format!("{name} is not UTF-8")))
}
