//! The OpenAI-compatible routes (issue 18) against real `api` and `worker` processes: the
//! official `openai` Python SDK (`tools/openai/client.py`) for every response format, word and
//! segment timestamps, streaming, and the errors it must classify; a raw request as proxies
//! send it (`timestamp_granularities` without `[]`); and a request that times out, or whose
//! client goes away, leaving its job to finish.

#[macro_use]
mod common;

use std::path::Path;
use std::time::Duration;

use common::{Api, Backends, fixture, make_key_with, start_worker};
use serde_json::{Value, json};

const AUDIO: &str = "audio/tts_us_m6.wav";

/// The model id `GET /v1/models` shows for the fixture model: its file's stem.
fn model_id() -> String {
    common::model()
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

async fn transcript(api: &Api, job: &Value, format: &str) -> String {
    let id = job.as_str().expect("the answer names its job");
    let response = api
        .get(&format!("/v1/jobs/{id}/transcript?format={format}"))
        .await;
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

async fn sdk_against(backends: Backends, _dir: &Path) {
    let api = Api::start(&backends);
    let _worker = start_worker(&api, &backends).await;
    let (_, limited) = make_key_with(
        &api,
        "limited",
        "user",
        None,
        Some(json!({"audio_seconds_per_day": 1})),
    )
    .await;
    let file = fixture(AUDIO);
    let python = common::tools_python("openai", "pip install openai==3.57.0");
    let (model, admin) = (model_id(), common::ADMIN_KEY.to_string());
    let args: Vec<&std::ffi::OsStr> = vec![
        api.base.as_ref(),
        admin.as_ref(),
        file.as_os_str(),
        model.as_ref(),
        limited.as_ref(),
    ];
    let out = common::run_tool(&python, "openai/client.py", &args, b"");
    let sdk: Value = serde_json::from_slice(&out).unwrap();

    // Each answer is its job's transcript, in the asked format.
    let stored: Value =
        serde_json::from_str(&transcript(&api, &sdk["json"]["job"], "json").await).unwrap();
    let text = stored["text"].as_str().unwrap();
    assert!(!text.is_empty());
    assert_eq!(sdk["json"]["text"], text);
    assert_eq!(
        sdk["json"]["usage_seconds"].as_f64(),
        Some(stored["duration"].as_f64().unwrap().ceil())
    );
    assert_eq!(
        sdk["text"]["body"],
        transcript(&api, &sdk["text"]["job"], "text").await
    );
    assert_eq!(
        sdk["srt"]["body"],
        transcript(&api, &sdk["srt"]["job"], "srt").await
    );
    assert_eq!(
        sdk["vtt"]["body"],
        transcript(&api, &sdk["vtt"]["job"], "vtt").await
    );
    let both = &sdk["verbose_both"];
    let stored: Value =
        serde_json::from_str(&transcript(&api, &both["job"], "json").await).unwrap();
    assert_eq!(both["text"], stored["text"]);
    assert_eq!(both["language"], "english");
    assert_eq!(both["duration"], stored["duration"]);
    assert_eq!(both["words"], stored["words"]);
    let segments: Vec<Value> = stored["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| json!({"text": s["text"], "start": s["start"], "end": s["end"]}))
        .collect();
    assert_eq!(both["segments"], Value::from(segments));
    // Words alone: no segments, and the language as asked.
    assert_eq!(sdk["verbose_words"]["language"], "en");
    assert_eq!(
        sdk["verbose_words"]["words"],
        stored["words"].as_array().unwrap().len()
    );
    assert_eq!(sdk["verbose_words"]["segments"], Value::Null);
    // Streaming: deltas that add up to the text, then done.
    let types = sdk["stream"]["types"].as_array().unwrap();
    assert!(types.len() >= 2, "{types:?}");
    assert!(
        types[..types.len() - 1]
            .iter()
            .all(|t| t == "transcript.text.delta")
    );
    assert_eq!(types.last().unwrap(), "transcript.text.done");
    assert_eq!(sdk["stream"]["deltas"], text);
    assert_eq!(sdk["stream"]["done"], text);
    assert_eq!(sdk["alias"], text);

    // The SDK's own classes for OpenAI's errors.
    let errors = &sdk["errors"];
    assert_eq!(
        errors["bad_key"]["class"], "AuthenticationError",
        "{errors}"
    );
    assert_eq!(errors["bad_key"]["code"], "unauthorized");
    assert_eq!(errors["quota"]["class"], "RateLimitError", "{errors}");
    assert_eq!(errors["quota"]["code"], "quota_audio_seconds");
    assert!(errors["quota"]["retry_after"].is_string(), "{errors}");
    assert_eq!(errors["model"]["class"], "NotFoundError", "{errors}");
    assert_eq!(errors["model"]["code"], "model_not_found");
    assert_eq!(errors["format"]["class"], "BadRequestError", "{errors}");
    assert_eq!(errors["format"]["code"], "invalid_response_format");
    assert_eq!(errors["translation"]["code"], "translation_not_supported");
    assert_eq!(sdk["models"], json!([model_id()]));

    // Every request that got through was a job like any other: 8 of them (the translation and
    // the refused ones made none).
    let jobs = api.get_json("/v1/jobs?limit=100").await;
    let jobs = jobs["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 8, "{jobs:?}");
    assert!(jobs.iter().all(|j| j["status"] == "succeeded"));

    // A proxy's spelling: `timestamp_granularities` without `[]`, and the error shape on a bad
    // parameter.
    let form = || {
        reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(std::fs::read(&file).unwrap())
                    .file_name("speech.wav"),
            )
            .text("model", model_id())
            .text("response_format", "verbose_json")
    };
    let response = api
        .client
        .post(api.url("/v1/audio/transcriptions"))
        .multipart(form().text("timestamp_granularities", "word"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["words"], stored["words"]);
    assert!(body.get("segments").is_none(), "{body}");
    let response = api
        .client
        .post(api.url("/v1/audio/transcriptions"))
        .multipart(form().text("temperature", "7"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "message": "temperature must be a number from 0 to 1",
            "type": "invalid_request_error",
            "param": null,
            "code": "invalid_parameter",
        }})
    );
}

/// No worker yet: the request gives up after `WARBLE_OPENAI_WAIT_SECS` with a clear error
/// naming its job, and a client that goes away earlier loses nothing either; both jobs finish
/// once a worker comes.
async fn a_timeout_or_a_gone_client_leaves_the_job_running(mut backends: Backends, _dir: &Path) {
    backends
        .env
        .push(("WARBLE_OPENAI_WAIT_SECS".into(), "1".into()));
    let api = Api::start(&backends);
    let send = |timeout: Option<Duration>| {
        let mut request = api
            .client
            .post(api.url("/v1/audio/transcriptions"))
            .multipart(
                reqwest::multipart::Form::new()
                    .part(
                        "file",
                        reqwest::multipart::Part::bytes(std::fs::read(fixture(AUDIO)).unwrap())
                            .file_name("speech.wav"),
                    )
                    .text("model", "whisper-1"),
            );
        if let Some(timeout) = timeout {
            request = request.timeout(timeout);
        }
        request.send()
    };
    let response = send(None).await.unwrap();
    assert_eq!(response.status(), 504);
    assert_eq!(response.headers()["x-should-retry"], "false");
    let id = response.headers()["x-warble-job-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "transcription_timeout");
    assert_eq!(body["error"]["type"], "server_error");
    assert!(
        body["error"]["message"].as_str().unwrap().contains(&id),
        "{body}"
    );
    // This client hangs up before the server's wait is over.
    assert!(send(Some(Duration::from_millis(300))).await.is_err());

    let jobs = api.get_json("/v1/jobs").await;
    let ids: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{jobs}");
    assert!(ids.contains(&id.as_str()));
    let _worker = start_worker(&api, &backends).await;
    for id in ids {
        let job = api.wait_final(id, Duration::from_secs(60)).await;
        assert_eq!(job["status"], "succeeded", "{job}");
    }
}

on_both_databases!(
    sdk_against,
    a_timeout_or_a_gone_client_leaves_the_job_running
);
