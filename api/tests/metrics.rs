//! Prometheus metrics (issue 18) from real `api` and `worker` processes, each on its own
//! `WARBLE_METRICS_LISTEN`, parsed by the official Python client's OpenMetrics parser
//! (`tools/metrics/parse.py`): the counters move as jobs run, webhooks are delivered and
//! requests are answered, and the database's figures (jobs by status, queue depth) follow;
//! queued jobs show their place in the queue.

#[macro_use]
mod common;

use std::path::Path;
use std::time::Duration;

use common::receiver::Receiver;
use common::{Api, Backends, Process, fixture, start_worker};
use serde_json::{Value, json};

/// Where a process serves its metrics, from its log.
fn metrics_url(process: &Process) -> String {
    let line = process.wait_for("serving metrics", Duration::from_secs(30));
    let address = line
        .split("address=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the line names the address");
    format!("http://{address}/metrics")
}

/// The samples of one scrape, parsed by `prometheus_client`.
async fn scrape(url: &str) -> Vec<Value> {
    let response = reqwest::get(url).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = response.text().await.unwrap();
    let python = common::tools_python("prometheus_client", "pip install prometheus-client==0.26.0");
    let out = common::run_tool(&python, "metrics/parse.py", &[], text.as_bytes());
    serde_json::from_slice::<Vec<Value>>(&out).unwrap()
}

/// The value of the sample `name` whose labels include `labels`; 0 if there is none.
fn value(samples: &[Value], name: &str, labels: Value) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .find(|s| {
            labels
                .as_object()
                .unwrap()
                .iter()
                .all(|(k, v)| &s["labels"][k] == v)
        })
        .map_or(0.0, |s| s["value"].as_f64().unwrap())
}

async fn counters_and_queue_positions_follow_the_jobs(mut backends: Backends, _dir: &Path) {
    backends
        .env
        .push(("WARBLE_METRICS_LISTEN".into(), "127.0.0.1:0".into()));
    backends
        .env
        .push(("WARBLE_WEBHOOK_ALLOW_PRIVATE".into(), "true".into()));
    let receiver = Receiver::start().await;
    let api = Api::start(&backends);
    let api_metrics = metrics_url(&api.process);

    // Before any job: nothing queued, nothing done.
    let before = scrape(&api_metrics).await;
    assert_eq!(value(&before, "warble_queue_depth", json!({})), 0.0);
    assert_eq!(
        value(&before, "warble_jobs", json!({"status": "succeeded"})),
        0.0
    );
    let response = api
        .client
        .post(api.url("/v1/webhooks"))
        .json(&json!({"url": receiver.url("/hook"), "events": ["job.succeeded"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    // Two jobs wait in the queue until a worker comes.
    let mut ids = Vec::new();
    for audio in ["audio/tts_us_m6.wav", "audio/tts_rp_m7.wav"] {
        ids.push(api.submit_ok(&fixture(audio)).await);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let queued = scrape(&api_metrics).await;
    assert_eq!(value(&queued, "warble_queue_depth", json!({})), 2.0);
    assert!(value(&queued, "warble_queue_oldest_age_seconds", json!({})) >= 1.0);
    assert_eq!(
        value(&queued, "warble_jobs", json!({"status": "queued"})),
        2.0
    );
    assert_eq!(
        value(
            &queued,
            "warble_http_requests_total",
            json!({"method": "POST", "route": "/v1/jobs", "status": "202"})
        ),
        2.0
    );

    // Each queued job shows its place in the queue, oldest first, also in the list.
    for (place, id) in ids.iter().enumerate() {
        let job = api.get_json(&format!("/v1/jobs/{id}")).await;
        assert_eq!(job["queue_position"], place + 1, "{job}");
    }
    let listed = api.get_json("/v1/jobs").await;
    let positions: Vec<&Value> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| &j["queue_position"])
        .collect();
    assert_eq!(positions, [&json!(2), &json!(1)], "newest first");

    let worker = start_worker(&api, &backends).await;
    let worker_metrics = metrics_url(&worker);
    let mut audio = 0.0;
    for id in &ids {
        let job = api.wait_final(id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded");
        assert!(job.get("queue_position").is_none(), "{job}");
        audio += job["duration"].as_f64().unwrap();
    }
    receiver.wait_for("/hook", 2, Duration::from_secs(30)).await;

    let done = scrape(&worker_metrics).await;
    assert_eq!(
        value(
            &done,
            "warble_worker_jobs_total",
            json!({"outcome": "succeeded"})
        ),
        2.0
    );
    assert_eq!(
        value(&done, "warble_worker_job_latency_seconds_count", json!({})),
        2.0
    );
    assert_eq!(
        value(&done, "warble_worker_job_duration_seconds_count", json!({})),
        2.0
    );
    assert!((value(&done, "warble_worker_audio_seconds_total", json!({})) - audio).abs() < 1e-6);
    let speed = value(&done, "warble_worker_speed", json!({"device": "cpu"}));
    assert!(speed > 0.0, "{speed}");

    // The dispatcher counts its attempts once they are recorded.
    let mut delivered = 0.0;
    for _ in 0..50 {
        let after = scrape(&api_metrics).await;
        delivered = value(
            &after,
            "warble_webhook_deliveries_total",
            json!({"outcome": "delivered"}),
        );
        if delivered == 2.0 {
            assert_eq!(value(&after, "warble_queue_depth", json!({})), 0.0);
            assert_eq!(
                value(&after, "warble_jobs", json!({"status": "succeeded"})),
                2.0
            );
            assert_eq!(
                value(&after, "warble_worker_jobs", json!({"device": "cpu"})),
                0.0
            );
            assert!(
                after
                    .iter()
                    .any(|s| s["name"] == "warble_worker_jobs" && s["labels"]["model"] == "hybrid"),
                "the live worker is listed"
            );
            assert!(
                value(
                    &after,
                    "warble_http_requests_total",
                    json!({"method": "GET", "route": "/v1/jobs/{id}", "status": "200"})
                ) >= 2.0
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("webhook deliveries counted: {delivered}");
}

on_both_databases!(counters_and_queue_positions_follow_the_jobs);
