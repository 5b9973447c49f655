//! The job model and every query on `warble_jobs`.
//!
//! A job's row is the single source of truth for what the API shows. Workers change it only
//! through the conditional updates here, which is what keeps exactly one result per job even
//! when the queue delivers a job twice (a worker that froze and came back, a crash after the
//! result was written): a result is stored only by the worker that holds the job, and only
//! while the job is `running`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;
use utoipa::ToSchema;

use crate::db::{Database, DbError};
use crate::error_code::ErrorCode;
use crate::features::Features;
use crate::quota::{self, QuotaExceeded, Quotas};
use crate::webhook::{Event, outbox};
use crate::with_pool;

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker is transcribing it.
    Running,
    /// Done; the transcript is available.
    Succeeded,
    /// Gave up; `error` says why.
    Failed,
    /// Canceled by a client before it finished; it has no transcript.
    Canceled,
}

impl JobStatus {
    /// Every status, in the order of a job's life.
    pub const ALL: [JobStatus; 5] = [
        Self::Queued,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::Canceled,
    ];

    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// Whether the job has ended: succeeded, failed or canceled.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Canceled)
    }
}

crate::db::stored_as_text!(JobStatus, "job status");

/// Why a job failed: a stable code for programs and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    /// Stable, machine-readable: one of the table's job codes (`audio_decode_failed`,
    /// `too_many_attempts`, ...).
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
}

impl JobError {
    /// An error with `code` and `message`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// ULID, sortable by creation time.
    #[schema(value_type = String, example = "01JDR7Q9V3X8M2K4T6N0P5B1CZ")]
    pub id: String,
    /// Current state.
    pub status: JobStatus,
    /// Decoder head asked for (`tdt`, `rnnt`, `ctc`); absent means the model's own.
    pub decoder: Option<String>,
    /// The client's metadata object, returned as given.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// The uploaded file's name, cleaned for display (no directories, control or invisible
    /// formatting characters, quotes, leading dots; at most 255 bytes). Never used for storage.
    pub filename: Option<String>,
    /// Size of the uploaded audio in bytes.
    pub audio_bytes: i64,
    /// Hex SHA-256 of the uploaded audio.
    pub audio_sha256: String,
    /// Length of the audio in seconds: probed at upload, then measured by the worker that
    /// decoded it.
    pub duration: Option<f64>,
    /// 0 to 1: the share of the audio encoded and decoded (long audio advances chunk by chunk).
    pub progress: f64,
    /// While the job runs: when its worker expects to finish, from its pace so far (`null`
    /// before the first chunk is done, and once the job is final).
    pub estimated_completion_at: Option<DateTime<Utc>>,
    /// While the job is queued: its place in the queue, 1 being next (the queued jobs of every
    /// tenant submitted before it, plus one). Absent once a worker has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<i64>,
    /// Times a worker started the job.
    pub attempts: i64,
    /// When the job was submitted.
    pub created_at: DateTime<Utc>,
    /// When a worker first started it.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// The tenant it belongs to (that of the key that submitted it).
    pub tenant: Option<String>,
    /// Where `job.succeeded`, `job.failed` and `job.canceled` are also sent, signed with the
    /// tenant's default webhook secret.
    pub callback_url: Option<String>,
    /// When a client deleted its audio and transcript (`DELETE /v1/jobs/{id}`); `null` while
    /// they are kept.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The batch it was submitted in (`POST /v1/batches`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// When retention deleted its audio (`WARBLE_RETAIN_AUDIO_SECS` or the tenant's period);
    /// `null` while it is kept.
    pub audio_deleted_at: Option<DateTime<Utc>>,
    /// When retention deleted its transcript; `null` while it is kept.
    pub transcript_deleted_at: Option<DateTime<Utc>>,
    /// Speaker labels and PII redaction, as asked.
    #[serde(flatten)]
    pub features: Features,
}

/// The columns every job query returns, as a literal so that queries stay `&'static str`
/// (sqlx refuses SQL built at run time).
macro_rules! columns {
    () => {
        "id, status, decoder, metadata, filename, audio_bytes, audio_sha256, duration_secs, \
         progress, attempts, created_at, started_at, finished_at, error_code, error_message, \
         audio_key, tenant, callback_url, deleted_at, estimated_completion_at, batch_id, \
         audio_deleted_at, transcript_deleted_at, features"
    };
}

