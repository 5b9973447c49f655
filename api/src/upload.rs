//! An upload on its way in. The bytes stream to object storage and to a local spool file at
//! once; when the last one has arrived the spool is checked — its first bytes against the
//! extension, its container probed in the sandbox, its duration, rate and channels against the
//! limits — and only then is the object committed. A refused upload leaves nothing behind.

use tokio::io::AsyncWriteExt;
use warble_audio::sniff::{self, Accepted};
use warble_audio::{AudioError, Probe};
use warble_jobs::quota::QuotaExceeded;
use warble_jobs::storage::{self, Stored, Upload};

use crate::error::{ApiError, ErrorCode};
use crate::state::AppState;

/// How many bytes one upload may carry: the server's limit, or the key's quota if smaller.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimit {
    /// The limit.
    pub bytes: u64,
    by_quota: bool,
}

impl UploadLimit {
    /// The smaller of the server's limit and the key's quota.
    pub fn new(server: u64, quota: Option<u64>) -> Self {
        match quota {
            Some(quota) if quota < server => Self {
                bytes: quota,
                by_quota: true,
            },
            _ => Self {
                bytes: server,
                by_quota: false,
            },
        }
    }

    /// The answer to an upload over it: 413 for the server's limit, 429 for a key's quota.
    pub fn refusal(self) -> ApiError {
        if self.by_quota {
            ApiError::Quota(QuotaExceeded::UploadBytes { limit: self.bytes })
        } else {
            ApiError::too_large(self.bytes)
        }
    }
}

/// A file part being received.
pub struct Incoming {
    accepted: Accepted,
    upload: Upload,
    spool: tempfile::NamedTempFile,
    spool_writer: tokio::fs::File,
}

impl Incoming {
    /// Checks what the client declared (extension and MIME type) before reading a byte, then
    /// opens the object and the spool.
    pub async fn start(
        state: &AppState,
        key: &str,
        extension: Option<&str>,
        content_type: Option<&str>,
    ) -> Result<Self, ApiError> {
        let accepted = sniff::check_declared(extension, content_type)
            .map_err(|refused| ApiError::new(ErrorCode::UnsupportedMediaType, refused.0))?;
        let (spool, spool_writer) = storage::local_copy().map_err(internal)?;
        let upload = state.storage.upload(key).await?;
        Ok(Self {
            accepted,
            upload,
            spool,
            spool_writer,
        })
    }

    /// Appends a chunk, refusing to go past the upload limit.
    pub async fn write(&mut self, chunk: &[u8], limit: UploadLimit) -> Result<(), ApiError> {
        if self.upload.bytes() + chunk.len() as u64 > limit.bytes {
            return Err(limit.refusal());
        }
        self.spool_writer.write_all(chunk).await.map_err(internal)?;
        self.upload.write(chunk).await?;
        Ok(())
    }

    /// Drops the upload; nothing is left in storage.
    pub async fn abort(self) {
        if let Err(err) = self.upload.abort().await {
            tracing::warn!(error = %err, "aborting a refused upload");
        }
    }

    /// Checks the complete file and, if it is audio we can take, commits the object.
    pub async fn finish(mut self, state: &AppState) -> Result<(Stored, Probe), ApiError> {
        match self.check(state).await {
            Ok(probe) => Ok((self.upload.finish().await?, probe)),
            Err(err) => {
                self.abort().await;
                Err(err)
            }
        }
    }

    async fn check(&mut self, state: &AppState) -> Result<Probe, ApiError> {
        if self.upload.bytes() == 0 {
            return Err(ApiError::new(ErrorCode::InvalidAudio, "the file is empty"));
        }
        self.spool_writer.flush().await.map_err(internal)?;
        let accepted = self.accepted;
        let path = self.spool.path().to_path_buf();
        let sandbox = state.sandbox.clone();
        let probe = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(&path).map_err(internal)?;
            let sniffed = sniff::sniff(&mut file).map_err(internal)?;
            sniff::check_content(accepted, sniffed)
                .map_err(|refused| ApiError::new(ErrorCode::UnsupportedMediaType, refused.0))?;
            sandbox
                .probe(&path, Some(accepted.extension()))
                .map_err(refusal)
        })
        .await
        .map_err(internal)??;
        if probe.duration_secs > state.max_audio_seconds {
            return Err(ApiError::new(
                ErrorCode::InvalidAudio,
                format!(
                    "duration {:.0} s exceeds the limit of {:.0} s",
                    probe.duration_secs, state.max_audio_seconds
                ),
            ));
        }
        Ok(probe)
    }
}

/// What the client hears when probing fails.
fn refusal(err: AudioError) -> ApiError {
    match err {
        AudioError::UnsupportedCodec(_) => {
            ApiError::new(ErrorCode::UnsupportedMediaType, err.to_string())
        }
        AudioError::Io(_) => internal(err),
        err => ApiError::new(
            ErrorCode::InvalidAudio,
            format!("the audio cannot be read: {err}"),
        ),
    }
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(err.to_string())
}
