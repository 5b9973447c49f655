//! Webhook benchmark: `--jobs` real jobs (the test model, one worker) finish while two
//! endpoints on a loopback receiver subscribe to `job.succeeded`. Measures the deliveries per
//! second from the first job's completion to the last receipt, and the time from each job's
//! completion (the event's timestamp, written with the job's final state) to its receipt;
//! counts lost and duplicated deliveries by `webhook-id`. On SQLite and on Postgres.
//!
//! Live, the rate follows the jobs. A second phase measures the dispatcher's own capacity:
//! the same number of jobs finish while the API's dispatcher sleeps, and a second API process
//! then sends the backlog; its rate is deliveries / (its start to the last receipt).
//!
//! ```sh
//! cargo build --release -p warble-worker && cargo bench -p warble-api --bench webhooks -- --write docs/benchmarks.md
//! ```

#[path = "../tests/common/mod.rs"]
mod common;
// Only its CPU description is used here.
#[allow(dead_code)]
#[path = "../../tools/bench/host.rs"]
mod host;
#[path = "../../tools/bench/section.rs"]
mod section;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use common::receiver::Receiver;
use common::{Api, Backends, fixture, start_worker};
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(Debug, Parser)]
struct Args {
    /// Jobs per database.
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    /// Markdown file whose webhook section is replaced with the results.
    #[arg(long)]
    write: Option<PathBuf>,
    /// cargo passes `--bench` to bench targets.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Endpoints per job.
const ENDPOINTS: [&str; 2] = ["/a", "/b"];

struct Measured {
    database: &'static str,
    backlog_rate: f64,
    deliveries: usize,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    lost: usize,
    duplicated: usize,
}

fn main() {
    let args = Args::parse();
    common::ECHO_LOGS.store(false, Ordering::Relaxed);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        for database in ["sqlite", "postgres"] {
            let dir = tempfile::tempdir().unwrap();
            let mut m = run(&args, database, &reaching_loopback(database, dir.path()).await).await;
            let dir = tempfile::tempdir().unwrap();
            m.backlog_rate = backlog(&args, &reaching_loopback(database, dir.path()).await).await;
            println!(
                "{database}: {} deliveries, {:.0}/s, completion to receipt p50 {:.0} ms p99 {:.0} ms max {:.0} ms, lost {}, duplicated {}; backlog {:.0}/s",
                m.deliveries, m.rate, m.p50_ms, m.p99_ms, m.max_ms, m.lost, m.duplicated, m.backlog_rate
            );
            results.push(m);
        }
        results
    });
    if let Some(path) = &args.write {
        section::write_section(path, "webhook-bench", &markdown(&args, &results));
    }
}

/// A fresh `database` whose API may send webhooks to the loopback receiver.
async fn reaching_loopback(database: &str, dir: &std::path::Path) -> Backends {
    let mut backends = Backends::named(database, dir).await;
    backends
        .env
        .push(("WARBLE_WEBHOOK_ALLOW_PRIVATE".into(), "true".into()));
    backends
}

