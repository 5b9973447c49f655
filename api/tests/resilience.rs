//! Nothing submitted is lost, whatever stops: a worker killed mid-job, a worker asked to stop,
//! an API that crashes with jobs queued, a database that goes away. Real binaries, real
//! databases, real signals.

#[macro_use]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use common::{Api, Backends, Proxy, long_wav, start_worker_with, transcribe_cli_with};
use serde_json::Value;

on_both_databases!(
    a_killed_workers_job_is_finished_once_by_another,
    sigterm_lets_the_running_job_finish,
    sigterm_past_the_timeout_hands_the_job_back,
    restarts_lose_and_repeat_no_job,
);

/// About four seconds of work for the fixture model: long enough to interrupt a worker
/// mid-job.
const LONG_SECS: u32 = 40 * 60;

/// Long files whole, not in chunks: these tests time signals against a job of known length,
/// and on the CPU the test model reads 40 minutes whole (local attention) several times
/// faster than in two-minute chunks of full attention.
const WHOLE: (&str, &str) = ("WARBLE_CHUNK_SECONDS", "0");
/// A worker with one job in hand.
const ONE_AT_A_TIME: (&str, &str) = ("WARBLE_CONCURRENCY", "1");

/// The orphan timeout the tests configure (`Backends::apply`): 1 s heartbeats, 3 missed.
const ORPHAN_TIMEOUT: Duration = Duration::from_secs(3);

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Submits `file` and waits until a worker has started on it.
async fn running_job(api: &Api, file: &Path) -> String {
    let id = api.submit_ok(file).await;
    api.wait_until(&id, JOB_TIMEOUT, |job| job["status"] == "running")
        .await;
    id
}

/// Waits until a worker has started `id` for the `attempt`th time.
async fn wait_for_attempt(api: &Api, id: &str, attempt: u32) {
    api.wait_until(id, JOB_TIMEOUT, |job| job["attempts"] == attempt)
        .await;
}

fn time(job: &Value, field: &str) -> DateTime<Utc> {
    job[field].as_str().unwrap().parse().unwrap()
}

/// The transcript stored for `id` is the one `worker transcribe` gives for `file`.
async fn assert_transcript_is_the_engines(api: &Api, id: &str, file: &Path) {
    let stored = api.get_json(&format!("/v1/jobs/{id}/transcript")).await;
    let expected = transcribe_cli_with(file, &[WHOLE]);
    assert_eq!(stored["text"], expected["text"]);
    assert_eq!(stored["words"], expected["words"]);
}

async fn a_killed_workers_job_is_finished_once_by_another(backends: Backends, dir: &Path) {
    let api = Api::start(&backends);
    let file = long_wav(dir, LONG_SECS);
    let first = start_worker_with(&api, &backends, &[WHOLE]).await;
    let id = running_job(&api, &file).await;
    first.signal("KILL");
    drop(first);
    let killed = Instant::now();

    let second = start_worker_with(&api, &backends, &[WHOLE]).await;
    wait_for_attempt(&api, &id, 2).await;
    let taken_after = killed.elapsed();
    // Bounded by the orphan timeout, one heartbeat of the new worker and its start-up.
    assert!(
        taken_after < ORPHAN_TIMEOUT + Duration::from_secs(10),
        "taken again after {taken_after:?}"
    );
    let done = api.wait_final(&id, JOB_TIMEOUT).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2);
    eprintln!("killed worker's job taken again after {taken_after:?}");

    // One stored result, and nobody runs the job again. The API shows a start (attempts),
    // but only the log shows a delivery the worker refused because the job had finished:
    // wait for the success line, then see that no other line about the job follows.
    second.wait_for(&format!("job succeeded job={id}"), JOB_TIMEOUT);
    std::thread::sleep(ORPHAN_TIMEOUT + Duration::from_secs(1));
    assert_eq!(second.count_new(&format!("job={id}")), 0);
    assert_eq!(api.get_json(&format!("/v1/jobs/{id}")).await["attempts"], 2);
    assert_transcript_is_the_engines(&api, &id, &file).await;
}

async fn sigterm_lets_the_running_job_finish(backends: Backends, dir: &Path) {
    let api = Api::start(&backends);
    // Time enough for the job to finish on a busy two-core machine: what is tested is that the
    // worker waits for it.
    let mut worker = start_worker_with(
        &api,
        &backends,
        &[WHOLE, ("WARBLE_SHUTDOWN_TIMEOUT_SECS", "110")],
    )
    .await;
    let id = running_job(&api, &long_wav(dir, LONG_SECS)).await;
    let asked = Utc::now();
    worker.signal("TERM");
    let status = worker.wait_exit(JOB_TIMEOUT);
    assert!(status.success(), "{status}");

    let job = api.get_json(&format!("/v1/jobs/{id}")).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["attempts"], 1);
    assert!(
        time(&job, "finished_at") > asked,
        "the job finished after the signal"
    );
    let workers = api.get_json("/v1/workers").await;
    assert_eq!(workers["workers"].as_array().unwrap().len(), 0, "{workers}");
}

