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