/// Registers the endpoints on `receiver`.
async fn register(api: &Api, receiver: &Receiver) {
    for path in ENDPOINTS {
        let response = api
            .client
            .post(api.url("/v1/webhooks"))
            .json(&json!({ "url": receiver.url(path), "events": ["job.succeeded"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
}

/// Submits `count` jobs; their ids.
async fn submit(api: &Api, count: usize) -> Vec<String> {
    let file = fixture("audio/tts_us_m6.wav");
    futures::stream::iter(0..count)
        .map(|_| api.submit_ok(&file))
        .buffer_unordered(8)
        .collect()
        .await
}

/// Waits until `receiver` has `count` requests (at most 10 minutes).
async fn wait_for(receiver: &Receiver, count: usize) {
    let mut waited = Duration::ZERO;
    while receiver.all().len() < count && waited < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += Duration::from_millis(20);
    }
}

async fn run(args: &Args, database: &'static str, backends: &Backends) -> Measured {
    let receiver = Receiver::start().await;
    let api = Api::start(backends);
    register(&api, &receiver).await;
    let _worker = start_worker(&api, backends).await;
    let jobs = submit(&api, args.jobs).await;
    let expected = jobs.len() * ENDPOINTS.len();
    wait_for(&receiver, expected).await;
    // Anything sent twice would arrive by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = receiver.all();
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    let mut per_job: HashMap<(String, String), usize> = HashMap::new();
    let mut latencies = Vec::new();
    let mut first_event: Option<DateTime<Utc>> = None;
    for r in &got {
        *per_id.entry(&r.id).or_default() += 1;
        let body: Value = r.json();
        let job = body["data"]["job_id"].as_str().unwrap().to_string();
        *per_job.entry((r.path.clone(), job)).or_default() += 1;
        let event: DateTime<Utc> = body["timestamp"].as_str().unwrap().parse().unwrap();
        first_event = Some(first_event.map_or(event, |f| f.min(event)));
        latencies.push((r.wall - event).num_microseconds().unwrap() as f64 / 1000.0);
    }
    let lost = jobs
        .iter()
        .flat_map(|job| ENDPOINTS.map(|p| (p.to_string(), job.clone())))
        .filter(|key| !per_job.contains_key(key))
        .count();
    let duplicated = per_id.values().map(|n| n - 1).sum();
    latencies.sort_by(f64::total_cmp);
    let last = got.iter().map(|r| r.wall).max().unwrap();
    let span = (last - first_event.unwrap()).num_milliseconds() as f64 / 1000.0;
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    Measured {
        database,
        backlog_rate: 0.0,
        deliveries: got.len(),
        rate: got.len() as f64 / span,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        lost,
        duplicated,
    }
}

/// The dispatcher's capacity: jobs finish while the first API's dispatcher sleeps (an hour's
/// poll interval), then a second API process sends the backlog. Deliveries per second.
async fn backlog(args: &Args, backends: &Backends) -> f64 {
    let receiver = Receiver::start().await;
    let mut asleep = backends.clone();
    asleep
        .env
        .push(("WARBLE_WEBHOOK_POLL_MS".into(), "3600000".into()));
    let api = Api::start(&asleep);
    register(&api, &receiver).await;
    let worker = start_worker(&api, backends).await;
    let jobs = submit(&api, args.jobs).await;
    for job in &jobs {
        api.wait_final(job, Duration::from_secs(600)).await;
    }
    drop(worker);
    assert!(receiver.all().is_empty(), "the first dispatcher sleeps");
    let started = std::time::Instant::now();
    let _sender = Api::start(backends);
    wait_for(&receiver, jobs.len() * ENDPOINTS.len()).await;
    let last = receiver.all().iter().map(|r| r.at).max().unwrap();
    receiver.all().len() as f64 / (last - started).as_secs_f64()
}

fn markdown(args: &Args, results: &[Measured]) -> String {
    let (cpu, cores) = host::cpu();
    let mut s = format!(
        "Measured on {cpu}, {cores} cores: {} jobs of the test model finished by one worker, \
         each delivered (`job.succeeded`) to two endpoints of a receiver on loopback that \
         answers 200 at once; release builds, dispatcher poll interval 200 ms (the default). \
         Rate: deliveries / (first completion to last receipt). Latency: from the event's \
         timestamp, written with the job's final state, to the receipt. Lost and duplicated \
         are counted by job and endpoint, and by `webhook-id`. Backlog: the same jobs finish \
         while the dispatcher sleeps; a second API process then sends all the deliveries, \
         from its start (which includes starting the process) to the last receipt: the \
         dispatcher's capacity (16 requests in flight). Command:\n\n```sh\n\
         cargo build --release -p warble-worker && \
         cargo bench -p warble-api --bench webhooks -- --write docs/benchmarks.md\n```\n\n\
         | database | deliveries | deliveries/s live | p50 | p99 | max | lost | duplicated | backlog deliveries/s |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        args.jobs
    );
    for m in results {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} ms | {:.0} ms | {:.0} ms | {} | {} | {:.0} |\n",
            m.database,
            m.deliveries,
            m.rate,
            m.p50_ms,
            m.p99_ms,
            m.max_ms,
            m.lost,
            m.duplicated,
            m.backlog_rate
        ));
    }
    s
}
