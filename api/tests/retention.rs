//! Retention (issue 19): the API's sweeper deletes a finished job's audio and transcript once
//! the server's period, or its tenant's own, has passed: from storage (a local directory or S3)
//! and from the record, with `audio_deleted_at` and `transcript_deleted_at` set and each sweep
//! audited; a job still running keeps its audio whatever the periods say.

#[macro_use]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{Api, Backends, error_of, fixture, long_wav, make_key, start_worker};
use serde_json::{Value, json};

on_every_backend!(finished_jobs_lose_their_data_when_due_and_running_ones_never);

const WAIT: Duration = Duration::from_secs(60);

async fn finished_jobs_lose_their_data_when_due_and_running_ones_never(
    mut backends: Backends,
    dir: &Path,
) {
    for (name, value) in [
        ("WARBLE_RETAIN_AUDIO_SECS", "0"),
        ("WARBLE_RETAIN_TRANSCRIPT_SECS", "2"),
        ("WARBLE_SWEEP_INTERVAL_MS", "300"),
    ] {
        backends.env.push((name.into(), value.into()));
    }
    let api = Api::start(&backends);

    // Tenant `keep` keeps audio for an hour; its transcripts follow the server's period.
    let (_, secret) = make_key(&api, "keeper", "user", Some("keep")).await;
    let keeper = api.as_key(&secret);
    let set = |body: Value| {
        api.client
            .put(api.url("/v1/tenants/keep/retention"))
            .json(&body)
            .send()
    };
    let response = set(json!({"audio_secs": 3600})).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap(),
        json!({"tenant": "keep",
               "own": {"audio_secs": 3600, "transcript_secs": null},
               "effective": {"audio_secs": 3600, "transcript_secs": 2}})
    );
    for bad in [json!({"audio_secs": -1}), json!({"audio_days": 7})] {
        let response = set(bad.clone()).await.unwrap();
        assert_eq!(error_of(response).await.0, 400, "{bad}");
    }
    let response = keeper.get("/v1/tenants/keep/retention").await;
    assert_eq!(error_of(response).await, (403, "forbidden".into()));

    let _worker = start_worker(&api, &backends).await;
    let speech = fixture("audio/tts_us_m6.wav");
    let ours = api.submit_ok(&speech).await;
    let theirs = keeper.submit_ok(&speech).await;
    // One more, in a batch: its results say when its transcript is gone.
    let part = reqwest::multipart::Part::bytes(std::fs::read(&speech).unwrap());
    let form = reqwest::multipart::Form::new().part("file", part.file_name("batched.wav"));
    let response = api
        .client
        .post(api.url("/v1/batches"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let batch = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let results = || async {
        let text = api
            .get(&format!("/v1/batches/{batch}/results"))
            .await
            .text()
            .await
            .unwrap();
        serde_json::from_str::<Value>(text.trim()).unwrap()
    };
    let batched = results().await["job_id"].as_str().unwrap().to_string();
    for id in [&ours, &theirs, &batched] {
        let job = api.wait_final(id, WAIT).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }

    // The server's period for audio is 0: gone at the next sweep; the tenant's hour keeps its.
    let job = api
        .wait_until(&ours, WAIT, |j| j["audio_deleted_at"].is_string())
        .await;
    assert!(job["deleted_at"].is_null(), "{job}");
    // Transcripts after 2 s, for both.
    for id in [&ours, &theirs, &batched] {
        let job = api
            .wait_until(id, WAIT, |j| j["transcript_deleted_at"].is_string())
            .await;
        let response = api.get(&format!("/v1/jobs/{id}/transcript")).await;
        assert_eq!(error_of(response).await, (410, "gone".into()), "{job}");
    }
    let line = results().await;
    assert_eq!(line["status"], "succeeded", "{line}");
    assert_eq!(line["error"]["code"], "gone", "{line}");
    let theirs_now = api.get_json(&format!("/v1/jobs/{theirs}")).await;
    assert!(theirs_now["audio_deleted_at"].is_null(), "{theirs_now}");
    assert_eq!(
        backends.stored_objects(),
        1,
        "only the kept audio is stored"
    );
    // A job whose audio is gone cannot be run again.
    let response = api.post(&format!("/v1/jobs/{ours}/retry")).await;
    assert_eq!(error_of(response).await.0, 409);

    // A job still running keeps its audio through many sweeps.
    let long = api.submit_ok(&long_wav(dir, 2400)).await;
    api.wait_until(&long, WAIT, |j| j["status"] == "running")
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let job = api.get_json(&format!("/v1/jobs/{long}")).await;
    assert_eq!(job["status"], "running", "{job}");
    assert!(job["audio_deleted_at"].is_null(), "{job}");
    assert_eq!(backends.stored_objects(), 2);

    // Each sweep that deleted something is in the audit log, naming the jobs.
    let audit = api.get_json("/v1/audit?limit=500").await;
    let sweeps: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "retention.sweep")
        .collect();
    let named = |field: &str, id: &str| {
        sweeps
            .iter()
            .filter(|e| e["actor"] == "retention")
            .any(|e| e["detail"][field].as_array().unwrap().contains(&json!(id)))
    };
    assert!(named("audio_deleted", &ours), "{audit}");
    assert!(named("transcripts_deleted", &ours), "{audit}");
    assert!(named("transcripts_deleted", &theirs), "{audit}");
    assert!(!named("audio_deleted", &theirs), "{audit}");
    let updates = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "retention.update" && e["target"] == "keep")
        .count();
    assert_eq!(updates, 1, "{audit}");
}
