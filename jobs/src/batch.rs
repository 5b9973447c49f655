//! Batches: many transcription requests made in one call, each becoming an ordinary job
//! (`warble_jobs.batch_id`), followed together. A request's audio is either at a URL, fetched
//! by the API in the background ([`pending`], leased with [`claim`] so one API fetches it
//! while several run), or uploaded in the same call. A batch ends once every request has
//! (its job final, or refused before one was made): [`settle_in!`] checks that in the
//! transaction of each job's final transition, so the last one to end writes the
//! `batch.completed` delivery, exactly once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::{Database, DbError};
use crate::job::JobError;
use crate::with_pool;

/// Where a batch is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Requests are being fetched or their jobs are queued or running.
    InProgress,
    /// A client canceled it; the jobs that were running are being stopped.
    Canceling,
    /// Every request ended (succeeded, failed or canceled one by one).
    Completed,
    /// Canceled, and every request has ended.
    Canceled,
}

impl BatchStatus {
    /// Every status.
    pub const ALL: [BatchStatus; 4] = [
        Self::InProgress,
        Self::Canceling,
        Self::Completed,
        Self::Canceled,
    ];

    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "in_progress",
            Self::Canceling => "canceling",
            Self::Completed => "completed",
            Self::Canceled => "canceled",
        }
    }
}

crate::db::stored_as_text!(BatchStatus, "batch status");

/// How many of a batch's requests are in each state. A request is `pending` until its audio
/// is in and its job made; then it counts by its job's status. One refused before a job was
/// made (a URL that could not be fetched, a file that is not audio) counts as `failed`, one
/// canceled before as `canceled`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RequestCounts {
    /// Requests in the batch.
    pub total: i64,
    /// Not yet a job: the audio is still to be fetched.
    pub pending: i64,
    /// Jobs waiting for a worker.
    pub queued: i64,
    /// Jobs being transcribed.
    pub running: i64,
    /// Transcribed.
    pub succeeded: i64,
    /// Failed, as jobs or before one was made.
    pub failed: i64,
    /// Canceled.
    pub canceled: i64,
}

impl RequestCounts {
    fn from_rows(rows: Vec<(String, i64)>) -> Self {
        let mut counts = Self::default();
        for (state, n) in rows {
            counts.total += n;
            match state.as_str() {
                "pending" => counts.pending += n,
                "queued" => counts.queued += n,
                "running" => counts.running += n,
                "succeeded" => counts.succeeded += n,
                "failed" => counts.failed += n,
                _ => counts.canceled += n,
            }
        }
        counts
    }
}

/// A batch as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Batch {
    /// ULID, sortable by creation time.
    #[schema(example = "01JDRB2K5M7N9P1Q3R5S7T9V1W")]
    pub id: String,
    /// Where it is.
    pub status: BatchStatus,
    /// Its requests by state.
    pub request_counts: RequestCounts,
    /// The tenant it belongs to.
    pub tenant: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When its last request ended.
    pub finished_at: Option<DateTime<Utc>>,
}

/// The columns every batch query returns (a literal: sqlx takes only `&'static str` SQL).
macro_rules! batch_columns {
    () => {
        "id, status, tenant, created_at, finished_at"
    };
}

