//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong loading a model or transcribing with it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model could not be found or read.
    #[error("cannot read model {path}: {message}")]
    ModelFile {
        /// The file or directory we tried.
        path: PathBuf,
        /// What was wrong with it.
        message: String,
    },
    /// The model file's SHA-256 is not the one the caller pinned.
    #[error("model file {path} has SHA-256 {actual}, expected {expected}; refusing to load it")]
    ChecksumMismatch {
        /// The model file.
        path: PathBuf,
        /// The pinned digest.
        expected: String,
        /// The digest of the file on disk.
        actual: String,
    },
    /// Fetching from the Hugging Face Hub failed: what was tried, why, and what to do.
    #[error(transparent)]
    Hub(Box<crate::hub::HubError>),
    /// The configuration is malformed.
    #[error("invalid model config: {0}")]
    Config(String),
    /// The model uses a feature this engine does not implement.
    #[error("unsupported model: {0}")]
    Unsupported(String),
    /// The device string is not one we know, or the device cannot be opened.
    #[error("device {spec:?}: {message}")]
    Device {
        /// What the caller asked for.
        spec: String,
        /// Why it did not work.
        message: String,
    },
    /// The encoder precision is not one we know, or not one the device runs.
    #[error("dtype {spec:?}: {message}")]
    Dtype {
        /// What the caller asked for.
        spec: String,
        /// Why it cannot be used.
        message: String,
    },
    /// The caller asked for a decoder this model does not have.
    #[error("this model has no {requested} decoder (available: {available})")]
    NoSuchDecoder {
        /// The decoder asked for.
        requested: crate::DecoderKind,
        /// The decoders the model has.
        available: String,
    },
    /// The caller canceled the transcription (see [`crate::service::ModelService::transcribe`]).
    #[error("the transcription was canceled")]
    Canceled,
    /// The model service stopped before the transcription was done.
    #[error("the model service has stopped")]
    ServiceStopped,
    /// Audio could not be decoded.
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    /// The mel frontend rejected its configuration.
    #[error(transparent)]
    Mel(#[from] crate::mel::MelError),
    /// A tensor operation failed (shape mismatch, missing weight, device error).
    #[error(transparent)]
    Tensor(#[from] candle_core::Error),
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
