//! The dashboard's numbers (`warble_jobs::stats`) from jobs with known timestamps, on a real
//! database of each kind: the timestamps are stored as text on SQLite and as `timestamptz` on
//! Postgres, and the window's lower bound is compared in SQL on both.

#[macro_use]
mod support;

use chrono::{DateTime, TimeDelta, Utc};
use warble_jobs::db::Database;
use warble_jobs::stats;
use warble_jobs::with_pool;

on_both_databases!(stats_count_each_minute_and_the_queue_now);

/// A job of `status` with these timestamps, `secs` before `now`.
async fn job(
    db: &Database,
    now: DateTime<Utc>,
    status: &str,
    created: i64,
    started: Option<i64>,
    finished: Option<i64>,
) {
    let id = support::queued(db, "acme", None).await.id;
    let at = |secs: i64| now - TimeDelta::seconds(secs);
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE warble_jobs SET status = $2, created_at = $3, started_at = $4, \
             finished_at = $5 WHERE id = $1",
        )
        .bind(&id)
        .bind(status)
        .bind(at(created))
        .bind(started.map(at))
        .bind(finished.map(at))
        .execute(pool)
        .await
        .unwrap();
    });
}

async fn stats_count_each_minute_and_the_queue_now(db: Database) {
    let now = DateTime::parse_from_rfc3339("2026-12-01T12:00:00Z")
        .unwrap()
        .to_utc();
    // Finished before the window of 3 minutes: in no bucket.
    job(&db, now, "succeeded", 900, Some(800), Some(700)).await;
    job(&db, now, "succeeded", 300, Some(200), Some(90)).await;
    job(&db, now, "failed", 100, Some(70), Some(60)).await;
    job(&db, now, "canceled", 50, None, Some(1)).await;
    job(&db, now, "queued", 130, None, None).await;
    job(&db, now, "queued", 30, None, None).await;
    job(&db, now, "running", 70, Some(30), None).await;

    let stats = stats::stats(&db, now, 3).await.unwrap();
    assert_eq!((stats.queued, stats.running), (2, 1));
    assert_eq!(stats.oldest_queued_age_seconds, Some(130.0));
    let rows: Vec<_> = stats
        .buckets
        .iter()
        .map(|b| (b.end, b.succeeded, b.failed, b.canceled, b.queue_depth))
        .collect();
    let end = |secs: i64| now - TimeDelta::seconds(secs);
    assert_eq!(
        rows,
        [
            (end(120), 0, 0, 0, 1),
            (end(60), 1, 1, 0, 2),
            (end(0), 0, 0, 1, 2),
        ]
    );
    // Each upload is 12.5 s of audio.
    assert_eq!(stats.buckets[1].audio_seconds, 12.5);
}