#[derive(sqlx::FromRow)]
struct BatchRow {
    id: String,
    status: BatchStatus,
    tenant: String,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl BatchRow {
    fn into_batch(self, request_counts: RequestCounts) -> Batch {
        Batch {
            id: self.id,
            status: self.status,
            request_counts,
            tenant: self.tenant,
            created_at: self.created_at,
            finished_at: self.finished_at,
        }
    }
}

/// Batch `$1`'s requests by state: a request's own until it has a job, then its job's.
pub(crate) const COUNTS: &str = "SELECT COALESCE(j.status, r.state), COUNT(*) FROM warble_batch_requests r \
     LEFT JOIN warble_jobs j ON j.id = r.job_id WHERE r.batch_id = $1 \
     GROUP BY COALESCE(j.status, r.state)";

/// Ends batch `$1` at `$2` if none of its requests is pending and none of its jobs queued or
/// running: `completed`, or `canceled` if a client canceled it.
pub(crate) const SETTLE: &str = "UPDATE warble_batches SET finished_at = $2, \
     intake_until_ms = NULL, \
     status = CASE WHEN status = 'canceling' THEN 'canceled' ELSE 'completed' END \
     WHERE id = $1 AND status IN ('in_progress', 'canceling') AND NOT EXISTS (\
       SELECT 1 FROM warble_batch_requests r LEFT JOIN warble_jobs j ON j.id = r.job_id \
       WHERE r.batch_id = $1 AND (r.state = 'pending' OR j.status IN ('queued', 'running'))) \
     RETURNING tenant, status";

/// Takes the batch row's lock in the caller's transaction, before [`SETTLE`] looks at the
/// jobs: two jobs of one batch ending at once then settle one after the other, and the second
/// sees the first's job as final (without it, under Postgres's read committed, each could see
/// the other's job as still running and neither end the batch). A transaction that changes a
/// batch's requests takes it first, before their rows: with one order there is no deadlock (a
/// cancel, which locks the batch then its requests, against a request noted, which locked its
/// row then the batch, was one on Postgres).
pub(crate) const LOCK: &str = "UPDATE warble_batches SET status = status WHERE id = $1";

/// In the transaction `$tx` (a `sqlx::Transaction` of either database), ends batch
/// `$batch_id` if all its requests have ended and writes its `batch.completed` deliveries.
/// A macro, like `job`'s `transition!`, so that each database's types are its own.
macro_rules! settle_in {
    ($tx:ident, $batch_id:expr) => {{
        let batch_id: &str = $batch_id;
        sqlx::query($crate::batch::LOCK)
            .bind(batch_id)
            .execute(&mut *$tx)
            .await?;
        let ended: Option<(String, $crate::batch::BatchStatus)> =
            sqlx::query_as($crate::batch::SETTLE)
                .bind(batch_id)
                .bind(chrono::Utc::now())
                .fetch_optional(&mut *$tx)
                .await?;
        if let Some((tenant, status)) = ended {
            let rows: Vec<(String, i64)> = sqlx::query_as($crate::batch::COUNTS)
                .bind(batch_id)
                .fetch_all(&mut *$tx)
                .await?;
            let payload = $crate::batch::Payload::new(batch_id, status, rows);
            $crate::webhook::outbox::deliver(
                &mut *$tx,
                $crate::webhook::Event::BatchCompleted,
                batch_id,
                &tenant,
                &payload.body(),
                payload.timestamp,
            )
            .await?;
        }
    }};
}
pub(crate) use settle_in;

/// The body of a `batch.completed` delivery: thin, like a job's; the links say where to read
/// the rest.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Payload {
    /// `batch.completed`.
    #[serde(rename = "type")]
    pub event: crate::webhook::Event,
    /// When the batch ended.
    pub timestamp: DateTime<Utc>,
    /// The batch.
    pub data: PayloadData,
}

/// What a `batch.completed` delivery says.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayloadData {
    /// The batch's id.
    pub batch_id: String,
    /// `completed` or `canceled`.
    pub status: BatchStatus,
    /// Its requests by how they ended.
    pub request_counts: RequestCounts,
    /// Paths on the API.
    pub links: BatchLinks,
}

/// Where to read more about a batch.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct BatchLinks {
    /// `GET` the batch.
    #[schema(example = "/v1/batches/01JDRB2K5M7N9P1Q3R5S7T9V1W")]
    pub batch: String,
    /// `GET` its results, JSON Lines.
    #[schema(example = "/v1/batches/01JDRB2K5M7N9P1Q3R5S7T9V1W/results")]
    pub results: String,
}

impl Payload {
    pub(crate) fn new(batch_id: &str, status: BatchStatus, counts: Vec<(String, i64)>) -> Self {
        Self {
            event: crate::webhook::Event::BatchCompleted,
            timestamp: Utc::now(),
            data: PayloadData {
                batch_id: batch_id.to_string(),
                status,
                request_counts: RequestCounts::from_rows(counts),
                links: BatchLinks {
                    batch: format!("/v1/batches/{batch_id}"),
                    results: format!("/v1/batches/{batch_id}/results"),
                },
            },
        }
    }

    pub(crate) fn body(&self) -> String {
        serde_json::to_string(self).expect("a payload serialises")
    }
}