#[derive(sqlx::FromRow)]
struct JobRow {
    id: String,
    status: JobStatus,
    decoder: Option<String>,
    metadata: Option<String>,
    filename: Option<String>,
    audio_bytes: i64,
    audio_sha256: String,
    duration_secs: Option<f64>,
    progress: f64,
    attempts: i64,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    error_code: Option<ErrorCode>,
    error_message: Option<String>,
    audio_key: String,
    tenant: Option<String>,
    callback_url: Option<String>,
    deleted_at: Option<DateTime<Utc>>,
    estimated_completion_at: Option<DateTime<Utc>>,
    batch_id: Option<String>,
    audio_deleted_at: Option<DateTime<Utc>>,
    transcript_deleted_at: Option<DateTime<Utc>>,
    features: Option<String>,
}

impl From<JobRow> for StoredJob {
    fn from(row: JobRow) -> Self {
        let error = row.error_code.map(|code| JobError {
            code,
            message: row.error_message.unwrap_or_default(),
        });
        Self {
            audio_key: row.audio_key,
            job: Job {
                id: row.id,
                status: row.status,
                decoder: row.decoder,
                metadata: row.metadata.and_then(|m| serde_json::from_str(&m).ok()),
                filename: row.filename,
                audio_bytes: row.audio_bytes,
                audio_sha256: row.audio_sha256,
                duration: row.duration_secs,
                progress: row.progress,
                // An estimate left from a worker that died or a job that ended means nothing.
                estimated_completion_at: row
                    .estimated_completion_at
                    .filter(|_| row.status == JobStatus::Running),
                // Read separately, for the jobs shown: see `with_queue_positions`.
                queue_position: None,
                attempts: row.attempts,
                created_at: row.created_at,
                started_at: row.started_at,
                finished_at: row.finished_at,
                error,
                tenant: row.tenant,
                callback_url: row.callback_url,
                deleted_at: row.deleted_at,
                batch_id: row.batch_id,
                audio_deleted_at: row.audio_deleted_at,
                transcript_deleted_at: row.transcript_deleted_at,
                features: Features::from_column(row.features.as_deref()),
            },
        }
    }
}

/// A job with what only the server needs to know about it.
#[derive(Debug, Clone)]
pub struct StoredJob {
    /// What the API shows.
    pub job: Job,
    /// Where its audio is.
    pub audio_key: String,
}

/// What the API records for a new upload.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Pre-generated id; the audio was stored under a key derived from it.
    pub id: Ulid,
    /// Requested decoder.
    pub decoder: Option<String>,
    /// Client metadata, already validated as a JSON object.
    pub metadata: Option<serde_json::Value>,
    /// Uploaded file name.
    pub filename: Option<String>,
    /// Uploaded content type.
    pub content_type: Option<String>,
    /// Storage key of the audio.
    pub audio_key: String,
    /// Hex SHA-256 of the audio.
    pub audio_sha256: String,
    /// Size of the audio.
    pub audio_bytes: u64,
    /// Length of the audio in seconds, as probed at upload.
    pub duration: Option<f64>,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: Option<String>,
    /// The submitting key's tenant.
    pub tenant: String,
    /// The job's own callback URL, already checked.
    pub callback_url: Option<String>,
    /// The submitting key, charged for the job.
    pub key_id: String,
    /// That key's quotas.
    pub quotas: Quotas,
    /// The batch it belongs to.
    pub batch_id: Option<String>,
    /// Speaker labels and redaction, checked.
    pub features: Features,
}

/// Outcome of [`insert`].
#[derive(Debug)]
pub enum Inserted {
    /// A new job.
    Created(StoredJob),
    /// The idempotency key was used before: this is the job it made.
    Existing(StoredJob),
    /// Nothing recorded: the job would break this quota of its key.
    OverQuota(QuotaExceeded),
}

/// The storage key for a job's audio.
pub fn audio_key(id: Ulid) -> String {
    format!("audio/{id}")
}