async fn sigterm_past_the_timeout_hands_the_job_back(backends: Backends, dir: &Path) {
    let api = Api::start(&backends);
    let file = long_wav(dir, LONG_SECS);
    let mut first = start_worker_with(
        &api,
        &backends,
        &[WHOLE, ("WARBLE_SHUTDOWN_TIMEOUT_SECS", "1")],
    )
    .await;
    let id = running_job(&api, &file).await;
    let asked = Instant::now();
    first.signal("TERM");
    first.wait_exit(Duration::from_secs(10));
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopped after {:?}",
        asked.elapsed()
    );
    assert_eq!(
        api.get_json(&format!("/v1/jobs/{id}")).await["status"],
        "running"
    );

    let _second = start_worker_with(&api, &backends, &[WHOLE]).await;
    wait_for_attempt(&api, &id, 2).await;
    let done = api.wait_final(&id, JOB_TIMEOUT).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2);
}

async fn restarts_lose_and_repeat_no_job(backends: Backends, dir: &Path) {
    let api = Api::start(&backends);
    // One job at a time, a little work each: most are still queued when the processes stop,
    // however fast the machine.
    let mut worker = start_worker_with(&api, &backends, &[WHOLE, ONE_AT_A_TIME]).await;
    let file = long_wav(dir, 60);
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(api.submit_ok(&file).await);
    }
    api.wait_final(&ids[0], JOB_TIMEOUT).await;
    worker.signal("TERM");
    worker.wait_exit(JOB_TIMEOUT);
    api.process.signal("KILL");
    drop(api);

    let api = Api::start(&backends);
    let queued = api.get_json("/v1/jobs?status=queued").await;
    assert!(
        !queued["jobs"].as_array().unwrap().is_empty(),
        "jobs were queued across the restart"
    );
    let _worker = start_worker_with(&api, &backends, &[WHOLE]).await;
    // Each start counts an attempt: one each, none lost or run twice across the restarts.
    for id in &ids {
        let done = api.wait_final(id, JOB_TIMEOUT).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["attempts"], 1, "{done}");
    }
}

/// Postgres goes away under a running platform and comes back: the API answers 503 with a
/// clear error and records nothing meanwhile, the worker waits instead of dying, and the
/// jobs queued before the outage are all transcribed after it.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_outage_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let direct = Backends::postgres(dir.path()).await;
    let mut url = reqwest::Url::parse(&direct.database_url).unwrap();
    let target = (url.host_str().unwrap(), url.port().unwrap_or(5432));
    let target = tokio::net::lookup_host(target)
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = Proxy::start(target).await;
    url.set_port(Some(proxy.address.port())).unwrap();
    url.set_host(Some(&proxy.address.ip().to_string())).unwrap();
    let backends = Backends {
        database_url: url.to_string(),
        ..direct
    };
    let api = Api::start(&backends);
    let mut worker = start_worker_with(&api, &backends, &[WHOLE]).await;
    let speech = common::fixture("audio/tts_us_m6.wav");
    let before = api.submit_ok(&speech).await;
    assert_eq!(
        api.wait_final(&before, JOB_TIMEOUT).await["status"],
        "succeeded"
    );
    let queued: Vec<String> = [
        api.submit_ok(&long_wav(dir.path(), 10 * 60)).await,
        api.submit_ok(&speech).await,
    ]
    .into();

    proxy.cut();
    let ready = api.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let response = api.submit(&speech, &[], None).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    // A server error still carries the security headers, and its request id (in the body,
    // to quote) is the response's; nothing of the database's address or its error shows.
    common::assert_security_headers(&response);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let text = response.text().await.unwrap();
    let port = proxy.address.port().to_string();
    for internal in ["postgres", "127.0.0.1", port.as_str(), "sqlx", "/"] {
        assert!(
            !text.to_lowercase().contains(internal),
            "{internal:?} leaked: {text}"
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    assert_eq!(body["error"]["request_id"], request_id.as_str());
    std::thread::sleep(Duration::from_secs(8));
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker waits out the outage"
    );
    proxy.restore();

    for id in &queued {
        let done = api.wait_final(id, JOB_TIMEOUT).await;
        assert_eq!(done["status"], "succeeded", "{done}");
    }
    let page = api.get_json("/v1/jobs").await;
    assert_eq!(
        page["jobs"].as_array().unwrap().len(),
        3,
        "the refused upload left no job"
    );
    let ready = api.get("/ready").await;
    assert_eq!(ready.status(), 200);
    assert!(worker.child.try_wait().unwrap().is_none());
}

/// A worker running several jobs at once (`--concurrency`) reports every one of them in its
/// heartbeat; before, `GET /v1/workers` showed only the first.
#[tokio::test(flavor = "multi_thread")]
async fn a_worker_reports_every_job_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::local(dir.path());
    let api = Api::start(&backends);
    let file = long_wav(dir.path(), LONG_SECS);
    let _worker = start_worker_with(&api, &backends, &[WHOLE, ("WARBLE_CONCURRENCY", "2")]).await;
    let mut jobs = vec![api.submit_ok(&file).await, api.submit_ok(&file).await];
    jobs.sort();
    let deadline = Instant::now() + JOB_TIMEOUT;
    loop {
        let listed = api.get_json("/v1/workers").await;
        let worker = &listed["workers"][0];
        let mut held: Vec<String> =
            serde_json::from_value(worker["current_jobs"].clone()).unwrap_or_default();
        held.sort();
        if held == jobs {
            assert!(jobs.contains(&worker["current_job"].as_str().unwrap().to_string()));
            break;
        }
        assert!(Instant::now() < deadline, "{listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for id in &jobs {
        api.delete(&format!("/v1/jobs/{id}")).await;
    }
}
