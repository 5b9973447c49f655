//! The queue between the API and the workers: apalis on the same database as the job records.
//!
//! The queue carries only a job id; everything else about the job is in `warble_jobs`. Each
//! queue task is keyed by its job id (apalis's idempotency key), so handing a job to the queue
//! twice is harmless: that is what lets the API re-send any job it recorded but could not
//! enqueue.

use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::config::QueueArgs;
use crate::db::Database;

/// The apalis queue name (its `job_type` column).
pub const QUEUE_NAME: &str = "warble.transcribe";

/// The payload of a queue task.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TranscribeTask {
    /// The job to run.
    pub job_id: String,
}

/// Pushing to the queue failed.
#[derive(Debug, thiserror::Error)]
#[error("queue: {0}")]
pub struct QueueError(pub String);

/// The apalis storage for transcription tasks on either database.
#[derive(Clone)]
pub enum Queue {
    /// On SQLite.
    Sqlite(SqliteStorage<TranscribeTask>),
    /// On Postgres.
    Postgres(PostgresStorage<TranscribeTask>),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Sqlite(_) => "Queue(sqlite)",
            Self::Postgres(_) => "Queue(postgres)",
        })
    }
}

impl Queue {
    /// The queue on `db`, with the heartbeat and orphan settings of `args`. One task per fetch:
    /// jobs are long, and a batch would hold jobs another worker could run.
    pub fn new(db: &Database, args: &QueueArgs) -> Self {
        match db {
            Database::Sqlite(pool) => Self::Sqlite(
                SqliteStorage::new(pool).with_config(
                    apalis_sqlite::Config::default()
                        .queue(QUEUE_NAME)
                        .batch_size(1)
                        .heartbeat_interval(args.heartbeat())
                        .missed_heartbeats(args.missed_heartbeats),
                ),
            ),
            Database::Postgres(pool) => Self::Postgres(
                PostgresStorage::new(pool).with_config(
                    apalis_postgres::Config::default()
                        .queue(QUEUE_NAME)
                        .batch_size(1)
                        .heartbeat_interval(args.heartbeat())
                        .missed_heartbeats(args.missed_heartbeats),
                ),
            ),
        }
    }

    /// Hands job `id` to the workers.
    pub async fn push(&self, id: &str) -> Result<(), QueueError> {
        let ulid = Ulid::from_string(id).map_err(|e| QueueError(e.to_string()))?;
        let task = TaskBuilder::new(TranscribeTask {
            job_id: id.to_string(),
        })
        .task_id(TaskId::from_ulid(ulid))
        .idempotency_key(id)
        // Attempts are counted and limited in `warble_jobs`, not by apalis.
        .max_attempts(1000)
        .build();
        let result = match self.clone() {
            Self::Sqlite(mut s) => s.push_task(task).await.map_err(|e| e.to_string()),
            Self::Postgres(mut s) => s.push_task(task).await.map_err(|e| e.to_string()),
        };
        result.map_err(QueueError)
    }
}
