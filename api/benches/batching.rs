//! Batching benchmark: many concurrent short jobs through one CPU worker (release builds, the
//! real `api` and `worker` binaries, SQLite), with the model's batching across jobs and
//! without it, in one run.
//!
//! ```sh
//! cargo build --release -p warble-worker && cargo bench -p warble-api --bench batching -- --write docs/benchmarks.md
//! ```
//!
//! Three worker settings take the same jobs, uploaded all at once:
//! - **one at a time**: `WARBLE_CONCURRENCY=1`, each file its own encoder pass (the worker
//!   before issue 17);
//! - **concurrent, unbatched**: 8 jobs in hand, but passes of one item
//!   (`WARBLE_MAX_BATCH_SECONDS=0.01`): the platform's overlap without batching;
//! - **batched**: 8 jobs in hand, passes of up to 240 padded seconds (before this
//!   measurement, the CPU default).
//!
//! Throughput is jobs (and seconds of audio) over the time from the first upload to the last
//! result.

#[path = "../tests/common/mod.rs"]
mod common;
// Only its CPU description is used here.
#[allow(dead_code)]
#[path = "../../tools/bench/host.rs"]
mod host;
#[path = "../../tools/bench/section.rs"]
mod section;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Parser;
use common::{Api, Backends, fixture, start_worker_with};
use futures::StreamExt;
use serde_json::Value;

#[derive(Debug, Parser)]
struct Args {
    /// Jobs per setting: enough for half a minute of each, so that one slow second on a
    /// shared machine does not decide the comparison.
    #[arg(long, default_value_t = 1000)]
    jobs: usize,
    /// Markdown file whose batching section is replaced with the results.
    #[arg(long)]
    write: Option<PathBuf>,
    /// cargo passes `--bench` to bench targets.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The short files the jobs carry, in turn.
const AUDIO: [&str; 4] = [
    "audio/tts_us_m6.wav",
    "audio/tts_rp_m7.wav",
    "audio/tts_en_f5.wav",
    "audio/tts_us_f5_fast.wav",
];

/// The settings compared: name and worker environment.
const SETTINGS: [(&str, &[(&str, &str)]); 3] = [
    ("one at a time", &[("WARBLE_CONCURRENCY", "1")]),
    (
        "concurrent, unbatched",
        &[
            ("WARBLE_CONCURRENCY", "8"),
            ("WARBLE_MAX_BATCH_SECONDS", "0.01"),
        ],
    ),
    (
        "batched",
        &[
            ("WARBLE_CONCURRENCY", "8"),
            ("WARBLE_MAX_BATCH_SECONDS", "240"),
        ],
    ),
];

struct Measured {
    setting: &'static str,
    jobs_per_sec: f64,
    audio_per_sec: f64,
    mean_batch: f64,
}

fn main() {
    let args = Args::parse();
    common::ECHO_LOGS.store(false, Ordering::Relaxed);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let results: Vec<Measured> = runtime.block_on(async {
        let mut results = Vec::new();
        for (setting, env) in SETTINGS {
            let measured = run(&args, setting, env).await;
            println!(
                "{setting}: {:.1} jobs/s, {:.1} audio s/s, {:.1} chunks per pass",
                measured.jobs_per_sec, measured.audio_per_sec, measured.mean_batch
            );
            results.push(measured);
        }
        results
    });
    if let Some(path) = &args.write {
        section::write_section(path, "batching-bench", &markdown(&args, &results));
    }
}

async fn run(args: &Args, setting: &'static str, env: &[(&str, &str)]) -> Measured {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::local(dir.path());
    let api = Api::start(&backends);
    let mut env = env.to_vec();
    env.push(("WARBLE_LOG", "info,warble_parakeet=debug"));
    let worker = start_worker_with(&api, &backends, &env).await;
    let files: Vec<PathBuf> = AUDIO.iter().map(|rel| fixture(rel)).collect();
    let ids: Vec<String> = futures::stream::iter(0..args.jobs)
        .map(|i| {
            let file = files[i % files.len()].clone();
            let api = &api;
            async move { api.submit_ok(&file).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut audio = 0.0;
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    for id in &ids {
        let job = api.wait_final(id, Duration::from_secs(1200)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        audio += job["duration"].as_f64().unwrap();
        let (created, finished) = (time(&job, "created_at"), time(&job, "finished_at"));
        first = Some(first.map_or(created, |f| f.min(created)));
        last = Some(last.map_or(finished, |l| l.max(finished)));
    }
    let wall = (last.unwrap() - first.unwrap()).as_seconds_f64();
    let passes = common::pass_sizes(&worker.drain());
    Measured {
        setting,
        jobs_per_sec: ids.len() as f64 / wall,
        audio_per_sec: audio / wall,
        mean_batch: passes.iter().sum::<usize>() as f64 / passes.len().max(1) as f64,
    }
}

fn time(job: &Value, field: &str) -> DateTime<Utc> {
    job[field].as_str().unwrap().parse().unwrap()
}

fn markdown(args: &Args, results: &[Measured]) -> String {
    let (cpu, cores) = host::cpu();
    let baseline = results[0].jobs_per_sec;
    let mut s = format!(
        "Measured on {cpu}, {cores} cores, one CPU worker on SQLite, {} jobs per setting (the \
         four 2.8–4.3 s fixture recordings in turn, uploaded by 8 clients at once), \
         the test model (`hybrid.nemo`), release builds. Command:\n\n```sh\ncargo build --release -p warble-worker && \
         cargo bench -p warble-api --bench batching -- --write docs/benchmarks.md\n```\n\n\
         | worker setting | jobs/s | audio s/s | chunks per encoder pass | vs one at a time |\n\
         |---|---|---|---|---|\n",
        args.jobs
    );
    for m in results {
        s.push_str(&format!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.2}x |\n",
            m.setting,
            m.jobs_per_sec,
            m.audio_per_sec,
            m.mean_batch,
            m.jobs_per_sec / baseline
        ));
    }
    s
}
