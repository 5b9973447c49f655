//! Webhooks end to end: the real API and worker, and a real receiver on loopback. Every event
//! arrives once per destination with signatures an independent implementation accepts;
//! failures follow the retry schedule and show in the delivery log as `retrying`, then
//! `failed`; a killed API loses nothing; and by default no delivery can reach a private
//! address.

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::receiver::{Received, Receiver, Reply, verify_independently};
use common::{Api, Backends, error_of, fixture, make_key, start_worker};
use serde_json::{Value, json};

on_both_databases!(
    every_event_arrives_once_per_destination_signed,
    a_killed_api_redelivers_with_the_same_ids,
    two_replicas_send_each_delivery_once,
    two_replicas_send_a_slow_backlog_once,
    failing_deliveries_list_as_retrying_then_failed,
);

const WAIT: Duration = Duration::from_secs(60);

/// Lets webhooks reach the loopback receiver, with `extra` settings.
fn private(mut backends: Backends, extra: &[(&str, &str)]) -> Backends {
    backends
        .env
        .push(("WARBLE_WEBHOOK_ALLOW_PRIVATE".into(), "true".into()));
    for (k, v) in extra {
        backends.env.push((k.to_string(), v.to_string()));
    }
    backends
}

/// Registers an endpoint; returns `(id, secret)`.
async fn register(api: &Api, url: &str, events: &[&str]) -> (String, String) {
    let response = api
        .client
        .post(api.url("/v1/webhooks"))
        .json(&json!({ "url": url, "events": events, "description": "test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    (
        created["webhook"]["id"].as_str().unwrap().into(),
        created["secret"].as_str().unwrap().into(),
    )
}

/// `POST path` with an empty body; the JSON answer.
async fn post(api: &Api, path: &str) -> Value {
    let response = api.post(path).await;
    assert_eq!(response.status(), 200, "{path}");
    response.json().await.unwrap()
}

/// Submits the speech fixture with `callback_url`.
async fn submit_with_callback(api: &Api, callback_url: &str) -> reqwest::Response {
    api.submit(
        &fixture("audio/tts_us_m6.wav"),
        &[("callback_url", callback_url)],
        None,
    )
    .await
}

/// Submits a job (with `callback_url` if given) and cancels it while queued: `job.canceled`.
async fn cancel_one(api: &Api, callback_url: Option<&str>) -> String {
    let response = match callback_url {
        Some(url) => submit_with_callback(api, url).await,
        None => api.submit(&fixture("audio/tts_us_m6.wav"), &[], None).await,
    };
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let canceled = post(api, &format!("/v1/jobs/{id}/cancel")).await;
    assert_eq!(canceled["status"], "canceled");
    id
}

/// A WAV whose header declares twice the audio it holds: accepted, then failed by the worker.
fn truncated_wav(dir: &Path) -> std::path::PathBuf {
    let wav = std::fs::read(fixture("audio/tts_us_m6.wav")).unwrap();
    let path = dir.join("truncated.wav");
    std::fs::write(&path, &wav[..wav.len() / 2]).unwrap();
    path
}

/// Waits until `count` deliveries of the caller's tenant are in `status`; returns them.
async fn wait_for_status(api: &Api, status: &str, count: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let page = api
            .get_json(&format!("/v1/webhooks/deliveries?status={status}"))
            .await;
        let list = page["deliveries"].as_array().unwrap();
        if list.len() == count {
            return list.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A time of the API's, which must be RFC 3339.
fn time(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is no time"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .to_utc()
}

/// `(type, job id)` of each delivery.
fn events(received: &[Received]) -> Vec<(String, String)> {
    received
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["type"].as_str().unwrap().to_string(),
                body["data"]["job_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `received` holds exactly the `(type, job id)` pairs of `expected`, in any order.
fn assert_events(received: &[Received], expected: &[(&str, &String)]) {
    let mut got = events(received);
    got.sort();
    let mut expected: Vec<(String, String)> = expected
        .iter()
        .map(|(event, job)| (event.to_string(), job.to_string()))
        .collect();
    expected.sort();
    assert_eq!(got, expected);
}

async fn every_event_arrives_once_per_destination_signed(backends: Backends, dir: &Path) {
    let backends = private(backends, &[]);
    let receiver = Receiver::start().await;
    let admin = Api::start(&backends);
    let (_, secret) = make_key(&admin, "hooks", "user", Some("acme")).await;
    let api = admin.as_key(&secret);

    let (all_id, all_secret) = register(
        &api,
        &receiver.url("/all"),
        &["job.started", "job.succeeded", "job.failed", "job.canceled"],
    )
    .await;
    let (_, final_secret) = register(
        &api,
        &receiver.url("/final"),
        &["job.succeeded", "job.failed"],
    )
    .await;
    // A job's own callback URL needs the tenant's secret first.
    let callback = receiver.url("/cb");
    let response = submit_with_callback(&api, &callback).await;
    assert_eq!(
        error_of(response).await,
        (422, "webhook_secret_missing".into())
    );
    let first = post(&api, "/v1/webhooks/secret").await;
    // A first secret replaces nothing: no previous secret is signing until some time.
    assert_eq!(first["previous_secret_expires_at"], Value::Null, "{first}");
    let tenant_secret = first["secret"].as_str().unwrap().to_string();

    // Canceled while queued (no worker yet), then one success and one failure.
    let canceled = cancel_one(&api, Some(&callback)).await;
    let _worker = start_worker(&api, &backends).await;
    let response = submit_with_callback(&api, &callback).await;
    let succeeded = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let failed = api.submit_ok(&truncated_wav(dir)).await;
    for job in [&succeeded, &failed] {
        api.wait_final(job, WAIT).await;
    }

    let all = receiver.wait_for("/all", 5, WAIT).await;
    let fin = receiver.wait_for("/final", 2, WAIT).await;
    let cb = receiver.wait_for("/cb", 2, WAIT).await;
    // Once each: nothing more arrives.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.all().len(), 9, "{:?}", events(&receiver.all()));
    assert_events(
        &all,
        &[
            ("job.canceled", &canceled),
            ("job.started", &succeeded),
            ("job.succeeded", &succeeded),
            ("job.started", &failed),
            ("job.failed", &failed),
        ],
    );
    assert_events(
        &fin,
        &[("job.succeeded", &succeeded), ("job.failed", &failed)],
    );
    assert_events(
        &cb,
        &[("job.canceled", &canceled), ("job.succeeded", &succeeded)],
    );

    // The headers and the body.
    let ids: HashSet<String> = receiver.all().iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 9, "one webhook-id per delivery");
    let now = chrono::Utc::now().timestamp();
    for r in receiver.all() {
        assert!(r.id.starts_with("msg_"), "{}", r.id);
        let at: i64 = r.timestamp.parse().unwrap();
        assert!((now - at).abs() < 120, "{at}");
        assert!(r.signature.starts_with("v1,"));
        assert!(r.body.len() < 20_000);
        let body = r.json();
        let job = body["data"]["job_id"].as_str().unwrap();
        assert_eq!(body["data"]["links"]["job"], format!("/v1/jobs/{job}"));
        assert!(body["timestamp"].is_string());
        assert!(body["data"].get("transcript").is_none());
    }
    let failure = fin
        .iter()
        .find(|r| r.json()["type"] == "job.failed")
        .unwrap();
    assert_eq!(
        failure.json()["data"]["error"]["code"],
        "audio_decode_failed"
    );
    assert_eq!(failure.json()["data"]["status"], "failed");

    // An independent implementation accepts every signature.
    let secret_of = |r: &Received| match r.path.as_str() {
        "/all" => all_secret.clone(),
        "/final" => final_secret.clone(),
        _ => tenant_secret.clone(),
    };
    verify_independently(&receiver.all(), secret_of);

    // After a rotation both secrets verify, the new one and (during the grace) the old one.
    let rotated = post(&api, &format!("/v1/webhooks/{all_id}/rotate-secret")).await;
    assert!(
        rotated["previous_secret_expires_at"].is_string(),
        "{rotated}"
    );
    let new_secret = rotated["secret"].as_str().unwrap().to_string();
    let again = api.submit_ok(&fixture("audio/tts_us_m6.wav")).await;
    api.wait_final(&again, WAIT).await;
    let all = receiver.wait_for("/all", 7, WAIT).await;
    let after: Vec<Received> = all
        .into_iter()
        .filter(|r| r.json()["data"]["job_id"] == again.as_str())
        .collect();
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|r| r.signature.split(' ').count() == 2));
    verify_independently(&after, |_| new_secret.clone());
    verify_independently(&after, |_| all_secret.clone());

    // The delivery log, and another tenant sees none of it.
    let log = api
        .get_json(&format!("/v1/webhooks/{all_id}/deliveries"))
        .await;
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 7);
    for d in deliveries {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["last_status_code"], 200);
        assert!(d["last_latency_ms"].is_number());
    }
    let (_, other) = make_key(&admin, "other", "user", Some("globex")).await;
    let other = admin.as_key(&other);
    assert_eq!(
        error_of(other.get(&format!("/v1/webhooks/{all_id}")).await).await,
        (404, "not_found".into())
    );
    let theirs = other.get_json("/v1/webhooks/deliveries").await;
    assert_eq!(theirs["deliveries"].as_array().unwrap().len(), 0);
    // A tenant's endpoints are capped (2 registered so far), also against concurrent
    // creates: before the count and the insert were one transaction, several of 30 creates
    // racing for the last place saw room for it and all got in.
    for _ in 2..24 {
        register(&api, &receiver.url("/spare"), &["job.failed"]).await;
    }
    let create = || async {
        let response = api
            .client
            .post(api.url("/v1/webhooks"))
            .json(&json!({ "url": receiver.url("/one-more"), "events": ["job.failed"] }))
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    };
    let mut statuses = futures::future::join_all((0..30).map(|_| create())).await;
    statuses.sort();
    assert_eq!(statuses, [[201; 1].as_slice(), &[409; 29]].concat());
    let listed = api.get_json("/v1/webhooks").await;
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 25);
    let everything = admin.get_json("/v1/webhooks/deliveries?limit=100").await;
    assert_eq!(
        everything["deliveries"].as_array().unwrap().len(),
        12,
        "7 to /all, 3 to /final, 2 to /cb"
    );
}