/// One request of a new batch.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// 1-based place in the batch.
    pub line: i64,
    /// The client's name for it.
    pub custom_id: String,
    /// Where its audio is; `None` for an uploaded file.
    pub audio_url: Option<String>,
    /// The request as JSON without its `custom_id` (`audio_url`, `decoder`, `metadata`,
    /// `callback_url`), checked; for uploads, the form's options.
    pub options: Option<String>,
}

/// A new batch.
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// Pre-generated ULID.
    pub id: String,
    /// The submitting key's tenant.
    pub tenant: String,
    /// The submitting key, charged for the batch's jobs.
    pub key_id: String,
    /// The client's `Idempotency-Key`, scoped to the tenant.
    pub idempotency_key: Option<String>,
    /// Its requests, all `pending`.
    pub requests: Vec<NewRequest>,
}

/// Rows per `INSERT` of requests (7 values each, well under SQLite's 32766 parameters).
const INSERT_CHUNK: usize = 500;

/// Records a batch and its requests, all pending, in one transaction: the batch, and whether
/// it is a replay (an earlier request with the same idempotency key made it: that one is
/// returned and nothing is recorded).
pub async fn create(db: &Database, new: &NewBatch) -> Result<(Batch, bool), DbError> {
    let now = Utc::now();
    let created = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO warble_batches (id, tenant, key_id, status, total, created_at, \
             idempotency_key) VALUES ($1, $2, $3, 'in_progress', $4, $5, $6) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&new.id)
        .bind(&new.tenant)
        .bind(&new.key_id)
        .bind(new.requests.len() as i64)
        .bind(now)
        .bind(&new.idempotency_key)
        .execute(&mut *tx)
        .await?
        .rows_affected() == 1;
        for chunk in new.requests.chunks(INSERT_CHUNK) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO warble_batch_requests \
                 (batch_id, line, custom_id, state, audio_url, options) ",
            );
            insert.push_values(chunk, |mut row, request| {
                row.push_bind(&new.id)
                    .push_bind(request.line)
                    .push_bind(&request.custom_id)
                    .push_bind("pending")
                    .push_bind(&request.audio_url)
                    .push_bind(&request.options);
            });
            if !inserted {
                break;
            }
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        inserted
    });
    if !created {
        // The conflict can only come from the idempotency key, so the batch exists.
        let key = new.idempotency_key.as_deref().unwrap_or_default();
        let existing = by_idempotency_key(db, key)
            .await?
            .ok_or(DbError::Sqlx(sqlx::Error::RowNotFound))?;
        return Ok((existing, true));
    }
    let counts = RequestCounts {
        total: new.requests.len() as i64,
        pending: new.requests.len() as i64,
        ..RequestCounts::default()
    };
    let batch = Batch {
        id: new.id.clone(),
        status: BatchStatus::InProgress,
        request_counts: counts,
        tenant: new.tenant.clone(),
        created_at: now,
        finished_at: None,
    };
    Ok((batch, false))
}

/// The batch an earlier request with this `Idempotency-Key` made.
pub async fn by_idempotency_key(db: &Database, key: &str) -> Result<Option<Batch>, DbError> {
    let id: Option<String> = with_pool!(db, pool => {
        sqlx::query_scalar("SELECT id FROM warble_batches WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(pool)
            .await?
    });
    match id {
        Some(id) => get(db, &id, None).await,
        None => Ok(None),
    }
}

/// A batch's requests by state.
async fn counts(db: &Database, id: &str) -> Result<RequestCounts, DbError> {
    let rows: Vec<(String, i64)> = with_pool!(db, pool => {
        sqlx::query_as(COUNTS).bind(id).fetch_all(pool).await?
    });
    Ok(RequestCounts::from_rows(rows))
}

/// One batch, with its counts; `None` if there is none (in `tenant`).
pub async fn get(db: &Database, id: &str, tenant: Option<&str>) -> Result<Option<Batch>, DbError> {
    let sql = concat!(
        "SELECT ",
        batch_columns!(),
        " FROM warble_batches WHERE id = $1 AND ($2 IS NULL OR tenant = $2)"
    );
    let row: Option<BatchRow> = with_pool!(db, pool => {
        sqlx::query_as(sql).bind(id).bind(tenant).fetch_optional(pool).await?
    });
    match row {
        Some(row) => {
            let counts = counts(db, &row.id).await?;
            Ok(Some(row.into_batch(counts)))
        }
        None => Ok(None),
    }
}

/// Newest first, `limit` batches older than the batch `before`.
pub async fn list(
    db: &Database,
    tenant: Option<&str>,
    before: Option<&str>,
    limit: u32,
) -> Result<Vec<Batch>, DbError> {
    let sql = concat!(
        "SELECT ",
        batch_columns!(),
        " FROM warble_batches WHERE ($1 IS NULL OR tenant = $1) \
         AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
    );
    let rows: Vec<BatchRow> = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(tenant)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
    });
    let mut batches = Vec::with_capacity(rows.len());
    for row in rows {
        let counts = counts(db, &row.id).await?;
        batches.push(row.into_batch(counts));
    }
    Ok(batches)
}