/// Records a new queued job and charges it to its key, or returns the one an earlier request
/// with the same idempotency key made, or refuses it over a quota. One transaction: its first
/// statement adds the job to the key's usage row, which locks the row (on SQLite, the
/// database), so a key's concurrent submissions on any replica are counted one after the
/// other and a refused or duplicate job leaves no trace.
pub async fn insert(db: &Database, new: &NewJob) -> Result<Inserted, DbError> {
    let sql = concat!(
        "INSERT INTO warble_jobs (id, status, decoder, metadata, filename, content_type, \
         audio_key, audio_sha256, audio_bytes, idempotency_key, created_at, duration_secs, \
         tenant, key_id, callback_url, batch_id, features) VALUES ($1, 'queued', $2, $3, $4, $5, \
         $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (idempotency_key) DO NOTHING RETURNING ",
        columns!(),
        ""
    );
    let metadata = new.metadata.as_ref().map(|m| m.to_string());
    let seconds = new.duration.unwrap_or(0.0);
    let (day, _) = quota::day_of(Utc::now());
    let outcome: Result<Option<JobRow>, QuotaExceeded> = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let (used_after,): (f64,) = sqlx::query_as(
            "INSERT INTO warble_usage (key_id, day, jobs, audio_seconds) VALUES ($1, $2, 1, $3) \
             ON CONFLICT (key_id, day) DO UPDATE SET jobs = warble_usage.jobs + 1, \
             audio_seconds = warble_usage.audio_seconds + excluded.audio_seconds \
             RETURNING audio_seconds",
        )
        .bind(&new.key_id)
        .bind(day.to_string())
        .bind(seconds)
        .fetch_one(&mut *tx)
        .await?;
        let (active,): (i64,) = sqlx::query_as(quota::ACTIVE_JOBS)
            .bind(&new.key_id)
            .fetch_one(&mut *tx)
            .await?;
        match quota::over(new.quotas, active.max(0) as u64, used_after - seconds, seconds) {
            Err(exceeded) => Err(exceeded),
            Ok(()) => {
                let row: Option<JobRow> = sqlx::query_as(sql)
                    .bind(new.id.to_string())
                    .bind(&new.decoder)
                    .bind(&metadata)
                    .bind(&new.filename)
                    .bind(&new.content_type)
                    .bind(&new.audio_key)
                    .bind(&new.audio_sha256)
                    .bind(new.audio_bytes as i64)
                    .bind(&new.idempotency_key)
                    .bind(Utc::now())
                    .bind(new.duration)
                    .bind(&new.tenant)
                    .bind(&new.key_id)
                    .bind(&new.callback_url)
                    .bind(&new.batch_id)
                    .bind(new.features.to_column())
                    .fetch_optional(&mut *tx)
                    .await?;
                if row.is_some() {
                    tx.commit().await?;
                }
                Ok(row)
            }
        }
        // Dropping `tx` uncommitted rolls the charge back.
    });
    match outcome {
        Ok(Some(row)) => Ok(Inserted::Created(row.into())),
        Err(exceeded) => Ok(Inserted::OverQuota(exceeded)),
        Ok(None) => {
            let key = new.idempotency_key.as_deref().unwrap_or_default();
            // The conflict can only come from the idempotency key, so the row exists.
            find_by_idempotency_key(db, key)
                .await?
                .map(Inserted::Existing)
                .ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))
        }
    }
}

/// The job an earlier request with this `Idempotency-Key` made.
pub async fn find_by_idempotency_key(
    db: &Database,
    key: &str,
) -> Result<Option<StoredJob>, DbError> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM warble_jobs WHERE idempotency_key = $1"
    );
    let row: Option<JobRow> = with_pool!(db, pool => {
        sqlx::query_as(sql).bind(key).fetch_optional(pool).await?
    });
    Ok(row.map(Into::into))
}

/// One job by id.
pub async fn get(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
) -> Result<Option<StoredJob>, DbError> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM warble_jobs WHERE id = $1 AND ($2 IS NULL OR tenant = $2)"
    );
    let row: Option<JobRow> = with_pool!(db, pool => {
        sqlx::query_as(sql).bind(id).bind(tenant).fetch_optional(pool).await?
    });
    Ok(row.map(Into::into))
}

/// A job's status and transcript JSON, in one read: `None` if there is no such job; the
/// transcript is `None` unless the job succeeded and its transcript was not deleted.
pub async fn transcript(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
) -> Result<Option<(JobStatus, Option<String>)>, DbError> {
    let row: Option<(JobStatus, Option<String>)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT status, transcript FROM warble_jobs \
             WHERE id = $1 AND ($2 IS NULL OR tenant = $2)",
        )
            .bind(id)
            .bind(tenant)
            .fetch_optional(pool)
            .await?
    });
    Ok(row)
}

