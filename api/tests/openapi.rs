//! The committed spec is the one the code serves. Regenerate with
//! `cargo run -p warble-api -- openapi > openapi/openapi.json`.

#[test]
fn committed_spec_is_current() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == warble_api::openapi_json(),
        "openapi/openapi.json is stale; run `cargo run -p warble-api -- openapi > openapi/openapi.json`"
    );
}

#[test]
fn every_route_is_documented() {
    let spec: serde_json::Value = serde_json::from_str(&warble_api::openapi_json()).unwrap();
    let paths = spec["paths"].as_object().unwrap();
    for path in [
        "/v1/jobs",
        "/v1/jobs/{id}",
        "/v1/jobs/{id}/transcript",
        "/v1/workers",
        "/health",
        "/ready",
    ] {
        assert!(paths.contains_key(path), "{path} is missing from the spec");
    }
}
