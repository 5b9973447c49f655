//! Batches end to end (issue 18): the real API and worker, a loopback file server for the
//! audio and a loopback webhook receiver. A batch of 200 URL lines, some of them bad, runs to
//! its results JSONL, counts and `batch.completed`; a batch with malformed lines is refused
//! whole, listing each line, and makes nothing; a form of files makes a batch whose bad file
//! fails alone; a batch canceled while its URLs are still being fetched stops, keeps what
//! finished, and says `canceled` in its webhook.

#[macro_use]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use common::receiver::Receiver;
use common::{Api, Backends, error_of, fixture, start_worker};
use serde_json::{Value, json};

on_both_databases!(
    two_hundred_lines_run_to_results_and_a_webhook,
    a_batch_canceled_midway_stops_and_keeps_what_finished,
);

const WAIT: Duration = Duration::from_secs(120);

/// Serves the speech fixture at `/speech/{anything}.wav` (after `delay`), a 404 for
/// `/missing.wav`, and a page that is not audio at `/page.wav`.
async fn file_server(delay: Duration) -> String {
    let speech = std::fs::read(fixture("audio/tts_us_m6.wav")).unwrap();
    let app = Router::new()
        .route(
            "/speech/{name}",
            get(move || {
                let speech = speech.clone();
                async move {
                    tokio::time::sleep(delay).await;
                    ([(header::CONTENT_TYPE, "audio/wav")], speech)
                }
            }),
        )
        .route(
            "/page.wav",
            get(|| async { "<html>not audio</html>".into_response() }),
        )
        .fallback(|| async { StatusCode::NOT_FOUND });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{address}")
}

