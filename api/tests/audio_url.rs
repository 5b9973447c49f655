//! Jobs from a URL (issue 18): `POST /v1/jobs` with `{"audio_url": ...}` fetches the file from
//! a loopback file server (private addresses allowed here, as a deployment fetching from its
//! own network would) through redirects, then runs it like an upload; too large, slow, failing
//! and private URLs are refused with clear codes and leave nothing stored. A redirect to a
//! private address is refused by `from_url`'s unit test: here every address is loopback.

#[macro_use]
mod common;

use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use common::{Api, Backends, error_of, fixture, start_worker};
use serde_json::{Value, json};

/// A file server on loopback: the speech file, redirects to it, a file without a length that
/// never ends, one that trickles, a 404 and a page that is not audio.
async fn file_server() -> String {
    let speech = std::fs::read(fixture("audio/tts_us_m6.wav")).unwrap();
    let speech_again = speech.clone();
    let app = Router::new()
        .route(
            "/speech.wav",
            get(move || {
                let speech = speech.clone();
                async move { ([(header::CONTENT_TYPE, "audio/wav")], speech) }
            }),
        )
        .route(
            "/get.php",
            get(move || {
                let speech = speech_again.clone();
                // A download link: no audio extension in the path, only the type says.
                async move { ([(header::CONTENT_TYPE, "audio/x-wav")], speech) }
            }),
        )
        .route("/hop", get(|| async { Redirect::temporary("/speech.wav") }))
        .route("/loop", get(|| async { Redirect::temporary("/loop") }))
        .route(
            "/endless.wav",
            get(|| async {
                // No Content-Length: only counting the bytes can stop it.
                let chunks = futures::stream::repeat_with(|| {
                    Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0u8; 64 * 1024]))
                });
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/slow.wav",
            get(|| async {
                let chunks = futures::stream::unfold((), |()| async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    Some((
                        Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"RIFF")),
                        (),
                    ))
                });
                Body::from_stream(chunks)
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

async fn submit_url(api: &Api, body: Value) -> reqwest::Response {
    api.client
        .post(api.url("/v1/jobs"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn fetched_through_redirects_and_refused_clearly(mut backends: Backends, _dir: &Path) {
    for (name, value) in [
        ("WARBLE_AUDIO_URL_ALLOW_PRIVATE", "true"),
        ("WARBLE_AUDIO_URL_TIMEOUT_SECS", "2"),
        ("WARBLE_MAX_UPLOAD_BYTES", "2000000"),
    ] {
        backends.env.push((name.into(), value.into()));
    }
    let files = file_server().await;
    let api = Api::start(&backends);
    let _worker = start_worker(&api, &backends).await;

    let response = submit_url(
        &api,
        json!({"audio_url": format!("{files}/hop"), "metadata": {"from": "url"}}),
    )
    .await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["filename"], "speech.wav");
    assert_eq!(job["metadata"], json!({"from": "url"}));
    let done = api
        .wait_final(job["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let transcript = api
        .get_json(&format!(
            "/v1/jobs/{}/transcript",
            job["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        transcript["text"],
        common::transcribe_cli(&fixture("audio/tts_us_m6.wav"))["text"]
    );
    let response = submit_url(&api, json!({"audio_url": format!("{files}/get.php?id=7")})).await;
    assert_eq!(response.status(), 202);
    let job: Value = response.json().await.unwrap();
    let done = api
        .wait_final(job["id"].as_str().unwrap(), Duration::from_secs(60))
        .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let stored = backends.stored_objects();

    for (path, status, code) in [
        ("/endless.wav", 413, "audio_url_too_large"),
        ("/slow.wav", 422, "audio_url_timeout"),
        ("/missing.wav", 422, "audio_url_unreachable"),
        ("/loop", 422, "audio_url_unreachable"),
        ("/page.wav", 415, "unsupported_media_type"),
    ] {
        let response = submit_url(&api, json!({"audio_url": format!("{files}{path}")})).await;
        assert_eq!(
            error_of(response).await,
            (status, code.to_string()),
            "{path}"
        );
    }
    for (body, code) in [
        (
            json!({"audio_url": "ftp://example.com/a.wav"}),
            "invalid_audio_url",
        ),
        (
            json!({"audio_url": "http://user:pw@example.com/a.wav"}),
            "invalid_audio_url",
        ),
        (
            json!({"audio_url": format!("{files}/speech.wav"), "decoder": "beam"}),
            "invalid_decoder",
        ),
        (
            json!({"audio_url": format!("{files}/speech.wav"), "metadata": [1]}),
            "invalid_metadata",
        ),
        (
            json!({"audio_url": format!("{files}/speech.wav"), "speed": 2}),
            "invalid_body",
        ),
        (json!({"decoder": "tdt"}), "invalid_body"),
    ] {
        let response = submit_url(&api, body.clone()).await;
        assert_eq!(error_of(response).await.1, code, "{body}");
    }
    // Nothing of the refused ones was kept, and no job was made for them.
    assert_eq!(backends.stored_objects(), stored);
    let jobs = api.get_json("/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2, "{jobs}");
}

/// By default the server fetches only from public addresses: a loopback URL is refused before
/// anything is fetched.
async fn private_addresses_are_refused_by_default(backends: Backends, _dir: &Path) {
    let files = file_server().await;
    let api = Api::start(&backends);
    for url in [
        format!("{files}/speech.wav"),
        "http://localhost/speech.wav".to_string(),
        "http://169.254.169.254/latest/meta-data".to_string(),
    ] {
        let response = submit_url(&api, json!({"audio_url": url})).await;
        assert_eq!(
            error_of(response).await,
            (422, "invalid_audio_url".into()),
            "{url}"
        );
    }
    assert_eq!(backends.stored_objects(), 0);
}

on_both_databases!(
    fetched_through_redirects_and_refused_clearly,
    private_addresses_are_refused_by_default
);
