//! The delivery outbox. A job's state change and the deliveries it causes are written in one
//! transaction ([`enqueue`], called from [`crate::job`]), so a crash cannot lose a callback
//! or send one for a change that did not happen. Dispatchers ([`claim`]) lease due rows,
//! send them, and record what happened ([`record`]); a dispatcher that dies mid-send leaves
//! its lease to expire, and the row is sent again with the same `webhook-id`: at least once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Event;
use crate::db::{Database, DbError};
use crate::job::Job;
use crate::with_pool;

/// Where a delivery is. `retrying` and `failed` are the ones to watch: an endpoint that is
/// down keeps its deliveries `retrying` for as long as the retry schedule lasts (about 28
/// hours by default) before they are `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not attempted yet; its first attempt is due at `next_attempt_at`.
    Pending,
    /// Attempted before (the last attempt failed, or it was retried by hand); the next
    /// attempt is due at `next_attempt_at`.
    Retrying,
    /// The endpoint answered 2xx.
    Delivered,
    /// Given up: the retry schedule ran out, the endpoint answered 410, the URL is no longer
    /// allowed, or the endpoint was deleted or disabled.
    Failed,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [DeliveryStatus; 4] =
        [Self::Pending, Self::Retrying, Self::Delivered, Self::Failed];

    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Whether another attempt is scheduled.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Pending | Self::Retrying)
    }
}

/// The SQL condition of a delivery that still has an attempt scheduled: pending or retrying
/// ([`DeliveryStatus::is_open`]).
macro_rules! open_status {
    () => {
        "status IN ('pending', 'retrying')"
    };
}

crate::db::stored_as_text!(DeliveryStatus, "delivery status");

/// A delivery as the API lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Delivery {
    /// Its `webhook-id`, the same on every attempt.
    #[schema(example = "msg_01JDRA...")]
    pub id: String,
    /// The endpoint, or `null` for the job's own `callback_url`.
    pub webhook_id: Option<String>,
    /// Where it goes.
    pub url: String,
    /// What happened.
    pub event: Event,
    /// The job it is about (for `batch.completed`: the batch's id).
    pub job_id: String,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: i64,
    /// The last attempt's HTTP status, if an answer came.
    pub last_status_code: Option<i64>,
    /// Why the last attempt failed, in a few words (`connection refused`, `HTTP 500`,
    /// `timed out after 15 s`); `null` after a success.
    #[schema(example = "connection refused")]
    pub last_error: Option<String>,
    /// How long the last attempt took, milliseconds.
    pub last_latency_ms: Option<i64>,
    /// When the last attempt was made; `null` before the first.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When the next attempt is due (`pending` and `retrying` only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the event happened.
    pub created_at: DateTime<Utc>,
    /// When it was delivered or given up.
    pub finished_at: Option<DateTime<Utc>>,
    /// The tenant.
    pub tenant: String,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: String,
    tenant: String,
    webhook_id: Option<String>,
    url: String,
    event: Event,
    job_id: String,
    status: DeliveryStatus,
    attempts: i64,
    last_status_code: Option<i64>,
    last_error: Option<String>,
    last_latency_ms: Option<i64>,
    last_attempt_at: Option<DateTime<Utc>>,
    next_attempt_ms: Option<i64>,
    created_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl From<DeliveryRow> for Delivery {
    fn from(row: DeliveryRow) -> Self {
        Self {
            id: row.id,
            webhook_id: row.webhook_id,
            url: row.url,
            event: row.event,
            job_id: row.job_id,
            status: row.status,
            attempts: row.attempts,
            last_status_code: row.last_status_code,
            last_error: row.last_error,
            last_latency_ms: row.last_latency_ms,
            last_attempt_at: row.last_attempt_at,
            next_attempt_at: row
                .next_attempt_ms
                .filter(|_| row.status.is_open())
                .and_then(DateTime::from_timestamp_millis),
            created_at: row.created_at,
            finished_at: row.finished_at,
            tenant: row.tenant,
        }
    }
}

macro_rules! delivery_columns {
    () => {
        "id, tenant, webhook_id, url, event, job_id, status, attempts, last_status_code, \
         last_error, last_latency_ms, last_attempt_at, next_attempt_ms, created_at, finished_at"
    };
}

/// The body of a delivery: thin, no transcript; the links say where to fetch the rest.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Payload {
    /// The event, e.g. `job.succeeded`.
    #[serde(rename = "type")]
    pub event: Event,
    /// When it happened.
    pub timestamp: DateTime<Utc>,
    /// The job.
    pub data: PayloadData,
}