/// Deliveries to a receiver that answers slowly; the API is killed while it sends them and
/// started again: every one arrives, with the ids it had, and only those in flight twice.
async fn a_killed_api_redelivers_with_the_same_ids(backends: Backends, _dir: &Path) {
    let backends = private(
        backends,
        &[
            ("WARBLE_WEBHOOK_TIMEOUT_SECS", "2"),
            ("WARBLE_WEBHOOK_RETRY_SCHEDULE", "1"),
        ],
    );
    let receiver = Receiver::start().await;
    receiver.plan("/slow", vec![Reply::Hang(Duration::from_millis(700)); 40]);
    let api = Api::start(&backends);
    // Registered after the jobs exist would miss them: register first, then make events.
    let (hook, _) = register(&api, &receiver.url("/slow"), &["job.canceled"]).await;
    let mut jobs = Vec::new();
    for _ in 0..20 {
        jobs.push(cancel_one(&api, None).await);
    }
    receiver.wait_for("/slow", 1, WAIT).await;
    api.process.signal("KILL");
    drop(api);
    let before_restart = receiver.received("/slow").len();
    let api = Api::start(&backends);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let log = api
            .get_json(&format!("/v1/webhooks/{hook}/deliveries?limit=100"))
            .await;
        let list = log["deliveries"].as_array().unwrap().clone();
        assert_eq!(list.len(), 20);
        if list.iter().all(|d| d["status"] == "delivered") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let got = receiver.received("/slow");
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *per_id.entry(r.id.clone()).or_default() += 1;
    }
    let jobs_seen: HashSet<String> = events(&got).into_iter().map(|(_, job)| job).collect();
    assert_eq!(
        jobs_seen,
        jobs.into_iter().collect::<HashSet<_>>(),
        "none lost"
    );
    assert_eq!(per_id.len(), 20, "one id per event");
    let twice = per_id.values().filter(|n| **n > 1).count();
    assert!(
        twice <= before_restart,
        "only deliveries in flight at the kill are sent again ({twice} > {before_restart})"
    );
}

