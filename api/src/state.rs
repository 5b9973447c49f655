//! What every handler shares.

use warble_audio::Sandbox;
use warble_jobs::db::Database;
use warble_jobs::queue::Queue;
use warble_jobs::storage::Storage;

/// Fetching a job's audio from its `audio_url`.
#[derive(Debug, Clone, Copy)]
pub struct AudioUrlSettings {
    /// Loopback, private and link-local addresses may be fetched
    /// (`WARBLE_AUDIO_URL_ALLOW_PRIVATE`).
    pub allow_private: bool,
    /// Longest a request may take, body included (`WARBLE_AUDIO_URL_TIMEOUT_SECS`).
    pub timeout: std::time::Duration,
}

/// Shared, cheap-to-clone handles.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Job records.
    pub db: Database,
    /// Uploaded audio.
    pub storage: Storage,
    /// Where new jobs go.
    pub queue: Queue,
    /// Largest accepted upload, bytes.
    pub max_upload_bytes: u64,
    /// Longest accepted audio, seconds.
    pub max_audio_seconds: f64,
    /// Quotas new user keys start with.
    pub default_quotas: warble_jobs::quota::Quotas,
    /// Webhooks may go to non-public addresses (`WARBLE_WEBHOOK_ALLOW_PRIVATE`).
    pub webhook_allow_private: bool,
    /// How long a rotated-out webhook secret keeps signing.
    pub webhook_rotation_grace: chrono::TimeDelta,
    /// Request rate limits.
    pub rate_limits: crate::rate_limit::RateLimits,
    /// Issues and verifies tokens.
    pub tokens: crate::token::Tokens,
    /// Browser origins allowed by CORS (empty: localhost only).
    pub cors_origins: Vec<String>,
    /// Probes uploads in a limited child process.
    pub sandbox: Sandbox,
    /// A worker silent for longer is considered gone (the queue's orphan timeout).
    pub worker_timeout: chrono::TimeDelta,
    /// How long `POST /v1/audio/transcriptions` waits for its job before answering
    /// `transcription_timeout` (`WARBLE_OPENAI_WAIT_SECS`).
    pub openai_wait: std::time::Duration,
    /// How jobs' audio is fetched from URLs.
    pub audio_url: AudioUrlSettings,
    /// The server's retention periods (`WARBLE_RETAIN_*`); tenants may have their own.
    pub retention: warble_jobs::retention::Periods,
    /// How often the sweeper runs: jobs not yet queued, batches to resume, retention
    /// (`WARBLE_SWEEP_INTERVAL_MS`).
    pub sweep_interval: std::time::Duration,
    /// Limits on one batch.
    pub batch_limits: crate::routes::batches::BatchLimits,
    /// Prometheus metrics, served on `WARBLE_METRICS_LISTEN`.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}