/// What a delivery says about its job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PayloadData {
    /// The job's id.
    pub job_id: String,
    /// Its status after the event.
    pub status: crate::job::JobStatus,
    /// Why it failed (`job.failed`).
    pub error: Option<crate::job::JobError>,
    /// Seconds of audio.
    pub duration: Option<f64>,
    /// The batch the job belongs to (`POST /v1/batches`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
    /// Paths on the API (prefix them with its address).
    pub links: Links,
}

/// Where to read more.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Links {
    /// `GET` the job.
    #[schema(example = "/v1/jobs/01JDR7Q9V3X8M2K4T6N0P5B1CZ")]
    pub job: String,
    /// `GET` its transcript.
    #[schema(example = "/v1/jobs/01JDR7Q9V3X8M2K4T6N0P5B1CZ/transcript")]
    pub transcript: String,
}

impl Payload {
    /// The payload of `event` for `job` as it is now.
    pub fn new(event: Event, job: &Job) -> Self {
        Self {
            event,
            timestamp: Utc::now(),
            data: PayloadData {
                job_id: job.id.clone(),
                status: job.status,
                error: job.error.clone(),
                duration: job.duration,
                batch_id: job.batch_id.clone(),
                links: Links {
                    job: format!("/v1/jobs/{}", job.id),
                    transcript: format!("/v1/jobs/{}/transcript", job.id),
                },
            },
        }
    }
}

/// The deliveries of one event: one per enabled endpoint of the job's tenant that wants it,
/// and, for final events, one to the job's `callback_url`. Ids are `$1` + the endpoint's id
/// (or `callback`), unique per event and destination.
const ENQUEUE: &str = "INSERT INTO warble_deliveries (id, tenant, webhook_id, url, event, job_id, \
     payload, status, attempts, next_attempt_ms, created_at) \
     SELECT $1 || w.id, w.tenant, w.id, w.url, $2, $3, $4, 'pending', 0, $5, $6 \
     FROM warble_webhooks w \
     WHERE w.tenant = $7 AND w.disabled_at IS NULL AND w.events LIKE $8 \
     UNION ALL \
     SELECT $1 || 'callback', j.tenant, NULL, j.callback_url, $2, $3, $4, 'pending', 0, $5, $6 \
     FROM warble_jobs j \
     WHERE j.id = $3 AND j.callback_url IS NOT NULL AND $2 <> 'job.started'";

/// Writes the deliveries `event` causes for `job`, in the caller's transaction.
pub(crate) async fn enqueue<'e, DB, E>(executor: E, event: Event, job: &Job) -> Result<(), DbError>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let Some(tenant) = &job.tenant else {
        // Jobs from before keys existed belong to no tenant and have no endpoints.
        return Ok(());
    };
    let payload = Payload::new(event, job);
    let body = serde_json::to_string(&payload).expect("a payload serialises");
    deliver(executor, event, &job.id, tenant, &body, payload.timestamp).await
}

/// Writes the deliveries of `event` about `subject` (a job's or a batch's id, kept in the
/// `job_id` column) with the exact `body`, in the caller's transaction: one per enabled
/// endpoint of `tenant` that wants the event, and, for a job's final events, one to the job's
/// `callback_url` (a batch's id names no job, so it has none).
pub(crate) async fn deliver<'e, DB, E>(
    executor: E,
    event: Event,
    subject: &str,
    tenant: &str,
    body: &str,
    at: DateTime<Utc>,
) -> Result<(), DbError>
where
    DB: sqlx::Database,
    E: sqlx::Executor<'e, Database = DB>,
    <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> DateTime<Utc>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let id_prefix = format!("msg_{}_", ulid::Ulid::generate());
    sqlx::query::<DB>(ENQUEUE)
        .bind(id_prefix)
        .bind(event.as_str())
        .bind(subject.to_string())
        .bind(body.to_string())
        .bind(at.timestamp_millis())
        .bind(at)
        .bind(tenant.to_string())
        .bind(format!("%,{},%", event.as_str()))
        .execute(executor)
        .await?;
    Ok(())
}

/// Fails the pending and retrying deliveries of endpoint `$1` with reason `$2` at `$3`.
pub(crate) const ABANDON_OPEN: &str = concat!(
    "UPDATE warble_deliveries SET status = 'failed', \
     last_error = $2, finished_at = $3, next_attempt_ms = NULL, locked_until_ms = NULL \
     WHERE webhook_id = $1 AND ",
    open_status!()
);