/// Two API processes, so two dispatchers, on one database and a slow receiver: each
/// delivery is leased by one of them and arrives exactly once.
async fn two_replicas_send_each_delivery_once(backends: Backends, _dir: &Path) {
    let backends = private(backends, &[("WARBLE_WEBHOOK_POLL_MS", "20")]);
    let receiver = Receiver::start().await;
    receiver.plan("/both", vec![Reply::Hang(Duration::from_millis(50)); 100]);
    let replicas = [Api::start(&backends), Api::start(&backends)];
    register(&replicas[0], &receiver.url("/both"), &["job.canceled"]).await;
    let jobs = futures::future::join_all((0..40).map(|i| cancel_one(&replicas[i % 2], None))).await;
    let got = receiver.wait_for("/both", 40, WAIT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got_now = receiver.received("/both");
    assert_eq!(
        got_now.len(),
        40,
        "{} deliveries for 40 events",
        got_now.len()
    );
    let ids: HashSet<String> = got.iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), 40);
    let seen: HashSet<String> = events(&got).into_iter().map(|(_, job)| job).collect();
    assert_eq!(seen, jobs.into_iter().collect::<HashSet<_>>());
}

/// A backlog larger than one dispatcher sends at once, to a receiver that answers just
/// inside the timeout, with two replicas: each delivery arrives exactly once. Before leases
/// were taken only for rows about to be sent, a replica leased 64 rows but sent them 16 at a
/// time, so the last wave's leases expired while it waited and the other replica sent those
/// rows again (and its late records overwrote the other's).
async fn two_replicas_send_a_slow_backlog_once(backends: Backends, _dir: &Path) {
    const EVENTS: usize = 72;
    let backends = private(
        backends,
        &[
            ("WARBLE_WEBHOOK_TIMEOUT_SECS", "1"),
            ("WARBLE_WEBHOOK_POLL_MS", "20"),
        ],
    );
    let receiver = Receiver::start().await;
    receiver.plan(
        "/slow",
        vec![Reply::Hang(Duration::from_millis(900)); 4 * EVENTS],
    );
    // The events pile up while the first API's dispatcher sleeps (an hour's poll), so that
    // they are all due when the replicas start.
    let asleep = private(backends.clone(), &[("WARBLE_WEBHOOK_POLL_MS", "3600000")]);
    let api = Api::start(&asleep);
    let (hook, _) = register(&api, &receiver.url("/slow"), &["job.canceled"]).await;
    let mut jobs = HashSet::new();
    for _ in 0..EVENTS / 8 {
        let batch = futures::future::join_all((0..8).map(|_| cancel_one(&api, None))).await;
        jobs.extend(batch);
    }
    drop(api);
    let replicas = [Api::start(&backends), Api::start(&backends)];
    receiver.wait_for("/slow", EVENTS, WAIT).await;
    // Long enough for every lease taken so far (3 s) to have expired twice.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let got = receiver.received("/slow");
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in &got {
        *per_id.entry(r.id.clone()).or_default() += 1;
    }
    let twice: Vec<_> = per_id.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    assert_eq!(got.len(), EVENTS);
    let seen: HashSet<String> = events(&got).into_iter().map(|(_, job)| job).collect();
    assert_eq!(seen, jobs);
    // The log counts one attempt each: no replica recorded an attempt on a row it had lost.
    let log = replicas[0]
        .get_json(&format!("/v1/webhooks/{hook}/deliveries?limit=100"))
        .await;
    let list = log["deliveries"].as_array().unwrap();
    assert_eq!(list.len(), EVENTS);
    for delivery in list {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"], 1, "{delivery}");
    }
}

