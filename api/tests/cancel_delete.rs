//! Canceling a job and deleting its data are two actions. `POST /v1/jobs/{id}/cancel` stops a
//! queued or running job and keeps its audio; a finished job cannot be canceled (409
//! `job_finished`). `DELETE /v1/jobs/{id}` deletes the audio and the transcript (canceling the
//! job first if it is queued or running) and the record says when, in `deleted_at`. Each is
//! audited once, under its own action, however often the request is repeated.

#[macro_use]
mod common;

use std::time::Duration;

use common::{Api, Backends, error_of, fixture, make_key, start_worker};
use serde_json::Value;

on_both_databases!(
    cancel_stops_a_queued_job_once_and_keeps_its_audio,
    delete_cancels_a_queued_job_then_deletes_its_data_once,
    a_finished_job_cannot_be_canceled_and_its_deletion_shows_once,
);

const AUDIO: &str = "audio/tts_us_m6.wav";

/// A 200 response's JSON body.
async fn ok_json(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The actions the audit log records on `target`, sorted (the order of two entries written
/// within one millisecond is not the order they were written in).
async fn audited(api: &Api, target: &str) -> Vec<String> {
    let page = api.get_json("/v1/audit?limit=500").await;
    let mut actions: Vec<String> = page["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["target"] == target)
        .map(|entry| entry["action"].as_str().unwrap().to_string())
        .collect();
    actions.sort();
    actions
}

/// Asserts that `job` says its data was deleted, at an RFC 3339 time.
fn assert_deleted(job: &Value) {
    let at = job["deleted_at"]
        .as_str()
        .unwrap_or_else(|| panic!("{job}"));
    chrono::DateTime::parse_from_rfc3339(at).unwrap();
}

async fn cancel_stops_a_queued_job_once_and_keeps_its_audio(
    backends: Backends,
    _dir: &std::path::Path,
) {
    let api = Api::start(&backends);
    let id = api.submit_ok(&fixture(AUDIO)).await;
    let cancel = format!("/v1/jobs/{id}/cancel");

    let canceled = ok_json(api.post(&cancel).await).await;
    assert_eq!(canceled["status"], "canceled");
    assert!(canceled["finished_at"].is_string());
    assert_eq!(canceled["deleted_at"], Value::Null);
    // Canceling is not deleting: the audio stays until the job is deleted.
    assert_eq!(backends.stored_objects(), 1);
    assert_eq!(api.get_json(&format!("/v1/jobs/{id}")).await, canceled);
    let response = api.get(&format!("/v1/jobs/{id}/transcript")).await;
    assert_eq!(error_of(response).await, (409, "no_transcript".into()));

    // Again: the same record, and still one audit entry.
    assert_eq!(ok_json(api.post(&cancel).await).await, canceled);
    assert_eq!(audited(&api, &id).await, ["job.cancel"]);

    // Another tenant's key, or an id that names nothing: 404, and nothing recorded.
    let (_, stranger) = make_key(&api, "stranger", "user", Some("globex")).await;
    let response = api.as_key(&stranger).post(&cancel).await;
    assert_eq!(error_of(response).await, (404, "not_found".into()));
    let response = api.post("/v1/jobs/01JDR7Q9V3X8M2K4T6N0P5B1CZ/cancel").await;
    assert_eq!(error_of(response).await, (404, "not_found".into()));
    assert_eq!(audited(&api, &id).await, ["job.cancel"]);
}

async fn delete_cancels_a_queued_job_then_deletes_its_data_once(
    backends: Backends,
    _dir: &std::path::Path,
) {
    let api = Api::start(&backends);
    let id = api.submit_ok(&fixture(AUDIO)).await;
    let path = format!("/v1/jobs/{id}");

    let deleted = ok_json(api.delete(&path).await).await;
    assert_eq!(deleted["status"], "canceled");
    assert_deleted(&deleted);
    assert_eq!(backends.stored_objects(), 0);
    // The cancel it began with is audited as a cancel, the deletion as a deletion.
    assert_eq!(audited(&api, &id).await, ["job.cancel", "job.delete"]);

    // The record stays and says so, alone and in the listing.
    assert_eq!(api.get_json(&path).await, deleted);
    let page = api.get_json("/v1/jobs").await;
    let listed = page["jobs"].as_array().unwrap();
    assert_eq!(
        listed.iter().find(|job| job["id"] == id.as_str()),
        Some(&deleted)
    );
    let response = api.get(&format!("{path}/transcript")).await;
    assert_eq!(error_of(response).await, (409, "no_transcript".into()));

    // Deleting or canceling it again answers the same record and records nothing more.
    assert_eq!(ok_json(api.delete(&path).await).await, deleted);
    assert_eq!(
        ok_json(api.post(&format!("{path}/cancel")).await).await,
        deleted
    );
    assert_eq!(audited(&api, &id).await, ["job.cancel", "job.delete"]);
}

async fn a_finished_job_cannot_be_canceled_and_its_deletion_shows_once(
    backends: Backends,
    _dir: &std::path::Path,
) {
    let api = Api::start(&backends);
    let _worker = start_worker(&api, &backends).await;
    let id = api.submit_ok(&fixture(AUDIO)).await;
    let path = format!("/v1/jobs/{id}");
    let succeeded = api.wait_final(&id, Duration::from_secs(120)).await;
    assert_eq!(succeeded["status"], "succeeded", "{succeeded}");

    // Too late to cancel: 409, and the job is as it was.
    let response = api.post(&format!("{path}/cancel")).await;
    assert_eq!(error_of(response).await, (409, "job_finished".into()));
    assert_eq!(api.get_json(&path).await, succeeded);
    assert_eq!(audited(&api, &id).await, Vec::<String>::new());

    // Deleting keeps the outcome and says the data is gone; the transcript is gone (410).
    let deleted = ok_json(api.delete(&path).await).await;
    assert_eq!(deleted["status"], "succeeded");
    assert_deleted(&deleted);
    assert_eq!(backends.stored_objects(), 0);
    let response = api.get(&format!("{path}/transcript")).await;
    assert_eq!(error_of(response).await, (410, "gone".into()));
    assert_eq!(audited(&api, &id).await, ["job.delete"]);

    // Again: the same record, one audit entry.
    assert_eq!(ok_json(api.delete(&path).await).await, deleted);
    assert_eq!(audited(&api, &id).await, ["job.delete"]);
}