/// A delivery leased for sending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    /// The `webhook-id`.
    pub id: String,
    /// The endpoint (`None`: the job's callback URL).
    pub webhook_id: Option<String>,
    /// The tenant, whose default secret signs callbacks.
    pub tenant: String,
    /// Where to send it.
    pub url: String,
    /// The exact body.
    pub payload: String,
    /// Attempts before this one.
    pub attempts: i64,
    /// The end of this claim's lease (Unix ms). It also fences the claim: a later claim of
    /// the same row (after this lease expired) sets a later one, so [`record`] can tell
    /// whether the row is still ours.
    pub locked_until_ms: i64,
}

impl Claimed {
    /// What is left of the lease.
    pub fn lease_left(&self) -> std::time::Duration {
        let left = self.locked_until_ms - Utc::now().timestamp_millis();
        std::time::Duration::from_millis(left.max(0) as u64)
    }
}

/// The due deliveries, oldest first, up to `$3`, leased until `$1 + $2` (Unix ms).
macro_rules! claim_sql {
    () => {
        concat!(
            "UPDATE warble_deliveries SET locked_until_ms = $1 + $2 WHERE id IN \
             (SELECT id FROM warble_deliveries WHERE ",
            open_status!(),
            " AND next_attempt_ms <= $1 \
               AND (locked_until_ms IS NULL OR locked_until_ms <= $1) \
               ORDER BY next_attempt_ms LIMIT $3"
        )
    };
}

/// The end of [`claim_sql`].
macro_rules! claim_returning {
    () => {
        ") RETURNING id, webhook_id, tenant, url, payload, attempts, locked_until_ms"
    };
}

/// Leases up to `limit` due deliveries for `lease_ms`. On Postgres, `SKIP LOCKED` lets
/// several dispatchers claim at once without waiting for or double-sending each other's
/// rows; SQLite runs one write at a time, so its single statement is enough.
pub async fn claim(db: &Database, limit: u32, lease_ms: i64) -> Result<Vec<Claimed>, DbError> {
    let now = Utc::now().timestamp_millis();
    let rows = match db {
        Database::Postgres(pool) => {
            sqlx::query_as(concat!(
                claim_sql!(),
                " FOR UPDATE SKIP LOCKED",
                claim_returning!()
            ))
            .bind(now)
            .bind(lease_ms)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await?
        }
        Database::Sqlite(pool) => {
            sqlx::query_as(concat!(claim_sql!(), claim_returning!()))
                .bind(now)
                .bind(lease_ms)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }
    };
    Ok(rows)
}

/// The secrets that sign a claimed delivery (current first, then the previous one while its
/// rotation grace lasts); `None` if its endpoint was deleted or disabled meanwhile.
pub async fn secrets(db: &Database, claimed: &Claimed) -> Result<Option<Vec<String>>, DbError> {
    let now = Utc::now();
    let row: Option<(String, Option<String>, Option<DateTime<Utc>>)> = with_pool!(db, pool => {
        match &claimed.webhook_id {
            Some(webhook) => sqlx::query_as(
                "SELECT secret, previous_secret, previous_expires_at FROM warble_webhooks \
                 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(webhook)
            .fetch_optional(pool)
            .await?,
            None => sqlx::query_as(
                "SELECT secret, previous_secret, previous_expires_at FROM warble_tenant_secrets \
                 WHERE tenant = $1",
            )
            .bind(&claimed.tenant)
            .fetch_optional(pool)
            .await?,
        }
    });
    Ok(row.map(|(secret, previous, expires)| {
        let mut secrets = vec![secret];
        if let (Some(previous), Some(expires)) = (previous, expires)
            && expires > now
        {
            secrets.push(previous);
        }
        secrets
    }))
}

/// What became of one attempt.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// 2xx.
    Delivered {
        /// The status code.
        status: u16,
        /// Milliseconds.
        latency_ms: i64,
    },
    /// Try again at `next`, or give up if `next` is `None` (the retry schedule ran out).
    Retry {
        /// The status code, if an answer came.
        status: Option<u16>,
        /// Why, for the delivery log.
        error: String,
        /// Milliseconds.
        latency_ms: i64,
        /// When to try again.
        next: Option<DateTime<Utc>>,
    },
    /// Given up at once: 410 Gone (the endpoint is disabled too), a URL that is no longer
    /// allowed, or an endpoint deleted or disabled since the event.
    Abandon {
        /// The status code, if an answer came.
        status: Option<u16>,
        /// Why.
        error: String,
        /// Milliseconds.
        latency_ms: i64,
        /// Disable the endpoint with this reason.
        disable: Option<String>,
    },
}