/// Three endpoints that fail, with a short retry schedule (8 s, then 1 s; 1 s timeout): one
/// refuses connections (a closed port), one answers 500, one does not answer in time. After
/// the first attempt each delivery lists as `retrying`, saying why in a few words and when
/// the next attempt is due; once the schedule is used up, as `failed`; and the API logs each
/// attempt in readable fields. Before, such deliveries stayed `pending` until the schedule ran
/// out (28 hours by default), so `?status=failed` showed nothing meanwhile; `?status=retrying`
/// was refused; and the log held the outcome's Rust debug form with Unix milliseconds.
async fn failing_deliveries_list_as_retrying_then_failed(backends: Backends, _dir: &Path) {
    let backends = private(
        backends,
        &[
            ("WARBLE_WEBHOOK_TIMEOUT_SECS", "1"),
            ("WARBLE_WEBHOOK_RETRY_SCHEDULE", "8,1"),
            ("WARBLE_WEBHOOK_POLL_MS", "50"),
        ],
    );
    let receiver = Receiver::start().await;
    receiver.plan("/down", vec![Reply::Status(500); 3]);
    receiver.plan("/hang", vec![Reply::Hang(Duration::from_secs(3)); 3]);
    // A port that was just free: nothing listens there once the listener is dropped.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let api = Api::start(&backends);
    // Endpoint id → (the reason the log gives, the status code).
    let mut expected = HashMap::new();
    for (url, reason, code) in [
        (
            format!("http://127.0.0.1:{closed}/hook"),
            "connection refused",
            Value::Null,
        ),
        (receiver.url("/down"), "HTTP 500", json!(500)),
        (receiver.url("/hang"), "timed out after 1 s", Value::Null),
    ] {
        let (id, _) = register(&api, &url, &["job.canceled"]).await;
        expected.insert(id, (reason, code));
    }
    let check = |delivery: &Value, attempts: i64| {
        let (reason, code) = &expected[delivery["webhook_id"].as_str().unwrap()];
        assert_eq!(delivery["last_error"], *reason, "{delivery}");
        assert_eq!(delivery["last_status_code"], *code, "{delivery}");
        assert_eq!(delivery["attempts"], attempts, "{delivery}");
        assert!(
            time(&delivery["last_attempt_at"]) <= Utc::now(),
            "{delivery}"
        );
    };
    cancel_one(&api, None).await;

    // After the first attempt: retrying, the next attempt ahead.
    let retrying = wait_for_status(&api, "retrying", 3).await;
    let now = Utc::now();
    for delivery in &retrying {
        check(delivery, 1);
        let next = time(&delivery["next_attempt_at"]);
        assert!(next > now, "{delivery}");
        assert!(next < now + chrono::TimeDelta::seconds(10), "{delivery}");
        assert!(next > time(&delivery["last_attempt_at"]), "{delivery}");
        assert_eq!(delivery["finished_at"], Value::Null, "{delivery}");
    }
    let pending = api.get_json("/v1/webhooks/deliveries?status=pending").await;
    assert_eq!(pending["deliveries"], json!([]), "all were attempted");

    // Given up after 1 + 2 attempts.
    for delivery in &wait_for_status(&api, "failed", 3).await {
        check(delivery, 3);
        assert_eq!(delivery["next_attempt_at"], Value::Null, "{delivery}");
        assert!(time(&delivery["finished_at"]) <= Utc::now(), "{delivery}");
    }
    let retrying = api
        .get_json("/v1/webhooks/deliveries?status=retrying")
        .await;
    assert_eq!(retrying["deliveries"], json!([]));

    // The log: one line per attempt, in fields a person (and a log search) can read.
    let log = api.process.drain();
    let refused: Vec<&String> = log
        .iter()
        .filter(|line| line.contains("error=connection refused"))
        .collect();
    let first = refused
        .iter()
        .find(|line| line.contains("attempt=1"))
        .unwrap_or_else(|| panic!("no first attempt logged: {refused:?}"));
    assert!(
        first.contains("webhook attempt failed; retrying"),
        "{first}"
    );
    assert!(first.contains("host=127.0.0.1"), "{first}");
    assert!(first.contains("retry_in="), "{first}");
    let next = first
        .split("next_attempt_at=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no next_attempt_at: {first}"));
    time(&json!(next));
    let last = refused
        .iter()
        .find(|line| line.contains("attempt=3"))
        .unwrap_or_else(|| panic!("no third attempt logged: {refused:?}"));
    assert!(last.contains("no retries left"), "{last}");
    for line in &log {
        assert!(!line.contains("Retry {"), "a debug dump: {line}");
    }
}

