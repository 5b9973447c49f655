//! Settings shared by the API and the workers, from `WARBLE_*` environment variables or the
//! matching command-line flags (flags win). Every default works on a fresh machine.

use std::time::Duration;

/// Where job records and the queue live.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// `sqlite://PATH` (created if missing) or `postgres://USER@HOST/DB`.
    #[arg(
        long,
        env = "WARBLE_DATABASE_URL",
        default_value = "sqlite://./data/warble.db"
    )]
    pub database_url: String,
    /// Connections in the pool.
    #[arg(long, env = "WARBLE_DATABASE_MAX_CONNECTIONS", default_value_t = 8)]
    pub database_max_connections: u32,
}

/// Where uploaded audio is kept.
#[derive(Debug, Clone, clap::Args)]
pub struct StorageArgs {
    /// `file://DIR` (created if missing) or `s3://BUCKET[/PREFIX]`, the latter configured by the
    /// standard `AWS_*` variables (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, ...).
    #[arg(
        long,
        env = "WARBLE_STORAGE_URL",
        default_value = "file://./data/blobs"
    )]
    pub storage_url: String,
}

/// How jobs move through the queue.
#[derive(Debug, Clone, clap::Args)]
pub struct QueueArgs {
    /// Seconds between a worker's heartbeats.
    #[arg(long, env = "WARBLE_HEARTBEAT_SECS", default_value_t = 5)]
    pub heartbeat_secs: u64,
    /// Heartbeats a worker may miss before its job is handed to another worker. A job whose
    /// worker died is taken again after about `heartbeat_secs * missed_heartbeats` seconds.
    #[arg(long, env = "WARBLE_MISSED_HEARTBEATS", default_value_t = 3)]
    pub missed_heartbeats: usize,
    /// Times a job is started before it is failed for good (a worker crash or a transient
    /// error each use one).
    #[arg(long, env = "WARBLE_MAX_ATTEMPTS", default_value_t = 3)]
    pub max_attempts: u32,
}

impl QueueArgs {
    /// The interval between heartbeats.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_secs.max(1))
    }

    /// How long a silent worker keeps its job.
    pub fn orphan_timeout(&self) -> Duration {
        self.heartbeat() * self.missed_heartbeats.max(1) as u32
    }
}

/// Limits on uploaded audio: checked by the API at upload, enforced again by the workers
/// while decoding (counting decoded samples, whatever the headers said).
#[derive(Debug, Clone, clap::Args)]
pub struct AudioArgs {
    /// Longest audio accepted, seconds (default 4 hours).
    #[arg(long, env = "WARBLE_MAX_AUDIO_SECONDS", default_value_t = 14_400)]
    pub max_audio_seconds: u64,
    /// Wall-clock limit of the API's look at an upload (probing its container), seconds.
    #[arg(long, env = "WARBLE_PROBE_TIMEOUT_SECS", default_value_t = 20)]
    pub probe_timeout_secs: u64,
    /// Wall-clock limit of a worker's decoding of one file, seconds.
    #[arg(long, env = "WARBLE_DECODE_TIMEOUT_SECS", default_value_t = 600)]
    pub decode_timeout_secs: u64,
    /// Memory limit of the child process that probes or decodes one file, MiB.
    #[arg(long, env = "WARBLE_DECODE_MEMORY_MB", default_value_t = 1024)]
    pub decode_memory_mb: u64,
}

impl AudioArgs {
    /// The sandbox that probes uploads (API) or decodes them (workers), with `timeout_secs`.
    pub fn sandbox(&self, timeout_secs: u64) -> std::io::Result<warble_audio::Sandbox> {
        warble_audio::Sandbox::current_exe(
            self.decode_memory_mb << 20,
            Duration::from_secs(timeout_secs.max(1)),
        )
    }
}

/// Everything a process of the platform connects to: the settings the API and the workers
/// both take.
#[derive(Debug, Clone, clap::Args)]
pub struct PlatformArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub storage: StorageArgs,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub queue: QueueArgs,
}

/// Connecting at start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The database.
    #[error("database: {0}")]
    Database(#[from] crate::db::DbError),
    /// Object storage.
    #[error("object storage: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

impl PlatformArgs {
    /// Connects to the database (applying migrations) and opens object storage.
    pub async fn connect(
        &self,
    ) -> Result<(crate::db::Database, crate::storage::Storage), ConnectError> {
        let db = crate::db::Database::connect(&self.database).await?;
        db.migrate().await?;
        let storage = crate::storage::Storage::open(&self.storage)?;
        Ok((db, storage))
    }
}