/// Newest first, `limit` jobs older than the job `before` (a cursor: the last id of the
/// previous page), optionally only those in `status`.
pub async fn list(
    db: &Database,
    tenant: Option<&str>,
    status: Option<JobStatus>,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<Job>, DbError> {
    let sql = concat!(
        "SELECT ",
        columns!(),
        " FROM warble_jobs \
         WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2) \
         AND ($4 IS NULL OR tenant = $4) ORDER BY id DESC LIMIT $3"
    );
    let status = status.map(JobStatus::as_str);
    let rows: Vec<JobRow> = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(status)
            .bind(before)
            .bind(i64::from(limit))
            .bind(tenant)
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(|r| StoredJob::from(r).job).collect())
}

/// Notes that the queue holds the job's task.
pub async fn mark_enqueued(db: &Database, id: &str) -> Result<(), DbError> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE warble_jobs SET enqueued = TRUE WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Jobs recorded but not yet handed to the queue (the API stopped between the two steps).
pub async fn not_enqueued(db: &Database, limit: u32) -> Result<Vec<String>, DbError> {
    let ids: Vec<String> = with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT id FROM warble_jobs WHERE enqueued = FALSE AND status = 'queued' \
             ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(ids)
}

/// A transition of a job: the conditional `UPDATE … RETURNING` `$query` (built with
/// its binds, run here in a transaction) and, if it changed the job, the deliveries of the
/// event `$event` names for the job as changed, in the same transaction, so no change is
/// committed without its webhooks. Evaluates to the changed job, or `None` if the condition
/// did not hold.
macro_rules! transition {
    ($db:expr, $query:expr, $event:expr) => {{
        let event = $event;
        let changed: Result<Option<StoredJob>, DbError> = async {
            Ok(with_pool!($db, pool => {
                let mut tx = pool.begin().await?;
                let row: Option<JobRow> = $query.fetch_optional(&mut *tx).await?;
                let changed = row.map(StoredJob::from);
                if let Some(job) = &changed
                    && let Some(event) = event(&job.job)
                {
                    outbox::enqueue(&mut *tx, event, &job.job).await?;
                }
                // The last of a batch's jobs to end ends the batch.
                if let Some(job) = &changed
                    && job.job.status.is_final()
                    && let Some(batch) = &job.job.batch_id
                {
                    $crate::batch::settle_in!(tx, batch);
                }
                tx.commit().await?;
                changed
            }))
        }
        .await;
        changed
    }};
}

/// A worker takes a job: `queued` or `running` (its previous worker died) becomes `running`
/// under `worker_id`, and the attempt is counted (`attempts` of the returned job). `None`:
/// nothing to do, the job finished or was canceled (or does not exist).
pub async fn start(db: &Database, id: &str, worker_id: &str) -> Result<Option<StoredJob>, DbError> {
    let sql = concat!(
        "UPDATE warble_jobs SET status = 'running', worker_id = $2, attempts = attempts + 1, \
         started_at = COALESCE(started_at, $3), progress = 0 \
         WHERE id = $1 AND status IN ('queued', 'running') RETURNING ",
        columns!(),
        ""
    );
    // Only the first start is news; a retry after a lost worker is not.
    transition!(
        db,
        sqlx::query_as(sql)
            .bind(id)
            .bind(worker_id)
            .bind(Utc::now()),
        |job: &Job| (job.attempts == 1).then_some(Event::JobStarted)
    )
}

/// Sets `queue_position` of each queued job in `jobs`. Workers take the oldest first (ids are
/// ULIDs, ordered by submission time), so a job's place is one more than the queued jobs with
/// smaller ids.
pub async fn with_queue_positions(db: &Database, jobs: &mut [Job]) -> Result<(), DbError> {
    for job in jobs.iter_mut().filter(|j| j.status == JobStatus::Queued) {
        let ahead: i64 = with_pool!(db, pool => {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM warble_jobs WHERE status = 'queued' AND id < $1",
            )
            .bind(&job.id)
            .fetch_one(pool)
            .await?
        });
        job.queue_position = Some(ahead + 1);
    }
    Ok(())
}

