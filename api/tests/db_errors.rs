//! Database errors are told apart from outages, and none of them loses or repeats work. The
//! faults are made by triggers on the real databases: a constraint-class error is a fault of
//! ours (500, no retry), an outage-class one is waited out (503 to clients; the worker keeps
//! what it has done instead of doing it again).

#[macro_use]
mod common;

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Api, Backends, fixture, start_worker};
use serde_json::Value;

on_both_databases!(
    a_refused_write_is_a_500_not_an_outage,
    a_queued_job_is_accepted_even_if_its_flag_is_not_set,
);

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs `statements` on the backends' database, as its owner would.
async fn sql(backends: &Backends, statements: &[&str]) {
    if backends.database_url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&backends.database_url)
            .await
            .unwrap();
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
                .execute(&pool)
                .await
                .unwrap();
        }
    } else {
        let pool = sqlx::PgPool::connect(&backends.database_url).await.unwrap();
        for statement in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(*statement))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
}

/// A trigger `name` on `event` of `warble_jobs` (e.g. `BEFORE INSERT`, optionally with a
/// `WHEN` condition) that refuses the write as a constraint would.
async fn refuse(backends: &Backends, event: &str, when: &str) {
    if backends.database_url.starts_with("sqlite:") {
        let when = if when.is_empty() {
            String::new()
        } else {
            format!("WHEN {when}")
        };
        let trigger = format!(
            "CREATE TRIGGER test_refuse {event} ON warble_jobs {when} \
             BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        );
        sql(backends, &[&trigger]).await;
    } else {
        let when = if when.is_empty() {
            String::new()
        } else {
            format!("WHEN ({when})")
        };
        let trigger = format!(
            "CREATE TRIGGER test_refuse {event} ON warble_jobs FOR EACH ROW {when} \
             EXECUTE FUNCTION test_refuse()"
        );
        sql(
            backends,
            &[
                "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation'; \
                 END $$",
                &trigger,
            ],
        )
        .await;
    }
}

/// A write the database refuses (here a trigger; in life a constraint, a decode error) is not
/// an outage: 500 with the request id, no `Retry-After` (clients would retry it for ever), and
/// nothing left behind. Before, every database error was `503 database_unavailable`.
async fn a_refused_write_is_a_500_not_an_outage(backends: Backends, _dir: &Path) {
    let api = Api::start(&backends);
    refuse(&backends, "BEFORE INSERT", "").await;
    let response = api.submit(&fixture("audio/tts_us_m6.wav"), &[], None).await;
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(response.status(), 500);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "internal");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    assert!(!body.to_string().contains("refused by the test"), "{body}");
    assert_eq!(backends.stored_objects(), 0);
    let jobs = api.get_json("/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 0, "{jobs}");
    let usage = api.get_json("/v1/usage").await;
    assert_eq!(usage["jobs_today"], 0, "{usage}");
}

/// The job is recorded and in the queue, and only noting that it is (`enqueued`) fails: the
/// client gets its job (202), not an error that makes it submit and pay again; the job runs
/// once. Before, the failure of that last write was the answer.
async fn a_queued_job_is_accepted_even_if_its_flag_is_not_set(backends: Backends, _dir: &Path) {
    let api = Api::start(&backends);
    refuse(&backends, "BEFORE UPDATE OF enqueued", "NEW.enqueued").await;
    let response = api.submit(&fixture("audio/tts_us_m6.wav"), &[], None).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    let id = job["id"].as_str().unwrap();
    let _worker = start_worker(&api, &backends).await;
    let done = api.wait_final(id, JOB_TIMEOUT).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    let jobs = api.get_json("/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1, "{jobs}");
}

/// On Postgres, the first three writes of `warble_jobs` rows to `status` fail as a database
/// that is starting up would (SQLSTATE 57P03). A sequence counts them: it is not rolled back
/// with the refused write. (SQLite's triggers can only raise constraint errors, so this
/// outage is Postgres's; the code under test does not depend on the database.)
async fn outage_on(backends: &Backends, status: &str) {
    let function = "CREATE FUNCTION test_outage() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF nextval('test_refusals') <= 3 THEN \
         RAISE EXCEPTION 'the test says the database is starting up' \
         USING ERRCODE = 'cannot_connect_now'; END IF; RETURN NEW; END $$";
    let trigger = format!(
        "CREATE TRIGGER test_outage BEFORE UPDATE OF status ON warble_jobs FOR EACH ROW \
         WHEN (NEW.status = '{status}') EXECUTE FUNCTION test_outage()"
    );
    sql(
        backends,
        &["CREATE SEQUENCE test_refusals", function, &trigger],
    )
    .await;
}

/// A worker that cannot write a permanent failure keeps trying to write it, instead of giving
/// the job back: before, the job was decoded again on each delivery, its attempts counted up,
/// and with attempts used up its own error code was lost behind `too_many_attempts`.
#[tokio::test(flavor = "multi_thread")]
async fn a_known_failure_is_recorded_once_postgres_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::postgres(dir.path()).await;
    let api = Api::start(&backends);
    outage_on(&backends, "failed").await;
    let wav = std::fs::read(fixture("audio/tts_us_m6.wav")).unwrap();
    let truncated = dir.path().join("truncated.wav");
    std::fs::write(&truncated, &wav[..wav.len() / 2]).unwrap();
    let id = api.submit_ok(&truncated).await;
    let _worker = common::start_worker_with(&api, &backends, &[("WARBLE_MAX_ATTEMPTS", "3")]).await;
    let done = api.wait_final(&id, JOB_TIMEOUT).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(done["error"]["code"], "audio_decode_failed", "{done}");
    assert_eq!(done["attempts"], 1, "decoded once: {done}");
}

/// A worker that cannot start a job waits before handing it back, longer each time, instead
/// of having the queue deliver it again at once through an outage.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_that_cannot_start_on_postgres_is_retried_after_a_pause() {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::postgres(dir.path()).await;
    let api = Api::start(&backends);
    outage_on(&backends, "running").await;
    let id = api.submit_ok(&fixture("audio/tts_us_m6.wav")).await;
    let _worker = start_worker(&api, &backends).await;
    let done = api.wait_final(&id, JOB_TIMEOUT).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    let time = |field: &str| {
        done[field]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap()
    };
    // Three refusals, then pauses of 1, 2 and 4 s: the job starts at least 7 s after the
    // worker first tried (which is after submission).
    let waited = time("started_at") - time("created_at");
    assert!(
        waited >= chrono::TimeDelta::seconds(7),
        "started {waited} after submission"
    );
}