/// Takes the lease to fetch batch `id`'s pending requests for `lease_ms`, or renews it
/// (`held`: the lease's end as this holder last set it, which fences it). Returns the lease's
/// new end (Unix ms), or `None` if another API holds it or the batch is no longer in progress
/// (canceled).
pub async fn claim(
    db: &Database,
    id: &str,
    held: Option<i64>,
    lease_ms: i64,
) -> Result<Option<i64>, DbError> {
    let now = Utc::now().timestamp_millis();
    let until = now + lease_ms;
    let claimed = with_pool!(db, pool => {
        sqlx::query(
            "UPDATE warble_batches SET intake_until_ms = $2 WHERE id = $1 \
             AND status = 'in_progress' \
             AND (intake_until_ms IS NULL OR intake_until_ms <= $3 OR intake_until_ms = $4)",
        )
        .bind(id)
        .bind(until)
        .bind(now)
        .bind(held)
        .execute(pool)
        .await?
        .rows_affected()
    });
    Ok((claimed == 1).then_some(until))
}

/// Batches in progress with requests still to fetch that no API holds: new ones whose API
/// stopped before it took them, and those whose API died.
pub async fn unclaimed(db: &Database, limit: u32) -> Result<Vec<String>, DbError> {
    let now = Utc::now().timestamp_millis();
    let ids: Vec<String> = with_pool!(db, pool => {
        sqlx::query_scalar(
            "SELECT b.id FROM warble_batches b WHERE b.status = 'in_progress' \
             AND (b.intake_until_ms IS NULL OR b.intake_until_ms <= $1) \
             AND EXISTS (SELECT 1 FROM warble_batch_requests r \
                         WHERE r.batch_id = b.id AND r.state = 'pending') \
             ORDER BY b.id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(ids)
}

/// A request whose job is still to be made.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PendingRequest {
    /// Its place.
    pub line: i64,
    /// The client's name for it.
    pub custom_id: String,
    /// Where its audio is (`None`: an upload, which never waits here).
    pub audio_url: Option<String>,
    /// Its job options, as given to [`create`].
    pub options: Option<String>,
}

/// The batch, for making its jobs: who made it, and its pending requests in order (up to
/// `limit`).
pub async fn pending(
    db: &Database,
    id: &str,
    limit: u32,
) -> Result<(Owner, Vec<PendingRequest>), DbError> {
    let (owner, requests) = with_pool!(db, pool => {
        let owner: Owner = sqlx::query_as("SELECT tenant, key_id FROM warble_batches WHERE id = $1")
            .bind(id)
            .fetch_one(pool)
            .await?;
        let requests: Vec<PendingRequest> = sqlx::query_as(
            "SELECT line, custom_id, audio_url, options FROM warble_batch_requests \
             WHERE batch_id = $1 AND state = 'pending' ORDER BY line LIMIT $2",
        )
        .bind(id)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
        (owner, requests)
    });
    Ok((owner, requests))
}

/// Whether request `line` of batch `id` is still pending: not canceled with its batch.
pub async fn is_pending(db: &Database, id: &str, line: i64) -> Result<bool, DbError> {
    let found = with_pool!(db, pool => {
        sqlx::query("SELECT 1 FROM warble_batch_requests WHERE batch_id = $1 AND line = $2 AND state = 'pending'")
            .bind(id)
            .bind(line)
            .fetch_optional(pool)
            .await?
            .is_some()
    });
    Ok(found)
}

/// Who made a batch: its jobs are theirs and charged to their key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Owner {
    /// The tenant.
    pub tenant: String,
    /// The key.
    pub key_id: String,
}

/// Whether the key that made batch `id` was revoked since: its batch makes no more jobs.
pub async fn key_revoked(db: &Database, id: &str) -> Result<bool, DbError> {
    let revoked = with_pool!(db, pool => {
        sqlx::query(
            "SELECT 1 FROM warble_batches b JOIN warble_api_keys k ON k.id = b.key_id \
             WHERE b.id = $1 AND k.revoked_at IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(pool)
        .await?
        .is_some()
    });
    Ok(revoked)
}

/// Request `line` of batch `id` became job `job_id`. `false` if the request was canceled
/// meanwhile (with its batch): it is still linked to the job, which the caller cancels. (A request noted before, by an API
/// that lost its lease, made the same job: its idempotency key is the batch's and line's.)
/// Settles the batch too: the job may have ended before it was noted here.
pub async fn submitted(db: &Database, id: &str, line: i64, job_id: &str) -> Result<bool, DbError> {
    let done = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(LOCK).bind(id).execute(&mut *tx).await?;
        let done = sqlx::query(
            "UPDATE warble_batch_requests SET state = 'submitted', job_id = $3 \
             WHERE batch_id = $1 AND line = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(line)
        .bind(job_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let canceled = done == 0
            && sqlx::query_scalar::<_, String>(
                "SELECT state FROM warble_batch_requests WHERE batch_id = $1 AND line = $2",
            )
            .bind(id)
            .bind(line)
            .fetch_optional(&mut *tx)
            .await?
            .is_some_and(|state| state == "canceled");
        if canceled {
            // Every job of a batch is one of its requests', in its results.
            sqlx::query(
                "UPDATE warble_batch_requests SET job_id = $3 \
                 WHERE batch_id = $1 AND line = $2 AND job_id IS NULL",
            )
            .bind(id)
            .bind(line)
            .bind(job_id)
            .execute(&mut *tx)
            .await?;
        }
        settle_in!(tx, id);
        tx.commit().await?;
        !canceled
    });
    Ok(done)
}

/// Request `line` of batch `id` was refused before a job was made; ends the batch if that was
/// its last open request.
pub async fn refused(db: &Database, id: &str, line: i64, error: &JobError) -> Result<(), DbError> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(LOCK).bind(id).execute(&mut *tx).await?;
        sqlx::query(
            "UPDATE warble_batch_requests SET state = 'failed', error_code = $3, \
             error_message = $4 WHERE batch_id = $1 AND line = $2 AND state = 'pending'",
        )
        .bind(id)
        .bind(line)
        .bind(error.code.as_str())
        .bind(&error.message)
        .execute(&mut *tx)
        .await?;
        settle_in!(tx, id);
        tx.commit().await?;
    });
    Ok(())
}

