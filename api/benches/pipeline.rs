//! Pipeline benchmark: the real `api` and `worker` binaries (release builds) with short jobs,
//! on SQLite and on Postgres, with one and with two workers; and the API's memory while it
//! receives a 100 MB upload (the default limit).
//!
//! ```sh
//! cargo build --release -p warble-worker && cargo bench -p warble-api --bench pipeline -- --write docs/benchmarks.md
//! ```
//!
//! Each configuration runs two phases on a fresh database:
//! - **throughput**: `--jobs` uploads as fast as `--clients` concurrent clients can send them,
//!   with the workers running; end-to-end throughput is jobs / (first upload to last result).
//! - **pickup**: `--jobs` uploads at a steady `--rate` per second, below what the workers can
//!   do, so the time from upload to start (`started_at - created_at`) is the queue's own
//!   latency rather than time spent waiting behind other jobs.
//!
//! The share outside inference is the part of the workers' time (workers x the throughput
//! phase's wall time) not spent in the model: queue, database, storage, audio decoding.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../../tools/bench/host.rs"]
mod host;
#[path = "../../tools/bench/section.rs"]
mod section;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use clap::Parser;
use common::{Api, Backends, Process, fixture, start_worker};
use futures::StreamExt;
use serde_json::Value;

#[derive(Debug, Parser)]
struct Args {
    /// Jobs per phase.
    #[arg(long, default_value_t = 500)]
    jobs: usize,
    /// Concurrent uploads in the throughput phase.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Uploads per second in the pickup phase.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Markdown file whose pipeline section is replaced with the results.
    #[arg(long)]
    write: Option<PathBuf>,
    /// cargo passes `--bench` to bench targets.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The short job every upload carries.
const AUDIO: &str = "audio/tts_us_m6.wav";

/// What one configuration measured.
struct Measured {
    database: &'static str,
    workers: usize,
    submit_rate: f64,
    throughput: f64,
    outside_inference: f64,
    overhead_ms: f64,
    pickup_p50_ms: f64,
    pickup_p99_ms: f64,
}

fn main() {
    let args = Args::parse();
    common::ECHO_LOGS.store(false, Ordering::Relaxed);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (results, upload) = runtime.block_on(async {
        let mut results = Vec::new();
        for database in ["sqlite", "postgres"] {
            for workers in [1, 2] {
                let dir = tempfile::tempdir().unwrap();
                let backends = Backends::named(database, dir.path()).await;
                let measured = configuration(&args, database, &backends, workers).await;
                println!(
                    "{database} x{workers}: submit {:.0}/s, throughput {:.1} jobs/s, {:.0}% outside inference ({:.1} ms/job), pickup p50 {:.0} ms p99 {:.0} ms",
                    measured.submit_rate,
                    measured.throughput,
                    measured.outside_inference * 100.0,
                    measured.overhead_ms,
                    measured.pickup_p50_ms,
                    measured.pickup_p99_ms
                );
                results.push(measured);
            }
        }
        (results, upload_memory().await)
    });
    println!(
        "100 MB upload: API RSS {} MiB before, peak {} MiB",
        upload.0 >> 20,
        upload.1 >> 20
    );
    if let Some(path) = &args.write {
        section::write_section(path, "pipeline-bench", &markdown(&args, &results, upload));
    }
}

async fn configuration(
    args: &Args,
    database: &'static str,
    backends: &Backends,
    workers: usize,
) -> Measured {
    let api = Api::start(backends);
    let mut pool: Vec<Process> = Vec::new();
    for _ in 0..workers {
        pool.push(start_worker(&api, backends).await);
    }
    let file = fixture(AUDIO);

    // Throughput: everything at once.
    let started = Instant::now();
    let ids: Vec<String> = futures::stream::iter(0..args.jobs)
        .map(|_| api.submit_ok(&file))
        .buffer_unordered(args.clients)
        .collect()
        .await;
    let submit_rate = args.jobs as f64 / started.elapsed().as_secs_f64();
    let jobs = finished(&api, &ids).await;
    let first = jobs.iter().map(|j| time(j, "created_at")).min().unwrap();
    let last = jobs.iter().map(|j| time(j, "finished_at")).max().unwrap();
    let wall = (last - first).as_seconds_f64();
    // The last success is logged just after it is stored.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let inference: f64 = pool
        .iter()
        .flat_map(|w| w.drain())
        .filter_map(|l| inference_secs(&l))
        .sum();
    let busy = wall * workers as f64;

    // Pickup: a steady trickle.
    let mut ids = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    for _ in 0..args.jobs {
        tick.tick().await;
        ids.push(api.submit_ok(&file).await);
    }
    let mut pickups: Vec<f64> = finished(&api, &ids)
        .await
        .iter()
        .map(|j| (time(j, "started_at") - time(j, "created_at")).as_seconds_f64() * 1000.0)
        .collect();
    pickups.sort_by(f64::total_cmp);

    Measured {
        database,
        workers,
        submit_rate,
        throughput: args.jobs as f64 / wall,
        outside_inference: 1.0 - inference / busy,
        overhead_ms: (busy - inference) / args.jobs as f64 * 1000.0,
        pickup_p50_ms: percentile(&pickups, 0.50),
        pickup_p99_ms: percentile(&pickups, 0.99),
    }
}

/// Waits for every job to succeed; their final records.
async fn finished(api: &Api, ids: &[String]) -> Vec<Value> {
    let mut jobs = Vec::new();
    for id in ids {
        let job = api.wait_final(id, Duration::from_secs(600)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        jobs.push(job);
    }
    jobs
}

/// The inference time a worker's "job succeeded" line reports.
fn inference_secs(line: &str) -> Option<f64> {
    if !line.contains("job succeeded") {
        return None;
    }
    let ms = line
        .split("inference_ms=")
        .nth(1)?
        .split_whitespace()
        .next()?;
    Some(ms.parse::<f64>().ok()? / 1000.0)
}

fn time(job: &Value, field: &str) -> DateTime<Utc> {
    job[field].as_str().unwrap().parse().unwrap()
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// The API's resident memory (bytes) before and at its peak while it receives a 100 MB
/// upload.
async fn upload_memory() -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::local(dir.path());
    let api = Api::start(&backends);
    // 16 kHz 16-bit mono: 3120 s is just under the default limit of 100 MB.
    let file = common::long_wav(dir.path(), 3120);
    assert!((99_000_000..=100_000_000).contains(&std::fs::metadata(&file).unwrap().len()));
    let pid = api.process.child.id();
    let before = host::status_bytes(&pid.to_string(), "VmRSS:");
    api.submit_ok(&file).await;
    (before, host::status_bytes(&pid.to_string(), "VmHWM:"))
}

fn markdown(args: &Args, results: &[Measured], upload: (u64, u64)) -> String {
    let (cpu, cores) = host::cpu();
    let mut s = format!(
        "Measured on {cpu}, {cores} cores, {} jobs per phase of the {:.1} s fixture `{AUDIO}` on the \
         test model (inference takes milliseconds, so the numbers are the platform's own cost), \
         {} concurrent uploads, pickup at {} uploads/s, release builds, `WARBLE_HEARTBEAT_SECS=1`, \
         poll interval 250 ms. Command:\n\n```sh\ncargo build --release -p warble-worker && \
         cargo bench -p warble-api --bench pipeline -- --write docs/benchmarks.md\n```\n\n\
         | database | workers | submit rate | throughput | outside inference | overhead per job | pickup p50 | pickup p99 |\n\
         |---|---|---|---|---|---|---|---|\n",
        args.jobs,
        audio_secs(&fixture(AUDIO)),
        args.clients,
        args.rate
    );
    for m in results {
        s.push_str(&format!(
            "| {} | {} | {:.0} jobs/s | {:.1} jobs/s | {:.0} % | {:.1} ms | {:.0} ms | {:.0} ms |\n",
            m.database,
            m.workers,
            m.submit_rate,
            m.throughput,
            m.outside_inference * 100.0,
            m.overhead_ms,
            m.pickup_p50_ms,
            m.pickup_p99_ms
        ));
    }
    s.push_str(&format!(
        "\nUpload streaming: the API's resident memory was {} MiB before a 100 MB upload and \
         peaked at {} MiB while receiving it (`VmHWM`).\n",
        upload.0 >> 20,
        upload.1 >> 20
    ));
    s
}

/// Duration of a 16 kHz 16-bit mono WAV, from its size.
fn audio_secs(path: &Path) -> f64 {
    (std::fs::metadata(path).unwrap().len() - 44) as f64 / 32_000.0
}
