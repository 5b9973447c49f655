//! Webhook benchmark: `--jobs` real jobs (the test model, one worker) finish while two
//! endpoints on a loopback receiver subscribe to `job.succeeded`. Measures the deliveries per
//! second from the first job's completion to the last receipt, and the time from each job's
//! completion (the event's timestamp, written with the job's final state) to its receipt;
//! counts lost and duplicated deliveries by `webhook-id`. On SQLite and on Postgres.
//!
//! ```sh
//! cargo build --release -p worker && cargo bench -p api --bench webhooks -- --write docs/benchmarks.md
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
            let mut backends = match database {
                "sqlite" => Backends::local(dir.path()),
                _ => Backends::postgres(dir.path())
                    .await
                    .expect("the benchmark needs Postgres (WARBLE_TEST_POSTGRES_URL)"),
            };
            backends
                .env
                .push(("WARBLE_WEBHOOK_ALLOW_PRIVATE".into(), "true".into()));
            let m = run(&args, database, &backends).await;
            println!(
                "{database}: {} deliveries, {:.0}/s, completion to receipt p50 {:.0} ms p99 {:.0} ms max {:.0} ms, lost {}, duplicated {}",
                m.deliveries, m.rate, m.p50_ms, m.p99_ms, m.max_ms, m.lost, m.duplicated
            );
            results.push(m);
        }
        results
    });
    if let Some(path) = &args.write {
        section::write_section(path, "webhook-bench", &markdown(&args, &results));
    }
}

async fn run(args: &Args, database: &'static str, backends: &Backends) -> Measured {
    let receiver = Receiver::start().await;
    let api = Api::start(backends);
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
    let _worker = start_worker(backends);
    let file = fixture("audio/tts_us_m6.wav");
    let jobs: Vec<String> = futures::stream::iter(0..args.jobs)
        .map(|_| api.submit_ok(&file))
        .buffer_unordered(8)
        .collect()
        .await;
    let expected = jobs.len() * ENDPOINTS.len();
    let mut waited = Duration::ZERO;
    while receiver.all().len() < expected && waited < Duration::from_secs(600) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        waited += Duration::from_millis(100);
    }
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
        deliveries: got.len(),
        rate: got.len() as f64 / span,
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        max_ms: at(1.0),
        lost,
        duplicated,
    }
}

fn markdown(args: &Args, results: &[Measured]) -> String {
    let (cpu, cores) = host::cpu();
    let mut s = format!(
        "Measured on {cpu}, {cores} cores: {} jobs of the test model finished by one worker, \
         each delivered (`job.succeeded`) to two endpoints of a receiver on loopback that \
         answers 200 at once; release builds, dispatcher poll interval 200 ms (the default). \
         Rate: deliveries / (first completion to last receipt). Latency: from the event's \
         timestamp, written with the job's final state, to the receipt. Lost and duplicated \
         are counted by job and endpoint, and by `webhook-id`. Command:\n\n```sh\n\
         cargo build --release -p worker && \
         cargo bench -p api --bench webhooks -- --write docs/benchmarks.md\n```\n\n\
         | database | deliveries | deliveries/s | p50 | p99 | max | lost | duplicated |\n\
         |---|---|---|---|---|---|---|---|\n",
        args.jobs
    );
    for m in results {
        s.push_str(&format!(
            "| {} | {} | {:.0} | {:.0} ms | {:.0} ms | {:.0} ms | {} | {} |\n",
            m.database, m.deliveries, m.rate, m.p50_ms, m.p99_ms, m.max_ms, m.lost, m.duplicated
        ));
    }
    s
}
