//! Every accepted format, and every kind of broken or hostile file, through the real API and
//! worker. The corpus is built by `tools/fixtures/make_audio_corpus.sh` (ffmpeg and sox) from
//! one speech clip: each good file must be accepted, and decode to the duration (±20 ms) and
//! the transcript of its reference: the 16-bit WAV at the same rate and channel count for
//! lossless files, ffmpeg's decoding of the file itself for lossy ones (the test model is
//! small enough for coding noise to change a word, so a lossy file is held to what the
//! reference decoder makes of it). Opus and Matroska Vorbis are held to the duration only
//! (see [`SIGNAL_CHECKED`]);
//! each bad one must be refused at upload with its status and code, or fail its job cleanly,
//! while the same worker goes on serving.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Api, Backends, fixture, start_worker_with};
use serde_json::Value;

/// Files whose transcript may differ from the reference's, because the reference cannot be the
/// same signal: ffmpeg decodes Opus with libopus's float decoder and ours is the fixed-point
/// one (-75 dB apart), and in Matroska ffmpeg keeps the Vorbis end padding that we cut to the
/// declared duration. A few milliseconds are enough to change a word of this small test
/// model; `warble-audio`'s `lossy_decoders_match_ffmpeg` test compares these signals directly.
const SIGNAL_CHECKED: [&str; 3] = ["opus.opus", "opus.webm", "vorbis.mka"];

/// The worker's duration limit here: low enough that the file lying about its length is
/// caught after 10 minutes of audio, not 4 hours.
const WORKER_MAX_SECONDS: &str = "600";

/// Builds the corpus under `dir`; fails the test, saying what to install, where ffmpeg, sox
/// or Python is missing.
fn build_corpus(dir: &Path) -> PathBuf {
    let missing: Vec<&str> = ["ffmpeg", "sox", "python3"]
        .into_iter()
        .filter(|tool| Command::new(tool).arg("--version").output().is_err())
        .collect();
    if !missing.is_empty() {
        common::prerequisite::missing(&missing.join(", "), "apt-get install ffmpeg sox python3");
    }
    let out = dir.join("corpus");
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures/make_audio_corpus.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(&out)
        .arg(fixture("audio/tts_us_m6.wav"))
        .status()
        .unwrap();
    assert!(status.success(), "make_audio_corpus.sh failed");
    out
}

