//! A stored status or event name the code does not know (written by a newer version, or by
//! hand) fails the read that meets it, instead of passing for another state: a job read as
//! `failed`, a delivery as `pending` (and sent again), an event as `job.succeeded`.

#[macro_use]
mod support;

use warble_jobs::db::{Database, DbError};
use warble_jobs::job;
use warble_jobs::webhook::{self, Event, outbox};
use warble_jobs::with_pool;

on_both_databases!(
    an_unknown_job_status_fails_the_read,
    an_unknown_delivery_status_or_event_fails_the_read,
    an_unknown_subscribed_event_fails_the_read,
);

/// Runs `sql` with `id` as `$1`, as someone editing the database by hand would.
async fn write_raw(db: &Database, sql: &'static str, id: &str) {
    let changed = with_pool!(db, pool => {
        sqlx::query(sql).bind(id).execute(pool).await.unwrap().rows_affected()
    });
    assert_eq!(changed, 1, "{sql}");
}

/// `result` is the query's decode error naming the unknown `value`.
#[track_caller]
fn assert_decode_error<T: std::fmt::Debug>(result: Result<T, DbError>, value: &str) {
    match result {
        Err(DbError::Sqlx(err @ sqlx::Error::ColumnDecode { .. })) => {
            let message = err.to_string();
            assert!(message.contains(value), "{message}");
        }
        other => panic!("expected a decode error for {value}, got {other:?}"),
    }
}

async fn an_unknown_job_status_fails_the_read(db: Database) {
    let id = support::queued(&db, "acme", None).await.id;
    write_raw(
        &db,
        "UPDATE warble_jobs SET status = 'paused' WHERE id = $1",
        &id,
    )
    .await;
    let unknown = r#"unknown job status "paused""#;
    assert_decode_error(job::get(&db, &id, None).await, unknown);
    assert_decode_error(job::list(&db, None, None, None, 10).await, unknown);
    assert_decode_error(job::transcript(&db, &id, None).await, unknown);
}

async fn an_unknown_delivery_status_or_event_fails_the_read(db: Database) {
    webhook::create(&db, "acme", "https://example.com/hook", &Event::ALL, None)
        .await
        .unwrap()
        .unwrap();
    let id = support::queued(&db, "acme", None).await.id;
    job::start(&db, &id, "w1").await.unwrap().unwrap();
    let list = || outbox::list(&db, None, None, None, None, None, 10);
    assert_eq!(list().await.unwrap().len(), 1, "job.started was written");

    write_raw(
        &db,
        "UPDATE warble_deliveries SET status = 'sent' WHERE job_id = $1",
        &id,
    )
    .await;
    assert_decode_error(list().await, r#"unknown delivery status "sent""#);

    write_raw(
        &db,
        "UPDATE warble_deliveries SET status = 'pending', event = 'job.paused' \
         WHERE job_id = $1",
        &id,
    )
    .await;
    assert_decode_error(list().await, r#"unknown webhook event "job.paused""#);
}

async fn an_unknown_subscribed_event_fails_the_read(db: Database) {
    let (hook, _) = webhook::create(&db, "acme", "https://example.com/hook", &Event::ALL, None)
        .await
        .unwrap()
        .unwrap();
    write_raw(
        &db,
        "UPDATE warble_webhooks SET events = ',job.succeeded,job.paused,' WHERE id = $1",
        &hook.id,
    )
    .await;
    let unknown = r#"unknown webhook event "job.paused""#;
    assert_decode_error(webhook::get(&db, &hook.id, None).await, unknown);
    assert_decode_error(webhook::list(&db, Some("acme")).await, unknown);
}