/// Fails every pending request of batch `id` with `error` (its key was revoked), and ends the
/// batch if that was all it waited for.
pub async fn refuse_pending(db: &Database, id: &str, error: &JobError) -> Result<(), DbError> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(LOCK).bind(id).execute(&mut *tx).await?;
        sqlx::query(
            "UPDATE warble_batch_requests SET state = 'failed', error_code = $2, \
             error_message = $3 WHERE batch_id = $1 AND state = 'pending'",
        )
        .bind(id)
        .bind(error.code.as_str())
        .bind(&error.message)
        .execute(&mut *tx)
        .await?;
        settle_in!(tx, id);
        tx.commit().await?;
    });
    Ok(())
}

/// Ends batch `id` if every request has ended (after its last URL was fetched, or a cancel).
pub async fn settle(db: &Database, id: &str) -> Result<(), DbError> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        settle_in!(tx, id);
        tx.commit().await?;
    });
    Ok(())
}

/// A client cancels batch `id`: it becomes `canceling` and its pending requests `canceled`.
/// Returns its status before, and the ids of its jobs still queued or running, for the caller
/// to cancel one by one (each with its `job.canceled`), then [`settle`]; `None` if there is no
/// such batch (in `tenant`). A batch that has ended is left as it is (no jobs returned).
pub async fn cancel(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
) -> Result<Option<(BatchStatus, Vec<String>)>, DbError> {
    let jobs = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        // A write first: SQLite then takes its write lock now (waiting its turn), rather than
        // failing busy when the read below would have to become a write.
        sqlx::query(LOCK).bind(id).execute(&mut *tx).await?;
        let found: Option<BatchStatus> = sqlx::query_scalar(
            "SELECT status FROM warble_batches WHERE id = $1 AND ($2 IS NULL OR tenant = $2)",
        )
        .bind(id)
        .bind(tenant)
        .fetch_optional(&mut *tx)
        .await?;
        match found {
            None => None,
            Some(ended @ (BatchStatus::Completed | BatchStatus::Canceled)) => {
                Some((ended, Vec::new()))
            }
            Some(before) => {
                sqlx::query(
                    "UPDATE warble_batches SET status = 'canceling' \
                     WHERE id = $1 AND status = 'in_progress'",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE warble_batch_requests SET state = 'canceled' \
                     WHERE batch_id = $1 AND state = 'pending'",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                let jobs: Vec<String> = sqlx::query_scalar(
                    "SELECT id FROM warble_jobs WHERE batch_id = $1 \
                     AND status IN ('queued', 'running') ORDER BY id",
                )
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Some((before, jobs))
            }
        }
    });
    Ok(jobs)
}

