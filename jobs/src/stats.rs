//! The numbers of the admin dashboard: the queue now and per-minute series over a recent
//! window. The series are computed here from the jobs' timestamps rather than in SQL, where
//! SQLite (timestamps as text) and Postgres (`timestamptz`) share no date arithmetic.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{Database, DbError};
use crate::job::{self, JobStatus};
use crate::with_pool;

/// The length of one bucket of the series.
pub const BUCKET_SECONDS: i64 = 60;

/// The queue now and what happened minute by minute.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    /// When the numbers were taken; the last bucket ends here.
    pub now: DateTime<Utc>,
    /// Jobs waiting for a worker.
    pub queued: i64,
    /// Jobs a worker holds.
    pub running: i64,
    /// Seconds the oldest queued job has waited since it was submitted; `null` when none
    /// waits.
    pub oldest_queued_age_seconds: Option<f64>,
    /// Seconds each bucket covers.
    pub bucket_seconds: i64,
    /// Oldest first, one bucket a minute up to `now`.
    pub buckets: Vec<Bucket>,
}

/// One minute of the series: the jobs that reached a final state in `(end - 1 min, end]`,
/// and the queue at `end`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Bucket {
    /// The bucket's end.
    pub end: DateTime<Utc>,
    /// Jobs that succeeded in it.
    pub succeeded: i64,
    /// Jobs that failed in it.
    pub failed: i64,
    /// Jobs canceled in it.
    pub canceled: i64,
    /// Seconds of audio of the jobs that succeeded in it.
    pub audio_seconds: f64,
    /// Jobs queued at `end`: submitted by then and neither started nor finished by then. A
    /// retried job counts for its first wait only (its `started_at` is that of its first
    /// start).
    pub queue_depth: i64,
}

/// What one job contributes to the series.
#[derive(sqlx::FromRow)]
struct Row {
    status: JobStatus,
    created_at: DateTime<Utc>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    duration_secs: Option<f64>,
}

/// The stats at `now` with `minutes` one-minute buckets ending at `now`.
pub async fn stats(db: &Database, now: DateTime<Utc>, minutes: u32) -> Result<Stats, DbError> {
    let since = now - TimeDelta::seconds(BUCKET_SECONDS * i64::from(minutes));
    // A job that finished before the window is in no bucket: neither finished in one nor
    // queued at any bucket's end.
    let rows: Vec<Row> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT status, created_at, started_at, finished_at, duration_secs \
             FROM warble_jobs WHERE finished_at IS NULL OR finished_at > $1",
        )
        .bind(since)
        .fetch_all(pool)
        .await?
    });
    let (mut queued, mut running, mut oldest) = (0, 0, None);
    for count in job::status_counts(db).await? {
        match count.status {
            JobStatus::Queued => (queued, oldest) = (count.count, count.oldest),
            JobStatus::Running => running = count.count,
            _ => {}
        }
    }
    Ok(Stats {
        now,
        queued,
        running,
        oldest_queued_age_seconds: oldest
            .map(|at| ((now - at).num_milliseconds() as f64 / 1000.0).max(0.0)),
        bucket_seconds: BUCKET_SECONDS,
        buckets: buckets(&rows, now, minutes),
    })
}

/// The series of `rows` in `minutes` buckets ending at `now`.
fn buckets(rows: &[Row], now: DateTime<Utc>, minutes: u32) -> Vec<Bucket> {
    let width = TimeDelta::seconds(BUCKET_SECONDS);
    let first_end = now - width * (minutes as i32 - 1);
    let mut buckets: Vec<Bucket> = (0..minutes as i32)
        .map(|k| Bucket {
            end: first_end + width * k,
            succeeded: 0,
            failed: 0,
            canceled: 0,
            audio_seconds: 0.0,
            queue_depth: 0,
        })
        .collect();
    // The bucket whose interval `(end - width, end]` holds `at`, if any.
    let count = buckets.len();
    let index = |at: DateTime<Utc>| -> Option<usize> {
        if at > now {
            return None;
        }
        let behind = (now - at).num_milliseconds();
        // `end - width` itself belongs to the bucket before: whole widths behind `now`.
        let k = behind / (BUCKET_SECONDS * 1000);
        let k = usize::try_from(k).ok()?;
        (k < count).then(|| count - 1 - k)
    };
    for row in rows {
        if let Some(i) = row.finished_at.and_then(index) {
            let bucket = &mut buckets[i];
            match row.status {
                JobStatus::Succeeded => {
                    bucket.succeeded += 1;
                    bucket.audio_seconds += row.duration_secs.unwrap_or(0.0);
                }
                JobStatus::Failed => bucket.failed += 1,
                JobStatus::Canceled => bucket.canceled += 1,
                JobStatus::Queued | JobStatus::Running => {}
            }
        }
        // Queued from submission until the earlier of its start and its end.
        let left = match (row.started_at, row.finished_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for bucket in &mut buckets {
            if row.created_at <= bucket.end && left.is_none_or(|left| left > bucket.end) {
                bucket.queue_depth += 1;
            }
        }
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
    }

    fn row(status: JobStatus, created: i64, started: Option<i64>, finished: Option<i64>) -> Row {
        Row {
            status,
            created_at: at(created),
            started_at: started.map(at),
            finished_at: finished.map(at),
            duration_secs: Some(10.0),
        }
    }

    #[test]
    fn jobs_land_in_the_minute_they_finished_and_wait_until_they_start() {
        // Buckets end at 0 - 120, 0 - 60 and 0 (`now`).
        let rows = [
            row(JobStatus::Succeeded, -300, Some(-200), Some(-90)),
            row(JobStatus::Failed, -100, Some(-70), Some(-60)),
            row(JobStatus::Canceled, -50, None, Some(-1)),
            row(JobStatus::Queued, -130, None, None),
            row(JobStatus::Running, -70, Some(-30), None),
            // Finished exactly at a bucket's end: in that bucket, no longer queued there.
            row(JobStatus::Succeeded, -125, Some(-120), Some(0)),
        ];
        let series = buckets(&rows, at(0), 3);
        let counts: Vec<_> = series
            .iter()
            .map(|b| (b.succeeded, b.failed, b.canceled, b.queue_depth))
            .collect();
        assert_eq!(counts, [(0, 0, 0, 1), (1, 1, 0, 2), (1, 0, 1, 1)]);
        assert_eq!(series[2].end, at(0));
        assert_eq!(series[1].audio_seconds, 10.0);
    }
}
