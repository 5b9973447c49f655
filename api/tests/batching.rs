//! One worker, many jobs at once (issue 17): their chunks share the model's encoder passes,
//! each job's transcript is what the file gives alone, a long job's progress advances chunk by
//! chunk with an estimated completion time, a job canceled mid-way gives up its place without
//! disturbing the others, and the worker reports its device memory.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{Api, Backends, fixture, long_wav, start_worker_with, transcribe_cli_with};
use serde_json::Value;

/// Small chunks and passes, so that a minute and a half of audio is many chunks and passes
/// hold several of them.
const WORKER_ENV: [(&str, &str); 6] = [
    ("WARBLE_CONCURRENCY", "8"),
    ("WARBLE_CHUNK_SECONDS", "6"),
    ("WARBLE_CHUNK_OVERLAP_SECONDS", "2"),
    ("WARBLE_MAX_BATCH_SECONDS", "40"),
    // Progress written often enough to see it move however fast the machine.
    ("WARBLE_PROGRESS_INTERVAL_MS", "100"),
    ("WARBLE_LOG", "info,warble_parakeet=debug"),
];

#[tokio::test]
async fn concurrent_jobs_share_passes_progress_by_chunk_and_a_canceled_one_leaves_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::local(dir.path());
    let api = Api::start(&backends);
    let worker = start_worker_with(&api, &backends, &WORKER_ENV).await;

    // 150 and 300 chunks of 6 s every 4 s: seconds of work for the test model, enough for a
    // few progress reports (one a second) and for a cancel to land mid-way.
    let long = long_wav(dir.path(), 600);
    let doomed_audio = long_wav(dir.path(), 1200);
    let shorts = [
        "audio/tts_us_m6.wav",
        "audio/tts_rp_m7.wav",
        "audio/tts_en_f5.wav",
        "audio/alsa_noise.wav",
    ]
    .map(fixture);
    // The doomed job first, so that it is in hand the whole time the long one runs.
    let doomed = api.submit_ok(&doomed_audio).await;
    let long_id = api.submit_ok(&long).await;
    let mut short_ids = Vec::new();
    for file in &shorts {
        short_ids.push(api.submit_ok(file).await);
    }

    // Follow the long job to its end; cancel the doomed one once it has made some progress.
    let mut seen: Vec<f64> = Vec::new();
    let mut estimates = 0;
    let mut canceled_at = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut long_job;
    loop {
        long_job = api.get_json(&format!("/v1/jobs/{long_id}")).await;
        if long_job["status"] == "running" {
            seen.push(long_job["progress"].as_f64().unwrap());
            if let Some(at) = long_job["estimated_completion_at"].as_str() {
                chrono::DateTime::parse_from_rfc3339(at).unwrap();
                estimates += 1;
            }
        }
        if canceled_at.is_none() {
            let other = api.get_json(&format!("/v1/jobs/{doomed}")).await;
            assert_eq!(
                other["status"].as_str(),
                Some("running"),
                "finished before the cancel: {other}"
            );
            if other["progress"].as_f64().unwrap() > 0.1 {
                assert_eq!(
                    api.post(&format!("/v1/jobs/{doomed}/cancel"))
                        .await
                        .status(),
                    200
                );
                canceled_at = Some(other["progress"].as_f64().unwrap());
            }
        }
        let long_final =
            ["succeeded", "failed", "canceled"].contains(&long_job["status"].as_str().unwrap());
        if long_final && canceled_at.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "{long_job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(long_job["status"], "succeeded", "{long_job}");
    assert_eq!(long_job["estimated_completion_at"], Value::Null);
    // Progress only moves forward, and passes through values between decoding and the end.
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    let between: Vec<f64> = seen
        .iter()
        .copied()
        .filter(|p| *p > 0.1 && *p < 1.0)
        .collect();
    let distinct = between.windows(2).filter(|w| w[0] != w[1]).count() + 1;
    assert!(distinct >= 3, "progress of a 150-chunk job: {seen:?}");
    assert!(estimates > 0, "no estimated completion time while running");

    // The canceled job stays canceled, with what it had done; the others all succeed.
    let canceled_progress = canceled_at.expect("the doomed job made progress");
    let doomed_job = api.wait_final(&doomed, Duration::from_secs(60)).await;
    assert_eq!(doomed_job["status"], "canceled", "{doomed_job}");
    assert!(doomed_job["progress"].as_f64().unwrap() < 1.0);
    assert!(canceled_progress < 1.0);
    for (id, file) in short_ids.iter().zip(&shorts).chain([(&long_id, &long)]) {
        let job = api.wait_final(id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
        // What the file gives alone, with the same chunking.
        let transcript = api.get_json(&format!("/v1/jobs/{id}/transcript")).await;
        let alone = transcribe_cli_with(file, &WORKER_ENV[1..3]);
        assert_eq!(transcript["text"], alone["text"], "{}", file.display());
        let words = |v: &Value| {
            v["words"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| (w["word"].clone(), w["start"].clone(), w["end"].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(words(&transcript), words(&alone), "{}", file.display());
    }

    // Passes held several chunks of different jobs, and the worker reports its memory.
    let passes = common::pass_sizes(&worker.drain());
    assert!(passes.iter().any(|&items| items > 1), "{passes:?}");
    // The canceled job's chunks still waiting never ran: fewer than all chunks were encoded.
    let all_chunks = shorts.len() + 150 + 300;
    let encoded: usize = passes.iter().sum();
    assert!(
        encoded + 10 < all_chunks,
        "{encoded} of {all_chunks} chunks encoded"
    );
    let workers = api.get_json("/v1/workers").await;
    let memory = &workers["workers"][0]["device_memory"];
    let (used, total) = (
        memory["used_bytes"].as_i64().unwrap_or(0),
        memory["total_bytes"].as_i64().unwrap_or(0),
    );
    assert!(used > 1 << 20 && used < total, "{workers}");
}
