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

    let digest = warble_jobs::hex(&sha2::Sha256::digest(
        std::fs::read(common::model()).unwrap(),
    ));
    let api = Api::start(&backends);
    let _worker =
        common::start_worker_with(&api, &backends, &[("WARBLE_MODEL_SHA256", &digest)]).await;
}

/// Error bodies, 4xx and 5xx alike, name no file path, storage URI, SQL or code location:
/// with storage broken (local files, then S3, whose errors carry full URLs) and across the
/// client errors of every route.
#[tokio::test(flavor = "multi_thread")]
async fn error_bodies_never_leak_internals() {
    let speech = common::fixture("audio/tts_us_m6.wav");
    for s3 in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let backends = if s3 {
            Backends::s3(dir.path()).await
        } else {
            Backends::local(dir.path())
        };
        let api = Api::start(&backends);
        let job = api.submit_ok(&speech).await;
        let mut bodies = Vec::new();
        for (method, path, body) in [
            ("GET", "/v1/jobs?limit=abc", None),
            ("GET", "/v1/jobs?status=lost", None),
            ("GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd", None),
            ("GET", "/v1/jobs/%00/transcript?format=pdf", None),
            ("GET", &format!("/v1/jobs/{job}/transcript"), None),
            ("GET", "/v1/usage?key_id=nobody", None),
            ("GET", "/v1/audit?cursor=%27%3B--", None),
            ("POST", "/v1/keys", Some("{\"name\":")),
            ("POST", "/v1/keys", Some("[1,2]")),
            ("PUT", "/v1/keys/x/quotas", Some("{\"upload_bytes\":-1}")),
            ("DELETE", "/v1/keys/%27%20OR%201%3D1", None),
            ("PATCH", "/v1/jobs", None),
        ] {
            let mut request = api
                .client
                .request(method.parse().unwrap(), api.url(path))
                .header("content-type", "application/json");
            if let Some(body) = body {
                request = request.body(body);
            }
            let response = request.send().await.unwrap();
            assert!(!response.status().is_server_error(), "{method} {path}");
            bodies.push(response.text().await.unwrap());
        }
        // Storage breaks: the blob directory becomes a file, the bucket disappears.
        std::fs::remove_dir_all(&backends.objects).unwrap();
        std::fs::write(&backends.objects, b"not a directory").unwrap();
        let response = api.submit(&speech, &[], None).await;
        assert_eq!(response.status(), 503, "s3={s3}");
        bodies.push(response.text().await.unwrap());
        bodies.push(api.get("/ready").await.text().await.unwrap());

        let forbidden = [
            dir.path().to_str().unwrap(),
            "/tmp",
            "file:",
            "s3:",
            "http:",
            "127.0.0.1",
            "warble-test",
            "audio/",
            "sqlite",
            "postgres",
            "select ",
            "insert ",
            "warble_",
            ".rs:",
            "panicked",
            "object_store",
            "os error",
            "no such",
        ];
        for body in &bodies {
            let lower = body.to_lowercase();
            for word in forbidden {
                assert!(!lower.contains(word), "s3={s3}: {word:?} leaked: {body}");
            }
            assert!(body.starts_with('{'), "not JSON: {body}");
        }
    }
}

/// Swagger UI works under our Content-Security-Policy: a headless Chromium loads `/docs/`
/// from the real server and, its scripts allowed to run, renders every path of the spec.
#[tokio::test(flavor = "multi_thread")]
async fn swagger_ui_renders_under_the_csp() {
    let chromium = common::chromium();
    let dir = tempfile::tempdir().unwrap();
    let api = Api::start(&Backends::local(dir.path()));
    let spec: serde_json::Value = api.get_json("/openapi.json").await;
    let url = api.url("/docs/");
    let profile = dir.path().join("chromium");
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .args(["--virtual-time-budget=10000", "--dump-dom", &url])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    let paths = spec["paths"].as_object().unwrap();
    for path in paths.keys() {
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "Swagger UI did not render {path}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
