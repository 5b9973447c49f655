//! Quotas per key against the running API: each one refuses with its own code and leaves
//! nothing behind, `GET /v1/usage` tells the truth, and the limits hold when several replicas
//! take a key's submissions at once.

mod common;

use std::path::Path;

use common::{Api, Backends, error_of, fixture, make_key, make_key_with};
use serde_json::{Value, json};

on_both_databases!(
    each_quota_refuses_with_its_code_and_changes_nothing,
    quotas_hold_across_replicas_under_concurrent_submissions,
);

/// Seconds of `tts_us_m6.wav`, as probed.
const FIXTURE_SECS: f64 = 54941.0 / 16000.0;

async fn jobs_in_db(api: &Api) -> usize {
    api.get_json("/v1/jobs?limit=100").await["jobs"]
        .as_array()
        .unwrap()
        .len()
}

async fn each_quota_refuses_with_its_code_and_changes_nothing(backends: Backends, _dir: &Path) {
    let api = Api::start(&backends);
    let file = fixture("audio/tts_us_m6.wav");

    // New user keys start with the server's defaults; admins with none.
    let (_, plain) = make_key(&api, "defaults", "user", None).await;
    let usage = api.as_key(&plain).get_json("/v1/usage").await;
    assert_eq!(usage["concurrent_jobs"], json!({"used": 0, "limit": 10}));
    assert_eq!(usage["audio_seconds_today"]["limit"], 86400);
    let admin = api.get_json("/v1/usage").await;
    assert_eq!(admin["concurrent_jobs"]["limit"], Value::Null);
    assert_eq!(admin["upload_bytes_limit"], 100_000_000);

    // Concurrent jobs: no worker runs, so submitted jobs stay queued.
    let (busy_id, busy) = make_key_with(
        &api,
        "busy",
        "user",
        None,
        Some(json!({"concurrent_jobs": 2, "audio_seconds_per_day": null, "upload_bytes": null})),
    )
    .await;
    let busy = api.as_key(&busy);
    let first = busy.submit_ok(&file).await;
    busy.submit_ok(&file).await;
    let refused = busy.submit(&file, &[], None).await;
    assert!(refused.headers().get("retry-after").is_none());
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "quota_concurrent_jobs");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 jobs queued or running"),
        "{body}"
    );
    assert_eq!(backends.stored_objects(), 2);
    assert_eq!(jobs_in_db(&api).await, 2);
    let usage = busy.get_json("/v1/usage").await;
    assert_eq!(usage["concurrent_jobs"], json!({"used": 2, "limit": 2}));
    assert_eq!(usage["jobs_today"], 2);
    // A finished (here: canceled) job frees its place.
    assert_eq!(
        busy.post(&format!("/v1/jobs/{first}/cancel"))
            .await
            .status(),
        200
    );
    busy.submit_ok(&file).await;

    // Audio seconds per day: one file fits in 5 s, a second does not.
    let (daily_id, daily) = make_key_with(
        &api,
        "daily",
        "user",
        None,
        Some(json!({"concurrent_jobs": null, "audio_seconds_per_day": 5, "upload_bytes": null})),
    )
    .await;
    let daily = api.as_key(&daily);
    let job = daily.submit_ok(&file).await;
    let before = backends.stored_objects();
    let refused = daily.submit(&file, &[], None).await;
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry_after), "{retry_after}");
    assert_eq!(error_of(refused).await, (429, "quota_audio_seconds".into()));
    assert_eq!(backends.stored_objects(), before);
    let usage = daily.get_json("/v1/usage").await;
    let used = usage["audio_seconds_today"]["used"].as_f64().unwrap();
    assert!((used - FIXTURE_SECS).abs() < 1e-6, "{used}");
    // Deleting the job does not give the seconds back.
    assert_eq!(daily.delete(&format!("/v1/jobs/{job}")).await.status(), 200);
    let refused = daily.submit(&file, &[], None).await;
    assert_eq!(error_of(refused).await, (429, "quota_audio_seconds".into()));

    // Upload size: the key's quota is smaller than the server's limit.
    let (_, small) = make_key_with(
        &api,
        "small",
        "user",
        None,
        Some(
            json!({"concurrent_jobs": null, "audio_seconds_per_day": null, "upload_bytes": 10000}),
        ),
    )
    .await;
    let small = api.as_key(&small);
    let before = (backends.stored_objects(), jobs_in_db(&api).await);
    let refused = small.submit(&file, &[], None).await;
    assert_eq!(error_of(refused).await, (429, "quota_upload_bytes".into()));
    assert_eq!(
        small.get_json("/v1/usage").await["upload_bytes_limit"],
        10000
    );
    assert_eq!((backends.stored_objects(), jobs_in_db(&api).await), before);

    // The admin raises a quota: the next submission passes, and the change is audited.
    let response = api
        .client
        .put(api.url(&format!("/v1/keys/{daily_id}/quotas")))
        .json(&json!({"concurrent_jobs": null, "audio_seconds_per_day": 60, "upload_bytes": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let key: Value = response.json().await.unwrap();
    assert_eq!(key["quotas"]["audio_seconds_per_day"], 60);
    daily.submit_ok(&file).await;
    let audit = api.get_json("/v1/audit").await;
    let change = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "quota.update")
        .expect("the quota change is audited");
    assert_eq!(change["target"], daily_id.as_str());
    assert_eq!(change["detail"]["before"]["audio_seconds_per_day"], 5);
    assert_eq!(change["detail"]["after"]["audio_seconds_per_day"], 60);

    // Bad quota bodies and unknown keys change nothing.
    for (body, expected) in [
        (json!({"concurrent_jobs": -1}), (400, "invalid_body")),
        (json!({"concurrent_jobs": "many"}), (400, "invalid_body")),
        (json!({"burst": 5}), (400, "invalid_body")),
    ] {
        let response = api
            .client
            .put(api.url(&format!("/v1/keys/{busy_id}/quotas")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(response).await,
            (expected.0, expected.1.into()),
            "{body}"
        );
    }
    let response = api
        .client
        .put(api.url("/v1/keys/01JDR7Q9V3X8M2K4T6N0P5B1CZ/quotas"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(response).await, (404, "not_found".into()));
    let usage = busy.get_json("/v1/usage").await;
    assert_eq!(usage["concurrent_jobs"]["limit"], 2);
}

/// Ten submissions at once, split over two API processes on one database: exactly as many
/// are accepted as the quota allows.
async fn quotas_hold_across_replicas_under_concurrent_submissions(backends: Backends, _dir: &Path) {
    let replicas = [Api::start(&backends), Api::start(&backends)];
    let file = fixture("audio/tts_us_m6.wav");
    let limits = [
        (
            json!({"concurrent_jobs": 3, "audio_seconds_per_day": null, "upload_bytes": null}),
            "quota_concurrent_jobs",
        ),
        (
            // Room for three files and a bit.
            json!({"concurrent_jobs": null, "audio_seconds_per_day": 11, "upload_bytes": null}),
            "quota_audio_seconds",
        ),
    ];
    for (quotas, code) in limits {
        let (_, secret) = make_key_with(&replicas[0], code, "user", None, Some(quotas)).await;
        let clients: Vec<Api> = replicas.iter().map(|api| api.as_key(&secret)).collect();
        let before = backends.stored_objects();
        let answers =
            futures::future::join_all((0..10).map(|i| clients[i % 2].submit(&file, &[], None)))
                .await;
        let mut outcomes = Vec::new();
        for answer in answers {
            outcomes.push(error_or_accepted(answer).await);
        }
        let accepted = outcomes.iter().filter(|o| o.as_str() == "accepted").count();
        let refused = outcomes.iter().filter(|o| o.as_str() == code).count();
        assert_eq!((accepted, refused), (3, 7), "{code}: {outcomes:?}");
        assert_eq!(backends.stored_objects(), before + 3);
        let usage = clients[1].get_json("/v1/usage").await;
        assert_eq!(usage["jobs_today"], 3, "{usage}");
    }
}

/// `accepted` for a 202, else the error code.
async fn error_or_accepted(response: reqwest::Response) -> String {
    if response.status() == 202 {
        return "accepted".into();
    }
    error_of(response).await.1
}
