//! Security headers on every kind of response, CORS for the configured origins only, request
//! ids; the 5xx case is in `resilience.rs` (a database outage).

mod common;

use common::{Api, Backends, assert_security_headers, error_of};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread")]
async fn every_response_carries_the_security_headers() {
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(&Backends::local(dir.path()));
    let raw = reqwest::Client::new();
    let responses = [
        api.get("/health").await,
        api.get("/docs/").await,
        api.get("/v1/jobs").await,
        api.get("/v1/nothing").await,
        api.get("/v1/jobs/01JDR7Q9V3X8M2K4T6N0P5B1CZ").await,
        api.get("/v1/jobs?limit=0").await,
        raw.get(api.url("/v1/jobs")).send().await.unwrap(),
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 200, 404, 404, 400, 401]);
    for response in &responses {
        assert_security_headers(response);
    }
    // Client errors carry no request id in the body (only 5xx do), and ids differ.
    let first = responses[3].headers()["x-request-id"].clone();
    assert_ne!(first, responses[4].headers()["x-request-id"]);
    let [.., last] = responses;
    let body: serde_json::Value = last.json().await.unwrap();
    assert!(body["error"].get("request_id").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_allows_only_configured_origins() {
    let dir = tempfile::tempdir().unwrap();
    let preflight = |api: &Api, origin: &'static str| {
        api.client
            .request(reqwest::Method::OPTIONS, api.url("/v1/jobs"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .send()
    };
    // Default: pages served from localhost only.
    let api = Api::start(&Backends::local(dir.path()));
    let response = preflight(&api, "http://localhost:5173").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert_security_headers(&response);
    for hostile in [
        "https://evil.example",
        "http://localhost.evil.example",
        "null",
    ] {
        let response = preflight(&api, hostile).await.unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none(),
            "{hostile} was allowed"
        );
        // A real request from there is answered (CORS is the browser's to enforce) but
        // without the header that would let the page read it.
        let response = api
            .client
            .get(api.url("/v1/jobs"))
            .header("origin", hostile)
            .send()
            .await
            .unwrap();
        assert!(
            response
                .headers()
                .get("access-control-allow-origin")
                .is_none()
        );
    }
    drop(api);

    // Configured: exactly those origins, localhost no longer.
    let mut backends = Backends::local(dir.path());
    backends.env.push((
        "WARBLE_CORS_ORIGINS".into(),
        "https://app.example.com,https://admin.example.com".into(),
    ));
    let api = Api::start(&backends);
    let response = preflight(&api, "https://admin.example.com").await.unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://admin.example.com"
    );
    let response = preflight(&api, "http://localhost:5173").await.unwrap();
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let response = api.client.get(api.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(error_of(response).await, (404, "not_found".into()));
}

/// `(status, RateLimit-Remaining)` of a response.
fn remaining(response: &reqwest::Response) -> (u16, String) {
    let left = response
        .headers()
        .get("ratelimit-remaining")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (response.status().as_u16(), left)
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_per_key_and_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let mut backends = Backends::local(dir.path());
    for (name, value) in [
        ("WARBLE_RATE_LIMIT_BURST", "5"),
        ("WARBLE_RATE_LIMIT_PER_MINUTE", "6"),
        ("WARBLE_IP_RATE_LIMIT_BURST", "3"),
        ("WARBLE_IP_RATE_LIMIT_PER_MINUTE", "6"),
    ] {
        backends.env.push((name.into(), value.into()));
    }
    let mut api = Api::start(&backends);

    // Per key: a burst of 5, then 429 with the headers, for the key and its tokens alike.
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(remaining(&api.get("/v1/jobs").await));
    }
    let expected: Vec<(u16, String)> = (0..5).rev().map(|n| (200, n.to_string())).collect();
    assert_eq!(seen, expected);
    let refused = api.get("/v1/jobs").await;
    assert_security_headers(&refused);
    let headers = refused.headers().clone();
    assert_eq!(error_of(refused).await, (429, "rate_limited".into()));
    assert_eq!(headers["ratelimit-limit"], "5");
    assert_eq!(headers["ratelimit-remaining"], "0");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=10).contains(&retry), "Retry-After {retry}");
    assert_eq!(headers["ratelimit-reset"], headers["retry-after"]);
    // Forged X-Forwarded-For does not help a key, nor does a token of the same key.
    let forged = api
        .client
        .get(api.url("/v1/jobs"))
        .header("x-forwarded-for", "203.0.113.7")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 429);

    // Per address on the public docs and on failed authentication; forged headers do not
    // reset it.
    let raw = reqwest::Client::new();
    let docs = |n: u32| {
        raw.get(api.url("/openapi.json"))
            .header("x-forwarded-for", format!("198.51.100.{n}"))
            .send()
    };
    for n in 0..3 {
        assert_eq!(docs(n).await.unwrap().status(), 200);
    }
    let refused = docs(99).await.unwrap();
    assert_eq!(error_of(refused).await, (429, "rate_limited".into()));
    let guess = raw
        .get(api.url("/v1/jobs"))
        .header("authorization", "Bearer wbl_guess")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(guess).await, (429, "rate_limited".into()));
    // The probes are never limited.
    assert_eq!(
        raw.get(api.url("/health")).send().await.unwrap().status(),
        200
    );
    drop(api);

    // Behind a trusted proxy, the forwarded address is the client's: separate buckets.
    backends
        .env
        .push(("WARBLE_TRUSTED_PROXIES".into(), "127.0.0.1,::1".into()));
    api = Api::start(&backends);
    for n in 0..6 {
        let response = raw
            .get(api.url("/openapi.json"))
            .header("x-forwarded-for", format!("198.51.100.{n}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "client {n}");
    }
}

/// `worker run` checks `WARBLE_MODEL_SHA256` before loading: a mismatch stops it with the
/// reason, the right digest lets it serve.
#[tokio::test(flavor = "multi_thread")]
async fn the_worker_refuses_a_model_with_the_wrong_checksum() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let backends = Backends::local(dir.path());
    let wrong = "0".repeat(64);
    let output = std::process::Command::new(common::worker_bin())
        .args(["run", "--model"])
        .arg(common::model())
        .env("WARBLE_MODEL_SHA256", &wrong)
        .env("WARBLE_DATABASE_URL", &backends.database_url)
        .env("WARBLE_STORAGE_URL", &backends.storage_url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refusing to load it"), "{stderr}");

    let digest = warble_common::hex(&sha2::Sha256::digest(
        std::fs::read(common::model()).unwrap(),
    ));
    let _worker = common::start_worker_with(&backends, &[("WARBLE_MODEL_SHA256", &digest)]);
}