/// How many jobs are in one status, and when the oldest of them was submitted.
#[derive(Debug, Clone)]
pub struct StatusCount {
    /// The status.
    pub status: JobStatus,
    /// Jobs in it.
    pub count: i64,
    /// The oldest one's `created_at`.
    pub oldest: Option<DateTime<Utc>>,
}

/// Jobs by status (the statuses with none are left out), for metrics.
pub async fn status_counts(db: &Database) -> Result<Vec<StatusCount>, DbError> {
    let rows: Vec<(JobStatus, i64, Option<DateTime<Utc>>)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT status, COUNT(*), MIN(created_at) FROM warble_jobs GROUP BY status",
        )
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|(status, count, oldest)| StatusCount {
            status,
            count,
            oldest,
        })
        .collect())
}

/// Records progress and, once the worker can tell, when it expects to finish. Returns `false`
/// if the worker no longer holds the job (canceled, or taken over), so it can stop. (The
/// decoded duration is recorded with its charge: [`crate::quota::reconcile`].)
pub async fn progress(
    db: &Database,
    id: &str,
    worker_id: &str,
    progress: f64,
    estimated_completion_at: Option<DateTime<Utc>>,
) -> Result<bool, DbError> {
    let done = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE warble_jobs SET progress = $3, estimated_completion_at = $4 \
             WHERE id = $1 AND worker_id = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(worker_id)
        .bind(progress)
        .bind(estimated_completion_at)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok(done == 1)
}

/// Whether this worker still holds the running job: the read-only form of [`progress`]'s
/// answer, for when there is no news to record.
pub async fn held(db: &Database, id: &str, worker_id: &str) -> Result<bool, DbError> {
    let held = with_pool!(db, pool => {
        sqlx::query("SELECT 1 FROM warble_jobs WHERE id = $1 AND worker_id = $2 AND status = 'running'")
            .bind(id)
            .bind(worker_id)
            .fetch_optional(pool)
            .await?
            .is_some()
    });
    Ok(held)
}

/// Stores the result, if this worker still holds the running job. `false` means another
/// outcome won (canceled, or another worker took over) and this result is dropped.
pub async fn succeed(
    db: &Database,
    id: &str,
    worker_id: &str,
    transcript: &str,
) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE warble_jobs SET status = 'succeeded', progress = 1, transcript = $3, \
         finished_at = $4, error_code = NULL, error_message = NULL \
         WHERE id = $1 AND worker_id = $2 AND status = 'running' RETURNING ",
        columns!(),
        ""
    );
    // The query is written out in the macro's call: its type is each database's own.
    let done = transition!(
        db,
        sqlx::query_as(sql)
            .bind(id)
            .bind(worker_id)
            .bind(transcript)
            .bind(Utc::now()),
        |_: &Job| Some(Event::JobSucceeded)
    )?;
    Ok(done.is_some())
}

/// Fails the job for good with `error`, if it has not finished. `worker_id` limits this to the
/// worker that holds it; `None` fails it whoever holds it (a job out of attempts).
pub async fn fail(
    db: &Database,
    id: &str,
    worker_id: Option<&str>,
    error: &JobError,
) -> Result<bool, DbError> {
    let sql = concat!(
        "UPDATE warble_jobs SET status = 'failed', finished_at = $3, error_code = $4, \
         error_message = $5 \
         WHERE id = $1 AND ($2 IS NULL OR worker_id = $2) AND status IN ('queued', 'running') \
         RETURNING ",
        columns!(),
        ""
    );
    let done = transition!(
        db,
        sqlx::query_as(sql)
            .bind(id)
            .bind(worker_id)
            .bind(Utc::now())
            .bind(error.code.as_str())
            .bind(&error.message),
        |_: &Job| Some(Event::JobFailed)
    )?;
    Ok(done.is_some())
}

/// What [`cancel`] found.
#[derive(Debug)]
pub enum Cancel {
    /// The job was queued or running and is now `canceled` (its worker's next write is
    /// refused, so it stops); `job.canceled` is in the outbox.
    Canceled(StoredJob),
    /// The job had been canceled before; nothing changed.
    AlreadyCanceled(StoredJob),
    /// The job had succeeded or failed, which is final; nothing changed.
    Finished(StoredJob),
}

impl Cancel {
    /// The job as it is now.
    pub fn job(&self) -> &StoredJob {
        match self {
            Self::Canceled(job) | Self::AlreadyCanceled(job) | Self::Finished(job) => job,
        }
    }
}

