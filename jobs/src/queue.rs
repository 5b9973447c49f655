//! The queue between the API and the workers: apalis on the same database as the job records.
//!
//! The queue carries only a job id; everything else about the job is in `warble_jobs`. Each
//! queue task is keyed by its job id (apalis's idempotency key), so handing a job to the queue
//! twice is harmless: that is what lets the API re-send any job it recorded but could not
//! enqueue.
//!
//! A job retried after it failed or was canceled needs a task again, but apalis ignores a
//! task whose key it has seen, whatever became of that task. So a job's tasks come in
//! generations: the first is keyed by the job id (task id: the job's ULID), the `n`th by
//! `{job id}/{n}` (task id: a ULID derived from both), and [`Queue::push`] adds the next
//! generation only when the job's newest task has already run.

use apalis::prelude::{FetchById, Status, TaskBuilder, TaskId, TaskSink};
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
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

    /// Hands job `id` to the workers, unless a task of it is still waiting to run (it will
    /// take the job, so another would only run it twice): pushes the first generation of a
    /// new job, and the next one of a job retried after its task ran. Pushing the same job
    /// again while its task waits changes nothing.
    pub async fn push(&self, id: &str) -> Result<(), QueueError> {
        let job = Ulid::from_string(id).map_err(|e| QueueError(e.to_string()))?;
        let mut generation = 0;
        let mut newest_waits = false;
        while let Some(waits) = self.waiting(task_id(job, generation)).await? {
            newest_waits = waits;
            generation += 1;
        }
        if newest_waits {
            return Ok(());
        }
        let key = match generation {
            0 => id.to_string(),
            n => format!("{id}/{n}"),
        };
        let task = TaskBuilder::new(TranscribeTask {
            job_id: id.to_string(),
        })
        .task_id(TaskId::from_ulid(task_id(job, generation)))
        .idempotency_key(key)
        // Attempts are counted and limited in `warble_jobs`, not by apalis.
        .max_attempts(1000)
        .build();
        let result = match self.clone() {
            Self::Sqlite(mut s) => s.push_task(task).await.map_err(|e| e.to_string()),
            Self::Postgres(mut s) => s.push_task(task).await.map_err(|e| e.to_string()),
        };
        result.map_err(QueueError)
    }

    /// Whether the task `id` is still to run (waiting, fetched, or failed with deliveries
    /// left); `None` if there is no such task.
    async fn waiting(&self, id: Ulid) -> Result<Option<bool>, QueueError> {
        let id = TaskId::from_ulid(id);
        let found = match self.clone() {
            Self::Sqlite(mut s) => s.fetch_by_id(&id).await.map_err(|e| e.to_string()),
            Self::Postgres(mut s) => s.fetch_by_id(&id).await.map_err(|e| e.to_string()),
        }
        .map_err(QueueError)?;
        Ok(found.map(|task| {
            let ctx = task.ctx();
            match ctx.status() {
                Status::Pending | Status::Queued => true,
                Status::Failed => ctx.attempt() < ctx.max_attempts().unwrap_or(usize::MAX),
                // Running (its handler may be past its start), done, killed, or a state
                // apalis adds later: a new task is pushed, at worst running the job twice.
                _ => false,
            }
        }))
    }
}

/// The task id of the `generation`th task of `job`: the job's own ULID for the first, then
/// ULIDs of the job's time and a random part hashed from the job and the generation (80 bits:
/// never another job's id in practice).
fn task_id(job: Ulid, generation: u32) -> Ulid {
    if generation == 0 {
        return job;
    }
    let digest = Sha256::digest(format!("{job}/{generation}"));
    let bits = u128::from_be_bytes(digest[..16].try_into().expect("16 bytes"));
    Ulid::from_parts(job.timestamp_ms(), bits >> 48)
}