/// Loopback audio and webhooks allowed, with `extra` settings.
fn private(mut backends: Backends, extra: &[(&str, &str)]) -> Backends {
    for (name, value) in [
        ("WARBLE_AUDIO_URL_ALLOW_PRIVATE", "true"),
        ("WARBLE_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("WARBLE_WEBHOOK_POLL_MS", "50"),
    ]
    .iter()
    .chain(extra)
    {
        backends.env.push((name.to_string(), value.to_string()));
    }
    backends
}

/// `POST /v1/batches` with `body` as JSON Lines.
async fn post_lines(api: &Api, body: String) -> reqwest::Response {
    api.client
        .post(api.url("/v1/batches"))
        .header("content-type", "application/jsonl")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// JSON Lines of `lines`.
fn jsonl(lines: &[Value]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

/// Registers an endpoint for `batch.completed` at the receiver's `path`.
async fn subscribe(api: &Api, receiver: &Receiver, path: &str) {
    let response = api
        .client
        .post(api.url("/v1/webhooks"))
        .json(&json!({ "url": receiver.url(path), "events": ["batch.completed"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

/// Polls the batch until `done(batch)`.
async fn wait_batch(api: &Api, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let batch = api.get_json(&format!("/v1/batches/{id}")).await;
        if done(&batch) {
            return batch;
        }
        assert!(Instant::now() < deadline, "batch after {WAIT:?}: {batch}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The batch's results, one JSON object per line.
async fn results_of(api: &Api, id: &str) -> Vec<Value> {
    let response = api.get(&format!("/v1/batches/{id}/results")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let text = response.text().await.unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ended(batch: &Value) -> bool {
    ["completed", "canceled"].contains(&batch["status"].as_str().unwrap())
}

async fn two_hundred_lines_run_to_results_and_a_webhook(backends: Backends, _dir: &Path) {
    let backends = private(
        backends,
        &[
            ("WARBLE_BATCH_MAX_REQUESTS", "200"),
            ("WARBLE_AUDIO_URL_TIMEOUT_SECS", "5"),
        ],
    );
    let files = file_server(Duration::ZERO).await;
    let receiver = Receiver::start().await;
    let api = Api::start(&backends);
    subscribe(&api, &receiver, "/batches").await;

    // Refused whole: each bad line listed with its code, nothing made.
    let mut lines: Vec<Value> = (1..=6)
        .map(|i| json!({"custom_id": format!("r{i}"), "audio_url": format!("{files}/speech/{i}.wav")}))
        .collect();
    lines[1] = json!({"audio_url": format!("{files}/speech/2.wav")});
    lines[2] = json!({"custom_id": "r1", "audio_url": format!("{files}/speech/3.wav")});
    lines[3]["audio_url"] = json!("ftp://example.com/a.wav");
    lines[4]["decoder"] = json!("beam");
    let mut body = jsonl(&lines);
    body.push_str("{not json\n");
    for custom_id in ["  ", "a\u{0}b"] {
        let line = json!({"custom_id": custom_id, "audio_url": format!("{files}/speech/8.wav")});
        body.push_str(&format!("{line}\n"));
    }
    let response = post_lines(&api, body).await;
    assert_eq!(response.status(), 422);
    let refused: Value = response.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "invalid_batch");
    let listed: Vec<(u64, &str)> = refused["error"]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["line"].as_u64().unwrap(), l["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        listed,
        [
            (2, "invalid_field"),
            (3, "invalid_field"),
            (4, "invalid_audio_url"),
            (5, "invalid_decoder"),
            (7, "invalid_body"),
            (8, "invalid_field"),
            (9, "invalid_field"),
        ],
        "{refused}"
    );
    let too_many: Vec<Value> = (0..201)
        .map(|i| json!({"custom_id": format!("n{i}"), "audio_url": format!("{files}/speech/{i}.wav")}))
        .collect();
    let response = post_lines(&api, jsonl(&too_many)).await;
    assert_eq!(error_of(response).await, (413, "batch_too_large".into()));
    let response = post_lines(&api, "\n\n".into()).await;
    assert_eq!(error_of(response).await, (400, "invalid_body".into()));
    let response = api
        .client
        .post(api.url("/v1/batches"))
        .json(&json!({"custom_id": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(response).await,
        (415, "unsupported_media_type".into())
    );
    assert_eq!(api.get_json("/v1/batches").await["batches"], json!([]));
    assert_eq!(api.get_json("/v1/jobs").await["jobs"], json!([]));
    assert_eq!(backends.stored_objects(), 0);

    // 200 lines, four of them bad only once fetched: their requests fail, the rest run.
    let bad = [
        (10, "/missing.wav", "audio_url_unreachable"),
        (50, "/page.wav", "unsupported_media_type"),
        (120, "/missing.wav", "audio_url_unreachable"),
        (200, "/page.wav", "unsupported_media_type"),
    ];
    let lines: Vec<Value> = (1..=200)
        .map(|i| {
            let path = bad
                .iter()
                .find(|(line, _, _)| *line == i)
                .map_or(format!("/speech/{i}.wav"), |(_, path, _)| path.to_string());
            json!({"custom_id": format!("ep-{i}"), "audio_url": format!("{files}{path}"),
                   "metadata": {"episode": i}})
        })
        .collect();
    // With a byte order mark, as Windows tools write it, and an Idempotency-Key.
    let body = format!("\u{feff}{}", jsonl(&lines));
    let post = |body: String| {
        api.client
            .post(api.url("/v1/batches"))
            .header("content-type", "application/jsonl")
            .header("idempotency-key", "nightly-2026-11-30")
            .body(body)
            .send()
    };
    let response = post(body.clone()).await.unwrap();
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/v1/batches/{id}"));
    assert_eq!(created["status"], "in_progress");
    assert_eq!(created["request_counts"]["total"], 200);
    assert_eq!(created["request_counts"]["pending"], 200);
    // The same request again (a client's retry) is the same batch, not a second one.
    let again = post(body).await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], id.as_str());
    // The worker comes after the batch: its jobs wait queued meanwhile.
    wait_batch(&api, &id, |b| {
        b["request_counts"]["queued"].as_i64().unwrap() >= 20
    })
    .await;
    let _worker = start_worker(&api, &backends).await;
    let batch = wait_batch(&api, &id, ended).await;
    assert_eq!(batch["status"], "completed", "{batch}");
    assert_eq!(
        batch["request_counts"],
        json!({"total": 200, "pending": 0, "queued": 0, "running": 0, "succeeded": 196,
               "failed": 4, "canceled": 0}),
    );
    assert!(batch["finished_at"].is_string());

    let expected = common::transcribe_cli(&fixture("audio/tts_us_m6.wav"))["text"].clone();
    let results = results_of(&api, &id).await;
    assert_eq!(results.len(), 200);
    for (i, result) in (1..).zip(&results) {
        assert_eq!(result["line"], i);
        assert_eq!(result["custom_id"], format!("ep-{i}"));
        match bad.iter().find(|(line, _, _)| *line == i) {
            Some((_, _, code)) => {
                assert_eq!(result["status"], "failed", "{result}");
                assert_eq!(result["error"]["code"], *code, "{result}");
                assert!(result["job_id"].is_null(), "{result}");
            }
            None => {
                assert_eq!(result["status"], "succeeded", "{result}");
                assert_eq!(result["transcript"]["text"], expected, "{result}");
                assert!(result["error"].is_null());
            }
        }
    }
    // Each request's job is an ordinary job, with the batch and the line's options.
    let job_id = results[0]["job_id"].as_str().unwrap();
    let job = api.get_json(&format!("/v1/jobs/{job_id}")).await;
    assert_eq!(job["batch_id"], id);
    assert_eq!(job["metadata"], json!({"episode": 1}));
    assert_eq!(api.get_json("/v1/batches").await["batches"], json!([batch]));
    // A succeeded job whose data was deleted says so in the results.
    assert_eq!(
        api.delete(&format!("/v1/jobs/{job_id}")).await.status(),
        200
    );
    let first = &results_of(&api, &id).await[0];
    assert_eq!(first["status"], "succeeded");
    assert_eq!(first["error"]["code"], "gone", "{first}");

    let delivered = receiver.wait_for("/batches", 1, WAIT).await;
    let event = delivered[0].json();
    assert_eq!(event["type"], "batch.completed");
    assert_eq!(event["data"]["batch_id"], id);
    assert_eq!(event["data"]["status"], "completed");
    assert_eq!(event["data"]["request_counts"], batch["request_counts"]);
    assert_eq!(
        event["data"]["links"]["results"],
        format!("/v1/batches/{id}/results")
    );

    // A form of files: the files that are not audio fail their own requests (one at once, by
    // its type; one once read), the truncated one as a job, in the worker. A repeated name is
    // made unique.
    let wav = std::fs::read(fixture("audio/tts_us_m6.wav")).unwrap();
    let parts = [
        ("tts_us_m6.wav", wav.clone()),
        (
            "tts_en_f5.wav",
            std::fs::read(fixture("audio/tts_en_f5.wav")).unwrap(),
        ),
        (
            "notes.wav",
            std::fs::read(fixture("audio/tts_us_m6.txt")).unwrap(),
        ),
        ("truncated.wav", wav[..wav.len() / 2].to_vec()),
        ("notes.txt", b"meeting notes".to_vec()),
        ("tts_us_m6.wav", wav.clone()),
    ];
    let mut form = reqwest::multipart::Form::new().text("metadata", r#"{"via": "form"}"#);
    for (name, bytes) in parts {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name),
        );
    }
    let response = api
        .client
        .post(api.url("/v1/batches"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let created: Value = response.json().await.unwrap();
    let files_id = created["id"].as_str().unwrap().to_string();
    let batch = wait_batch(&api, &files_id, ended).await;
    assert_eq!(batch["status"], "completed", "{batch}");
    assert_eq!(batch["request_counts"]["succeeded"], 3, "{batch}");
    assert_eq!(batch["request_counts"]["failed"], 3, "{batch}");
    let results = results_of(&api, &files_id).await;
    let ids: Vec<&str> = results
        .iter()
        .map(|r| r["custom_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "tts_us_m6.wav",
            "tts_en_f5.wav",
            "notes.wav",
            "truncated.wav",
            "notes.txt",
            "tts_us_m6.wav#2",
        ]
    );
    assert_eq!(results[2]["error"]["code"], "unsupported_media_type");
    assert_eq!(results[4]["error"]["code"], "unsupported_media_type");
    assert_eq!(results[5]["status"], "succeeded");
    assert_eq!(results[3]["error"]["code"], "audio_decode_failed");
    let job = api
        .get_json(&format!(
            "/v1/jobs/{}",
            results[1]["job_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(job["metadata"], json!({"via": "form"}));
    receiver.wait_for("/batches", 2, WAIT).await;
    // Retrying the failed job reopens its batch, which completes, and says so, again.
    let truncated_job = results[3]["job_id"].as_str().unwrap();
    let retried = api.post(&format!("/v1/jobs/{truncated_job}/retry")).await;
    assert_eq!(retried.status(), 200);
    let batch = wait_batch(&api, &files_id, ended).await;
    assert_eq!(batch["status"], "completed", "{batch}");
    let delivered = receiver.wait_for("/batches", 3, WAIT).await;
    assert_eq!(delivered[2].json()["data"]["batch_id"], files_id);

    // Another tenant sees none of it.
    let (_, user_key) = common::make_key(&api, "other", "user", Some("other")).await;
    let other = api.as_key(&user_key);
    assert_eq!(other.get_json("/v1/batches").await["batches"], json!([]));
    for path in [
        format!("/v1/batches/{id}"),
        format!("/v1/batches/{id}/results"),
    ] {
        assert_eq!(error_of(other.get(&path).await).await.0, 404, "{path}");
    }
    assert_eq!(
        error_of(other.post(&format!("/v1/batches/{id}/cancel")).await)
            .await
            .0,
        404
    );
    // Canceling a completed batch changes nothing.
    assert_eq!(
        error_of(api.post(&format!("/v1/batches/{id}/cancel")).await).await,
        (409, "batch_finished".into())
    );
}

async fn a_batch_canceled_midway_stops_and_keeps_what_finished(backends: Backends, _dir: &Path) {
    let backends = private(backends, &[]);
    // Slow to fetch, so the cancel comes while most requests are still pending.
    let files = file_server(Duration::from_millis(300)).await;
    let receiver = Receiver::start().await;
    let api = Api::start(&backends);
    subscribe(&api, &receiver, "/batches").await;
    let _worker = start_worker(&api, &backends).await;

    let lines: Vec<Value> = (1..=80)
        .map(|i| json!({"custom_id": format!("c{i}"), "audio_url": format!("{files}/speech/{i}.wav")}))
        .collect();
    let response = post_lines(&api, jsonl(&lines)).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_batch(&api, &id, |b| {
        b["request_counts"]["succeeded"].as_i64().unwrap() >= 3
    })
    .await;

    let response = api.post(&format!("/v1/batches/{id}/cancel")).await;
    assert_eq!(response.status(), 200);
    let canceled: Value = response.json().await.unwrap();
    assert!(
        ["canceling", "canceled"].contains(&canceled["status"].as_str().unwrap()),
        "{canceled}"
    );
    let batch = wait_batch(&api, &id, ended).await;
    assert_eq!(batch["status"], "canceled", "{batch}");
    let counts = &batch["request_counts"];
    let succeeded = counts["succeeded"].as_i64().unwrap();
    let canceled = counts["canceled"].as_i64().unwrap();
    assert!(succeeded >= 3, "{batch}");
    assert!(canceled >= 40, "most requests were never fetched: {batch}");
    assert_eq!(succeeded + canceled, 80, "{batch}");
    assert_eq!(counts["pending"], 0);

    // Fetches in flight at the cancel end without a job (nor a charge): every job there is
    // is a request's, and none is made later.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let jobs_then = api.get_json("/v1/jobs?limit=100").await["jobs"].clone();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let jobs_now = api.get_json("/v1/jobs?limit=100").await["jobs"].clone();
    assert_eq!(jobs_now, jobs_then);
    let jobs = jobs_now.as_array().unwrap();
    assert!(jobs.len() < 80, "{} jobs", jobs.len());
    assert!(
        jobs.iter()
            .all(|j| ["succeeded", "canceled"].contains(&j["status"].as_str().unwrap())),
        "{jobs_now}"
    );
    let results = results_of(&api, &id).await;
    assert_eq!(results.len(), 80);
    let linked = results.iter().filter(|r| r["job_id"].is_string()).count();
    assert_eq!(linked, jobs.len(), "{jobs_now}");
    let done = results
        .iter()
        .filter(|r| r["status"] == "succeeded")
        .count() as i64;
    assert_eq!(done, succeeded);
    assert!(
        results
            .iter()
            .filter(|r| r["status"] == "succeeded")
            .all(|r| r["transcript"]["text"].is_string())
    );

    let delivered = receiver.wait_for("/batches", 1, WAIT).await;
    let event = delivered[0].json();
    assert_eq!(event["type"], "batch.completed");
    assert_eq!(event["data"]["status"], "canceled");
    assert_eq!(event["data"]["request_counts"], batch["request_counts"]);
    // Canceling again answers the batch and changes nothing; the cancel was audited.
    let again = api.post(&format!("/v1/batches/{id}/cancel")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["status"], "canceled");
    let audit = api.get_json("/v1/audit").await;
    let cancels = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "batch.cancel")
        .count();
    assert_eq!(cancels, 1, "{audit}");
    assert_eq!(receiver.received("/batches").len(), 1);

    // Revoking a key stops its batches: what it had not fetched fails, `unauthorized`.
    let (key_id, secret) = common::make_key(&api, "leaked", "user", Some("acme")).await;
    let leaked = api.as_key(&secret);
    let lines: Vec<Value> = (1..=40)
        .map(|i| json!({"custom_id": format!("k{i}"), "audio_url": format!("{files}/speech/{i}.wav")}))
        .collect();
    let response = post_lines(&leaked, jsonl(&lines)).await;
    assert_eq!(response.status(), 202);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    wait_batch(&api, &id, |b| {
        b["request_counts"]["pending"].as_i64().unwrap() < 38
    })
    .await;
    assert_eq!(
        api.delete(&format!("/v1/keys/{key_id}")).await.status(),
        200
    );
    let batch = wait_batch(&api, &id, ended).await;
    let results = results_of(&api, &id).await;
    let refused = results
        .iter()
        .filter(|r| r["error"]["code"] == "unauthorized")
        .count();
    assert!(refused >= 20, "{batch}");
    assert_eq!(batch["request_counts"]["failed"], refused as i64, "{batch}");
}