/// A client cancels a job: a queued or running one becomes `canceled`; any other is left as
/// it is, and the outcome says why. `None` if there is no such job (in `tenant`).
pub async fn cancel(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
) -> Result<Option<Cancel>, DbError> {
    let sql = concat!(
        "UPDATE warble_jobs SET status = 'canceled', finished_at = $2 \
         WHERE id = $1 AND ($3 IS NULL OR tenant = $3) AND status IN ('queued', 'running') \
         RETURNING ",
        columns!(),
        ""
    );
    let canceled = transition!(
        db,
        sqlx::query_as(sql).bind(id).bind(Utc::now()).bind(tenant),
        |_: &Job| Some(Event::JobCanceled)
    )?;
    if let Some(job) = canceled {
        return Ok(Some(Cancel::Canceled(job)));
    }
    // The update found the job in a final state (or found none), and no write leaves a final
    // state, so what is read now is what it found.
    let found = get(db, id, tenant).await?;
    Ok(found.map(|job| match job.job.status {
        JobStatus::Canceled => Cancel::AlreadyCanceled(job),
        _ => Cancel::Finished(job),
    }))
}

/// Records that a finished job's audio and transcript are deleted: drops the transcript and
/// sets `deleted_at`. A queued or running job is left as it is (a worker may still need its
/// audio): the caller cancels it first ([`cancel`]), then deletes the audio, then calls this,
/// so `deleted_at` never claims audio that is still stored. Returns the job as changed, or
/// `None` if nothing changed: its data was deleted before, it is queued or running, or there
/// is no such job (in `tenant`).
pub async fn delete(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
) -> Result<Option<StoredJob>, DbError> {
    let sql = concat!(
        "UPDATE warble_jobs SET transcript = NULL, deleted_at = $2 \
         WHERE id = $1 AND ($3 IS NULL OR tenant = $3) AND deleted_at IS NULL \
         AND status NOT IN ('queued', 'running') RETURNING ",
        columns!(),
        ""
    );
    let row: Option<JobRow> = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(id)
            .bind(Utc::now())
            .bind(tenant)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(Into::into))
}

/// What [`retry`] found.
#[derive(Debug)]
pub enum Retry {
    /// The job had failed or been canceled and is `queued` again; the caller hands it to the
    /// queue.
    Retried(StoredJob),
    /// The job is queued, running or succeeded, or its audio was deleted; nothing changed.
    Refused(StoredJob),
}

/// Puts a failed or canceled job whose audio is kept back in the queue: `queued`, its error,
/// progress, estimate and `finished_at` cleared, and its `attempts` reset to 0 — a retry is a
/// new start, and the attempts left over would fail a job that had run out of them
/// (`too_many_attempts`) again at once. `started_at` stays that of its first start. It is
/// marked not enqueued, so that the sweep hands it to the queue if the caller cannot. No
/// webhook is sent (there is no event for it); its next start sends `job.started` again.
/// `None` if there is no such job (in `tenant`).
pub async fn retry(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
) -> Result<Option<Retry>, DbError> {
    let sql = concat!(
        "UPDATE warble_jobs SET status = 'queued', progress = 0, attempts = 0, \
         finished_at = NULL, error_code = NULL, error_message = NULL, \
         estimated_completion_at = NULL, worker_id = NULL, enqueued = FALSE \
         WHERE id = $1 AND ($2 IS NULL OR tenant = $2) AND status IN ('failed', 'canceled') \
         AND deleted_at IS NULL AND audio_deleted_at IS NULL RETURNING ",
        columns!(),
        ""
    );
    let row: Option<JobRow> = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let row: Option<JobRow> = sqlx::query_as(sql).bind(id).bind(tenant).fetch_optional(&mut *tx).await?;
        // A completed batch has a request running again: it is in progress until that ends,
        // and then completes (and says so) again. A canceled batch stays canceled.
        if let Some(batch) = row.as_ref().and_then(|r| r.batch_id.as_ref()) {
            sqlx::query(
                "UPDATE warble_batches SET status = 'in_progress', finished_at = NULL \
                 WHERE id = $1 AND status = 'completed'",
            )
            .bind(batch)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        row
    });
    if let Some(row) = row {
        return Ok(Some(Retry::Retried(row.into())));
    }
    Ok(get(db, id, tenant).await?.map(Retry::Refused))
}