/// Records an attempt's outcome and releases the lease, if the row is still leased by
/// `claimed`; `false` (and nothing written) if the lease expired and another dispatcher
/// claimed the row since: its outcome is the one that counts.
pub async fn record(db: &Database, claimed: &Claimed, outcome: &Outcome) -> Result<bool, DbError> {
    let now = Utc::now();
    let (status, code, error, latency, next) = match outcome {
        Outcome::Delivered { status, latency_ms } => (
            DeliveryStatus::Delivered,
            Some(*status),
            None,
            *latency_ms,
            None,
        ),
        Outcome::Retry {
            status,
            error,
            latency_ms,
            next,
        } => (
            if next.is_some() {
                DeliveryStatus::Retrying
            } else {
                DeliveryStatus::Failed
            },
            *status,
            Some(error.as_str()),
            *latency_ms,
            *next,
        ),
        Outcome::Abandon {
            status,
            error,
            latency_ms,
            ..
        } => (
            DeliveryStatus::Failed,
            *status,
            Some(error.as_str()),
            *latency_ms,
            None,
        ),
    };
    let finished = (!status.is_open()).then_some(now);
    let held = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let held = sqlx::query(
            "UPDATE warble_deliveries SET status = $2, attempts = attempts + 1, \
             last_status_code = $3, last_error = $4, last_latency_ms = $5, \
             next_attempt_ms = $6, locked_until_ms = NULL, finished_at = $7, \
             last_attempt_at = $9 WHERE id = $1 AND locked_until_ms = $8",
        )
        .bind(&claimed.id)
        .bind(status.as_str())
        .bind(code.map(i64::from))
        .bind(error)
        .bind(latency)
        .bind(next.map(|at| at.timestamp_millis()))
        .bind(finished)
        .bind(claimed.locked_until_ms)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !held {
            return Ok(false);
        }
        if let (Outcome::Abandon { disable: Some(reason), .. }, Some(webhook)) =
            (outcome, &claimed.webhook_id)
        {
            sqlx::query(
                "UPDATE warble_webhooks SET disabled_at = COALESCE(disabled_at, $2), \
                 disabled_reason = COALESCE(disabled_reason, $3), updated_at = $2 WHERE id = $1",
            )
            .bind(webhook)
            .bind(now)
            .bind(reason)
            .execute(&mut *tx)
            .await?;
            sqlx::query(ABANDON_OPEN)
                .bind(webhook)
                .bind(reason)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        held
    });
    Ok(held)
}

/// Deliveries newest first: of one endpoint (`webhook`), or all that `tenant` may see
/// (`None`: every tenant's), optionally only those about one job (`job`) or in one status,
/// after `cursor`.
pub async fn list(
    db: &Database,
    tenant: Option<&str>,
    webhook: Option<&str>,
    job: Option<&str>,
    status: Option<DeliveryStatus>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<Vec<Delivery>, DbError> {
    let sql = concat!(
        "SELECT ",
        delivery_columns!(),
        " FROM warble_deliveries WHERE ($1 IS NULL OR tenant = $1) \
         AND ($2 IS NULL OR webhook_id = $2) AND ($3 IS NULL OR status = $3) \
         AND ($4 IS NULL OR id < $4) AND ($6 IS NULL OR job_id = $6) \
         ORDER BY id DESC LIMIT $5"
    );
    let rows: Vec<DeliveryRow> = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(tenant)
            .bind(webhook)
            .bind(status.map(DeliveryStatus::as_str))
            .bind(cursor)
            .bind(i64::from(limit))
            .bind(job)
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Sends a delivery again now, whatever its state (a manual retry is one more attempt): it is
/// `retrying` if it was attempted before, else still `pending`. `None` if `tenant` has no
/// such delivery.
pub async fn retry(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
) -> Result<Option<Delivery>, DbError> {
    let sql = concat!(
        "UPDATE warble_deliveries SET \
         status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END, \
         next_attempt_ms = $3, finished_at = NULL \
         WHERE id = $1 AND ($2 IS NULL OR tenant = $2) RETURNING ",
        delivery_columns!()
    );
    let row: Option<DeliveryRow> = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(id)
            .bind(tenant)
            .bind(Utc::now().timestamp_millis())
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(Into::into))
}