/// The retry schedule, compressed: 1 s (± 20 %) between attempts, three retries, 1 s timeout.
/// The gaps' upper bounds leave room for a loaded CI machine; the lower ones are exact.
#[tokio::test(flavor = "multi_thread")]
async fn failed_deliveries_are_retried_on_schedule() {
    let dir = tempfile::tempdir().unwrap();
    let backends = private(
        Backends::local(dir.path()),
        &[
            ("WARBLE_WEBHOOK_TIMEOUT_SECS", "1"),
            ("WARBLE_WEBHOOK_RETRY_SCHEDULE", "1,1,1"),
            ("WARBLE_WEBHOOK_POLL_MS", "50"),
        ],
    );
    let receiver = Receiver::start().await;
    receiver.plan("/flaky", vec![Reply::Status(500)]);
    receiver.plan("/gone", vec![Reply::Status(410)]);
    receiver.plan("/hang", vec![Reply::Hang(Duration::from_secs(3))]);
    receiver.plan("/busy", vec![Reply::RetryAfter(429, 3)]);
    receiver.plan("/down", vec![Reply::Status(500); 10]);
    let api = Api::start(&backends);
    let mut hooks = HashMap::new();
    for path in ["/flaky", "/gone", "/hang", "/busy", "/down"] {
        let (id, _) = register(&api, &receiver.url(path), &["job.canceled"]).await;
        hooks.insert(path, id);
    }
    cancel_one(&api, None).await;

    let gap = |got: &[Received]| (got[1].at - got[0].at).as_secs_f64();
    let flaky = receiver.wait_for("/flaky", 2, WAIT).await;
    assert_eq!(flaky[0].id, flaky[1].id, "the same webhook-id on a retry");
    assert!((0.8..=2.0).contains(&gap(&flaky)), "{}", gap(&flaky));
    // Timed out after 1 s, retried 1 s (± 20 %) later.
    let hang = receiver.wait_for("/hang", 2, WAIT).await;
    assert!((1.8..=3.2).contains(&gap(&hang)), "{}", gap(&hang));
    // Retry-After: 3 beats the schedule's 1 s.
    let busy = receiver.wait_for("/busy", 2, WAIT).await;
    assert!((3.0..=4.2).contains(&gap(&busy)), "{}", gap(&busy));
    // Every attempt, then given up: 1 + 3 retries.
    let down = receiver.wait_for("/down", 4, WAIT).await;
    for pair in down.windows(2) {
        assert!((0.8..=2.0).contains(&gap(pair)), "{}", gap(pair));
    }
    let failed = wait_for_status(&api, "failed", 2).await;
    let down_delivery = failed
        .iter()
        .find(|d| d["webhook_id"] == hooks["/down"].as_str())
        .unwrap();
    assert_eq!(down_delivery["attempts"], 4);
    assert_eq!(down_delivery["last_status_code"], 500);
    let gone_delivery = failed
        .iter()
        .find(|d| d["webhook_id"] == hooks["/gone"].as_str())
        .unwrap();
    assert_eq!(gone_delivery["attempts"], 1);
    assert_eq!(gone_delivery["last_status_code"], 410);
    // 410 disabled the endpoint.
    let gone = api
        .get_json(&format!("/v1/webhooks/{}", hooks["/gone"]))
        .await;
    assert_eq!(gone["enabled"], false);
    assert!(gone["disabled_reason"].as_str().unwrap().contains("410"));
    for path in ["/flaky", "/hang", "/busy"] {
        let log = api
            .get_json(&format!("/v1/webhooks/{}/deliveries", hooks[path]))
            .await;
        assert_eq!(log["deliveries"][0]["status"], "delivered", "{path}: {log}");
        assert_eq!(log["deliveries"][0]["attempts"], 2, "{path}");
    }

    // A manual retry sends the failed delivery once more: attempted before, it is retrying.
    let id = down_delivery["id"].as_str().unwrap();
    let retried = post(&api, &format!("/v1/webhooks/deliveries/{id}/retry")).await;
    assert_eq!(retried["status"], "retrying", "{retried}");
    time(&retried["next_attempt_at"]);
    receiver.wait_for("/down", 5, WAIT).await;
    // A second event reaches every enabled endpoint, and not the disabled one.
    cancel_one(&api, None).await;
    receiver.wait_for("/flaky", 3, WAIT).await;
    receiver.wait_for("/hang", 3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received("/gone").len(), 1);
}