/// One line of a batch's results.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResultLine {
    /// The request's place (1-based).
    pub line: i64,
    /// The client's name for it.
    pub custom_id: String,
    /// Its job, once made.
    pub job_id: Option<String>,
    /// `pending`, or its job's status (`queued`, `running`, `succeeded`, `failed`,
    /// `canceled`); `failed` or `canceled` also for a request that ended before a job was made.
    pub status: String,
    /// The transcript of a succeeded job (as `GET /v1/jobs/{id}/transcript` gives it).
    #[schema(value_type = Option<Object>)]
    pub transcript: Option<serde_json::Value>,
    /// Why it failed; `gone` for a succeeded job whose transcript was deleted
    /// (`DELETE /v1/jobs/{id}`, or retention).
    pub error: Option<JobError>,
}

#[derive(sqlx::FromRow)]
struct ResultRow {
    line: i64,
    custom_id: String,
    job_id: Option<String>,
    status: String,
    request_error_code: Option<crate::error_code::ErrorCode>,
    request_error_message: Option<String>,
    job_error_code: Option<crate::error_code::ErrorCode>,
    job_error_message: Option<String>,
    transcript: Option<String>,
    deleted: Option<bool>,
}

/// Results of batch `id`, `limit` lines after line `after`, in order.
pub async fn results(
    db: &Database,
    id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<ResultLine>, DbError> {
    let rows: Vec<ResultRow> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT r.line, r.custom_id, r.job_id, COALESCE(j.status, r.state) AS status, \
             r.error_code AS request_error_code, r.error_message AS request_error_message, \
             j.error_code AS job_error_code, j.error_message AS job_error_message, j.transcript, \
             (j.deleted_at IS NOT NULL OR j.transcript_deleted_at IS NOT NULL) AS deleted \
             FROM warble_batch_requests r LEFT JOIN warble_jobs j ON j.id = r.job_id \
             WHERE r.batch_id = $1 AND r.line > $2 ORDER BY r.line LIMIT $3",
        )
        .bind(id)
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|row| {
            let error = match (row.request_error_code, row.job_error_code) {
                // Like the job's transcript route: a succeeded job's data deleted is gone.
                _ if row.deleted == Some(true) && row.status == "succeeded" => Some(JobError::new(
                    crate::error_code::ErrorCode::Gone,
                    "the job's transcript was deleted",
                )),
                (Some(code), _) => Some(JobError::new(
                    code,
                    row.request_error_message.unwrap_or_default(),
                )),
                (None, Some(code)) => Some(JobError::new(
                    code,
                    row.job_error_message.unwrap_or_default(),
                )),
                (None, None) => None,
            };
            ResultLine {
                line: row.line,
                custom_id: row.custom_id,
                job_id: row.job_id,
                status: row.status,
                // Served as the job's transcript route serves it (bounded segments, speakers).
                transcript: row
                    .transcript
                    .and_then(|t| serde_json::from_str::<crate::transcript::Transcript>(&t).ok())
                    .and_then(|t| serde_json::to_value(t.served()).ok()),
                error,
            }
        })
        .collect())
}