/// `"<status> <code>"` of an error response, as `bad/expected.tsv` writes outcomes.
async fn error_of(response: reqwest::Response) -> String {
    let (status, code) = common::error_of(response).await;
    format!("{status} {code}")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_format_is_accepted_and_every_bad_file_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = build_corpus(dir.path());
    let backends = Backends::local(dir.path());
    let api = Api::start(&backends);
    let mut worker = start_worker_with(
        &api,
        &backends,
        &[("WARBLE_MAX_AUDIO_SECONDS", WORKER_MAX_SECONDS)],
    )
    .await;

    // Good files: (group, file) -> job id. 5.1 AAC is the one combination we cannot decode.
    let mut jobs: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut groups: Vec<PathBuf> = std::fs::read_dir(corpus.join("good"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    groups.sort();
    for group in &groups {
        let name = group.file_name().unwrap().to_string_lossy().to_string();
        let mut files: Vec<PathBuf> = std::fs::read_dir(group)
            .unwrap()
            .chain(std::fs::read_dir(group.join("ref")).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            let file_name = file
                .strip_prefix(group)
                .unwrap()
                .to_string_lossy()
                .to_string();
            let response = api.submit(&file, &[], None).await;
            if name.ends_with("_6") && (file_name.ends_with(".m4a") || file_name.ends_with(".aac"))
            {
                assert_eq!(
                    error_of(response).await,
                    "415 unsupported_media_type",
                    "{name}/{file_name}"
                );
                continue;
            }
            assert_eq!(
                response.status(),
                202,
                "{name}/{file_name}: {}",
                response.text().await.unwrap()
            );
            let job: Value = response.json().await.unwrap();
            jobs.insert(
                (name.clone(), file_name),
                job["id"].as_str().unwrap().to_string(),
            );
        }
    }

    // Bad files: refused at upload, or queued to fail (or, when damage may be skipped over,
    // to end either way).
    let expected = std::fs::read_to_string(corpus.join("bad/expected.tsv")).unwrap();
    let mut bad_jobs: Vec<(String, String, String)> = Vec::new();
    for line in expected.lines() {
        let (file, outcome) = line.split_once('\t').unwrap();
        let response = api.submit(&corpus.join("bad").join(file), &[], None).await;
        let status = response.status().as_u16();
        if let Some(code) = outcome.strip_prefix("job ") {
            if status == 202 || code != "any" {
                assert_eq!(
                    status,
                    202,
                    "{file}: expected a job, got {}",
                    error_of(response).await
                );
                let job: Value = response.json().await.unwrap();
                bad_jobs.push((file.into(), code.into(), job["id"].as_str().unwrap().into()));
            } else {
                // Damage the probe already sees is refused as invalid audio.
                assert_eq!(error_of(response).await, "422 invalid_audio", "{file}");
            }
        } else {
            let body: Value = response.json().await.unwrap();
            let got = format!("{status} {}", body["error"]["code"].as_str().unwrap());
            println!("{file}: {got}: {}", body["error"]["message"]);
            assert_eq!(got, outcome, "{file}");
        }
    }

    // Every good file decodes and transcribes like its reference.
    let mut results: BTreeMap<(String, String), (f64, String)> = BTreeMap::new();
    for ((group, file), id) in &jobs {
        let job = api.wait_final(id, Duration::from_secs(120)).await;
        assert_eq!(job["status"], "succeeded", "{group}/{file}: {job}");
        let transcript: Value = api.get_json(&format!("/v1/jobs/{id}/transcript")).await;
        let text = transcript["text"].as_str().unwrap().to_string();
        results.insert(
            (group.clone(), file.clone()),
            (job["duration"].as_f64().unwrap(), text),
        );
    }
    let mut wrong = Vec::new();
    for ((group, file), (duration, text)) in &results {
        if file.starts_with("ref/") {
            continue;
        }
        let reference = match results.get(&(group.clone(), format!("ref/{file}.wav"))) {
            Some(decoded_by_ffmpeg) => decoded_by_ffmpeg,
            None => &results[&(group.clone(), "s16.wav".to_string())],
        };
        let source = results[&(group.clone(), "s16.wav".to_string())].0;
        let error_ms = (duration - reference.0) * 1000.0;
        println!(
            "{group}/{file}: {error_ms:+.1} ms from its reference, {:+.1} ms from the source, {text:?}",
            (duration - source) * 1000.0
        );
        if error_ms.abs() > 20.0 {
            wrong.push(format!("{group}/{file}: duration off by {error_ms:+.1} ms"));
        }
        if text != &reference.1 && !SIGNAL_CHECKED.contains(&file.as_str()) {
            wrong.push(format!(
                "{group}/{file}: {text:?}, reference {:?}",
                reference.1
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Bad jobs end as expected, each saying why.
    for (file, code, id) in &bad_jobs {
        let job = api.wait_final(id, Duration::from_secs(120)).await;
        println!("{file}: {} {}", job["status"], job["error"]);
        if code == "any" {
            assert!(
                job["status"] == "succeeded" || job["error"]["code"] == "audio_decode_failed",
                "{file}: {job}"
            );
        } else {
            assert_eq!(job["status"], "failed", "{file}: {job}");
            assert_eq!(job["error"]["code"], code.as_str(), "{file}: {job}");
            assert!(!job["error"]["message"].as_str().unwrap().is_empty());
        }
    }

    // The same worker process served everything and still does.
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker died"
    );
    let id = api.submit_ok(&fixture("audio/tts_us_m6.wav")).await;
    let job = api.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded");
    // Nothing refused left an object behind: one per accepted upload.
    assert_eq!(backends.stored_objects(), jobs.len() + bad_jobs.len() + 1);
    assert!(!results.is_empty());
}

/// What the client declares is checked before the upload is read, and the size as it arrives.
#[tokio::test(flavor = "multi_thread")]
async fn names_types_and_sizes_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut backends = Backends::local(dir.path());
    backends
        .env
        .push(("WARBLE_MAX_UPLOAD_BYTES".into(), "100000".into()));
    let api = Api::start(&backends);
    let speech = std::fs::read(fixture("audio/tts_us_m6.wav")).unwrap();
    let part = |bytes: &[u8], name: &str, mime: &str| {
        reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec())
                .file_name(name.to_string())
                .mime_str(mime)
                .unwrap(),
        )
    };
    let small = &speech[..50_000];
    let cases = [
        (
            part(small, "talk.wav", "image/png"),
            "415 unsupported_media_type",
        ),
        (
            part(small, "talk", "audio/wav"),
            "415 unsupported_media_type",
        ),
        (
            part(small, "talk.exe", "audio/wav"),
            "415 unsupported_media_type",
        ),
        (
            part(small, "talk.mp3", "audio/mpeg"),
            "415 unsupported_media_type",
        ),
        (part(&[], "talk.wav", "audio/wav"), "422 invalid_audio"),
        (
            part(&speech, "talk.wav", "audio/wav"),
            "413 payload_too_large",
        ),
    ];
    for (form, expected) in cases {
        let response = api.post_form(form, None).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        println!("{status} {body}");
        assert_eq!(
            format!("{status} {}", body["error"]["code"].as_str().unwrap()),
            expected
        );
    }
    // Streamed without a length: cut off at the limit.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        speech.chunks(8192).map(|c| Ok(c.to_vec())).collect();
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
            .file_name("talk.wav")
            .mime_str("audio/wav")
            .unwrap(),
    );
    let response = api.post_form(form, None).await;
    assert_eq!(error_of(response).await, "413 payload_too_large");
    // A WAV under the limit is taken, with its duration probed at upload.
    let id = {
        let response = api
            .post_form(part(&speech[..90_000], "talk.wav", "audio/x-wav"), None)
            .await;
        assert_eq!(response.status(), 202);
        let job: Value = response.json().await.unwrap();
        let duration = job["duration"].as_f64().unwrap();
        assert!((duration - 54_941.0 / 16_000.0).abs() < 1e-9, "{duration}");
        job["id"].as_str().unwrap().to_string()
    };
    let page: Value = api.get_json("/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(page["jobs"][0]["id"], id.as_str());
    assert_eq!(backends.stored_objects(), 1);
}

/// A decoder that dies (here: the child's memory limit is too small for it to run at all)
/// fails the job with the reason, and the worker goes on to the next job.
#[tokio::test(flavor = "multi_thread")]
async fn a_dying_decoder_fails_the_job_not_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::local(dir.path());
    let api = Api::start(&backends);
    let mut starved = start_worker_with(&api, &backends, &[("WARBLE_DECODE_MEMORY_MB", "4")]).await;
    let id = api.submit_ok(&fixture("audio/tts_us_m6.wav")).await;
    let job = api.wait_final(&id, Duration::from_secs(60)).await;
    println!("{job}");
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["code"], "audio_decode_failed");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the decoder failed on this file"),
        "{message}"
    );
    assert!(!message.contains('/'), "a path leaked: {message}");
    assert!(
        starved.child.try_wait().unwrap().is_none(),
        "the worker died"
    );
    drop(starved);
    let _worker = start_worker_with(&api, &backends, &[]).await;
    let id = api.submit_ok(&fixture("audio/tts_us_m6.wav")).await;
    let job = api.wait_final(&id, Duration::from_secs(60)).await;
    assert_eq!(job["status"], "succeeded");
}