/// By default no delivery can reach a private address: refused when registered or
/// submitted, and again when sent; nothing reaches the receiver.
#[tokio::test(flavor = "multi_thread")]
async fn private_destinations_are_refused_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let closed = Backends::local(dir.path());
    let receiver = Receiver::start().await;
    let port = receiver.address.port();
    let api = Api::start(&closed);
    post(&api, "/v1/webhooks/secret").await;
    let targets = [
        format!("http://localhost:{port}/x"),
        format!("http://127.0.0.1:{port}/x"),
        format!("http://127.1:{port}/x"),
        format!("http://2130706433:{port}/x"),
        format!("http://0x7f000001:{port}/x"),
        format!("http://[::1]:{port}/x"),
        format!("http://[::ffff:127.0.0.1]:{port}/x"),
        format!("http://0.0.0.0:{port}/x"),
        "http://10.0.0.1/x".to_string(),
        "http://169.254.169.254/latest/meta-data/".to_string(),
        "file:///etc/passwd".to_string(),
    ];
    for target in &targets {
        let response = api
            .client
            .post(api.url("/v1/webhooks"))
            .json(&json!({ "url": target, "events": ["job.succeeded"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(response).await,
            (422, "invalid_webhook_url".into()),
            "{target}"
        );
        let response = submit_with_callback(&api, target).await;
        assert_eq!(
            error_of(response).await,
            (422, "invalid_callback_url".into()),
            "{target}"
        );
    }
    assert_eq!(api.get_json("/v1/webhooks").await["webhooks"], json!([]));
    drop(api);

    // With private addresses allowed, a redirect to loopback is not followed.
    let open = private(
        Backends::local(dir.path()),
        &[("WARBLE_WEBHOOK_RETRY_SCHEDULE", "1")],
    );
    let api = Api::start(&open);
    receiver.plan("/redirect", vec![Reply::Redirect(receiver.url("/target"))]);
    let (hook, _) = register(&api, &receiver.url("/redirect"), &["job.canceled"]).await;
    cancel_one(&api, None).await;
    receiver.wait_for("/redirect", 1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = api
        .get_json(&format!("/v1/webhooks/{hook}/deliveries"))
        .await;
    assert_eq!(log["deliveries"][0]["last_status_code"], 302, "{log}");
    assert_eq!(log["deliveries"][0]["status"], "retrying");
    api.process.signal("KILL");
    drop(api);

    // Closed again, the retry is refused when it is due: checked at send time too.
    let api = Api::start(&closed);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let log = api
            .get_json(&format!("/v1/webhooks/{hook}/deliveries"))
            .await;
        if log["deliveries"][0]["status"] == "failed" {
            let error = log["deliveries"][0]["last_error"].as_str().unwrap();
            assert!(error.contains("not a public address"), "{error}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(receiver.received("/redirect").len(), 1);
    assert!(receiver.received("/target").is_empty());
    assert!(receiver.received("/x").is_empty());
}
