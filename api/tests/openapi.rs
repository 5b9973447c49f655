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

/// Swagger UI (and every generated client) keys operations by `operationId`: two operations
/// sharing one made "Try it out" on `GET /v1/webhooks` send `GET /v1/audit`. Every operation
/// has its own, in camelCase, starting with a verb that fits its method (`listJobs`,
/// `getJob`, `deleteJob`, `revokeKey`, `setKeyQuotas`, ...).
#[test]
fn operation_ids_are_unique_and_named_by_one_convention() {
    let spec: serde_json::Value = serde_json::from_str(&warble_api::openapi_json()).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    let mut problems = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let verbs: &[&str] = match method.as_str() {
                "get" => &["get", "list"],
                "post" => &["create", "cancel", "rotate", "retry"],
                "put" => &["set"],
                "patch" => &["update"],
                "delete" => &["delete", "revoke"],
                _ => continue,
            };
            let what = format!("{} {path}", method.to_uppercase());
            let Some(id) = operation["operationId"].as_str() else {
                problems.push(format!("{what} has no operationId"));
                continue;
            };
            if let Some(other) = seen.insert(id.to_string(), what.clone()) {
                problems.push(format!("{what} and {other} share the operationId {id:?}"));
            }
            if !is_verb_noun(id, verbs) {
                problems.push(format!(
                    "{what}: operationId {id:?} is not camelCase verbNoun with a verb of {verbs:?}"
                ));
            }
        }
    }
    assert!(!seen.is_empty(), "the spec has no operations");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// `listJobs`: one of `verbs`, then one or more capitalised ASCII words.
fn is_verb_noun(id: &str, verbs: &[&str]) -> bool {
    verbs.iter().any(|verb| {
        id.strip_prefix(verb).is_some_and(|noun| {
            noun.starts_with(|c: char| c.is_ascii_uppercase())
                && noun.chars().all(|c| c.is_ascii_alphanumeric())
        })
    })
}

#[test]
fn the_naming_convention_rejects_what_it_should() {
    assert!(is_verb_noun("listJobs", &["get", "list"]));
    assert!(is_verb_noun("setKeyQuotas", &["set"]));
    for bad in [
        "list",
        "listjobs",
        "list_jobs",
        "ListJobs",
        "getJob",
        "list-jobs",
        "listJobs!",
    ] {
        assert!(!is_verb_noun(bad, &["list"]), "{bad}");
    }
}
