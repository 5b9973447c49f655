//! The job pipeline end to end: the real `api` and `worker` binaries on loopback, real uploads
//! of the engine's fixture audio, on SQLite (the embedded default), on Postgres, and with the
//! audio on an S3 server.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Api, Backends, error_of, fixture, start_worker, transcribe_cli};
use serde_json::Value;
use sha2::Digest;
use warble_jobs::transcript::{Format, Transcript};

const AUDIO: [&str; 2] = ["audio/tts_us_m6.wav", "audio/tts_rp_m7.wav"];

on_every_backend!(
    uploads_become_the_transcripts_the_engine_gives,
    bad_requests_get_clear_errors_and_leave_nothing_behind,
    idempotency_listing_and_cancel,
    health_ready_spec_and_docs,
    client_file_names_are_only_displayed_and_cleaned_first,
);

async fn uploads_become_the_transcripts_the_engine_gives(
    backends: Backends,
    _dir: &std::path::Path,
) {
    let api = Api::start(&backends);
    let _worker = start_worker(&api, &backends).await;

    let listed: Value = api.get_json("/v1/workers").await;
    let workers = listed["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{listed}");
    assert_eq!(workers[0]["device"], "cpu");
    assert_eq!(workers[0]["model"], common::model().display().to_string());

    for rel in AUDIO {
        let file = fixture(rel);
        let response = api
            .submit(&file, &[("metadata", r#"{"customer":"c-1"}"#)], None)
            .await;
        assert_eq!(response.status(), 202);
        let location = response.headers()["location"].to_str().unwrap().to_string();
        let job: Value = response.json().await.unwrap();
        let id = job["id"].as_str().unwrap();
        assert_eq!(location, format!("/v1/jobs/{id}"));
        assert_eq!(job["status"], "queued");
        assert_eq!(job["metadata"]["customer"], "c-1");
        let sha = warble_jobs::hex(&sha2::Sha256::digest(std::fs::read(&file).unwrap()));
        assert_eq!(job["audio_sha256"], sha);

        let done = api.wait_final(id, Duration::from_secs(120)).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert_eq!(done["progress"], 1.0);
        assert_eq!(done["attempts"], 1);
        assert!(done["duration"].as_f64().unwrap() > 1.0);

        let expected = transcribe_cli(&file);
        let get = |format: &'static str| {
            let path = format!("/v1/jobs/{id}/transcript?format={format}");
            let api = &api;
            async move {
                let response = api.get(&path).await;
                assert_eq!(response.status(), 200, "format {format}");
                response.text().await.unwrap()
            }
        };
        let transcript: Transcript = serde_json::from_str(&get("json").await).unwrap();
        assert!(!transcript.text.is_empty());
        assert_eq!(transcript.text, expected["text"]);
        assert_eq!(
            serde_json::to_value(&transcript.words).unwrap(),
            expected["words"]
        );
        assert_eq!(transcript.duration, expected["duration"]);
        assert_eq!(
            get("text").await,
            format!("{}\n", expected["text"].as_str().unwrap())
        );
        assert_eq!(get("srt").await, transcript.render(Format::Srt));
        assert_eq!(get("vtt").await, transcript.render(Format::Vtt));
        let cues: Vec<String> = transcript.segments.iter().map(|s| s.text.clone()).collect();
        assert_eq!(cues.join(" "), transcript.text);
        // Deleting a succeeded job's data leaves the job: its transcript is gone (410).
        assert_eq!(api.delete(&format!("/v1/jobs/{id}")).await.status(), 200);
        let response = api.get(&format!("/v1/jobs/{id}/transcript")).await;
        assert_eq!(common::error_of(response).await, (410, "gone".into()));
    }
}

async fn bad_requests_get_clear_errors_and_leave_nothing_behind(
    backends: Backends,
    _dir: &std::path::Path,
) {
    let api = Api::start(&backends);
    let file = fixture(AUDIO[0]);

    let error = common::error_of;
    let form = reqwest::multipart::Form::new().text("decoder", "tdt");
    let response = api.post_form(form, None).await;
    assert_eq!(error(response).await, (400, "missing_file".into()));
    let response = api.submit(&file, &[("metadata", "[1, 2]")], None).await;
    assert_eq!(error(response).await, (400, "invalid_metadata".into()));
    let response = api.submit(&file, &[("decoder", "beam")], None).await;
    assert_eq!(error(response).await, (400, "invalid_decoder".into()));
    let big = format!(r#"{{"x":"{}"}}"#, "a".repeat(17 * 1024));
    let response = api.submit(&file, &[("metadata", &big)], None).await;
    assert_eq!(error(response).await, (400, "field_too_large".into()));
    let response = api.get("/v1/jobs/01JDR7Q9V3X8M2K4T6N0P5B1CZ").await;
    assert_eq!(error(response).await, (404, "not_found".into()));
    let response = api.get("/v1/nothing").await;
    assert_eq!(error(response).await, (404, "not_found".into()));
    let response = api.get("/v1/jobs?limit=0").await;
    assert_eq!(error(response).await, (400, "invalid_limit".into()));

    // None of the rejected uploads left a job or a stored object.
    let page: Value = api.get_json("/v1/jobs").await;
    assert_eq!(page["jobs"].as_array().unwrap().len(), 0);
    assert_eq!(backends.stored_objects(), 0);
}

async fn idempotency_listing_and_cancel(backends: Backends, dir: &std::path::Path) {
    let api = Api::start(&backends);
    let file = fixture(AUDIO[0]);
    // A retry may carry a different, larger body: the replay still answers with the job.
    let retry = common::long_wav(dir, 120);

    let first: Value = api
        .submit(&file, &[], Some("key-1"))
        .await
        .json()
        .await
        .unwrap();
    let again = api.submit(&retry, &[], Some("key-1")).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let mut ids = vec![first["id"].as_str().unwrap().to_string()];
    for _ in 0..4 {
        let job: Value = api.submit(&file, &[], None).await.json().await.unwrap();
        ids.push(job["id"].as_str().unwrap().to_string());
    }
    assert_eq!(backends.stored_objects(), 5);

    // Newest first, two per page, the cursor walks all five.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/jobs?limit=2&status=queued".to_string();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.get_json(&path).await;
        seen.extend(
            page["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids);

    // Deleting a queued job cancels it first: canceled, its audio gone, its transcript
    // unavailable, the record marked deleted.
    let id = &ids[0];
    let response = api.delete(&format!("/v1/jobs/{id}")).await;
    assert_eq!(response.status(), 200);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["status"], "canceled");
    assert!(job["deleted_at"].is_string(), "{job}");
    assert_eq!(backends.stored_objects(), 4);
    // Canceled while queued, it never had a transcript: not "deleted" (410).
    let response = api.get(&format!("/v1/jobs/{id}/transcript")).await;
    assert_eq!(error_of(response).await, (409, "no_transcript".into()));
    let response = api.get("/v1/jobs?status=canceled").await;
    let page: Value = response.json().await.unwrap();
    assert_eq!(page["jobs"].as_array().unwrap().len(), 1);
}

async fn health_ready_spec_and_docs(backends: Backends, _dir: &std::path::Path) {
    let api = Api::start(&backends);
    let health: Value = api.get_json("/health").await;
    assert_eq!(health["status"], "ok");
    let ready = api.get("/ready").await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["checks"]["storage"], "ok");
    let spec = api.get("/openapi.json").await.text().await.unwrap();
    assert_eq!(spec, warble_api::openapi_json());
    let docs = api.get("/docs/").await;
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger-ui"));
    let script = api.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(
        script.status(),
        200,
        "Swagger UI is served from the binary, offline"
    );
}

async fn client_file_names_are_only_displayed_and_cleaned_first(
    backends: Backends,
    _dir: &std::path::Path,
) {
    let api = Api::start(&backends);
    let audio = std::fs::read(fixture(AUDIO[0])).unwrap();
    let long = format!("{}.wav", "ü".repeat(300));
    let cases = [
        ("../../../etc/cron.d/evil.wav", "evil.wav".to_string()),
        ("..\\..\\boot.ini.wav", "boot.ini.wav".into()),
        ("invoice\u{202E}vaw.exe.wav", "invoicevaw.exe.wav".into()),
        (long.as_str(), format!("{}.wav", "ü".repeat(125))),
    ];
    for (raw, shown) in cases {
        let part = reqwest::multipart::Part::bytes(audio.clone())
            .file_name(raw.to_string())
            .mime_str("audio/wav")
            .unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        let response = api.post_form(form, None).await;
        assert_eq!(response.status(), 202);
        let job: Value = response.json().await.unwrap();
        assert_eq!(job["filename"], shown.as_str(), "{raw:?}");
    }
    // Object keys are the server's own: no part of a client's name reaches storage.
    fn names(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            out.push(entry.file_name().to_string_lossy().into_owned());
            if entry.path().is_dir() {
                names(&entry.path(), out);
            }
        }
    }
    let mut stored = Vec::new();
    names(&backends.objects, &mut stored);
    assert_eq!(backends.stored_objects(), 4);
    for name in stored {
        assert!(
            !["evil", "boot", "invoice", "ü", "etc"]
                .iter()
                .any(|bit| name.contains(bit)),
            "{name}"
        );
    }
}
