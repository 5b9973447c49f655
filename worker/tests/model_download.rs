//! `worker run` when the model cannot be fetched: the real binary, with a loopback server
//! standing in for the Hugging Face Hub (through `HF_ENDPOINT`), says once what was tried, why
//! it failed and what to do, and stops before taking any job.

use std::process::Command;

#[path = "../../parakeet/tests/support/hub_stand_in.rs"]
mod hub_stand_in;

use hub_stand_in::{hub, no_url_twice, once};

/// Runs `worker run` on a fresh SQLite database and store, with the default model, an empty
/// Hugging Face cache and `env` on top; returns its stderr after checking it failed to start
/// (exit status 2).
fn worker_run(env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_worker"));
    cmd.arg("run")
        .env(
            "WARBLE_DATABASE_URL",
            format!("sqlite://{}", path("warble.db")),
        )
        .env("WARBLE_STORAGE_URL", format!("file://{}", path("blobs")))
        .env("HF_HOME", path("hf"));
    // What the user gets by default: the default model, log filter, Hub and cache.
    for key in [
        "WARBLE_MODEL",
        "WARBLE_MODEL_SHA256",
        "WARBLE_DEVICE",
        "WARBLE_LOG",
        "HF_ENDPOINT",
        "HF_HUB_OFFLINE",
        "HF_HUB_CACHE",
        "HUGGINGFACE_HUB_CACHE",
    ] {
        cmd.env_remove(key);
    }
    cmd.envs(env.iter().copied());
    let output = cmd.output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    stderr
}

/// The first line of the error when the default model cannot be fetched.
const CANNOT_FETCH: &str = "error: loading model nvidia/parakeet-tdt-0.6b-v2 (WARBLE_MODEL, \
                            --model): cannot fetch nvidia/parakeet-tdt-0.6b-v2 from the Hugging \
                            Face Hub: ";

const NEMO: &str = "/nvidia/parakeet-tdt-0.6b-v2/resolve/main/parakeet-tdt-0.6b-v2.nemo";

#[test]
fn a_gated_model_names_the_url_once_and_asks_for_hf_token() {
    let hub = hub("401 Unauthorized");
    let endpoint = hub.url.as_str();
    let stderr = worker_run(&[("HF_ENDPOINT", endpoint)]);
    assert_eq!(
        *hub.requests.lock().unwrap(),
        [format!("HEAD {NEMO} HTTP/1.1")]
    );
    once(&stderr, &format!("tried: {endpoint}{NEMO}\n"));
    no_url_twice(&stderr);
    once(
        &stderr,
        "401 Unauthorized: the repository is gated or private",
    );
    once(&stderr, "set HF_TOKEN");
    once(&stderr, "WARBLE_MODEL");
    once(&stderr, "a local .nemo file path");
    once(&stderr, CANNOT_FETCH);
}

#[test]
fn a_missing_repository_tries_each_layout_once() {
    let hub = hub("404 Not Found");
    let endpoint = hub.url.as_str();
    let stderr = worker_run(&[("HF_ENDPOINT", endpoint)]);
    assert_eq!(hub.requests.lock().unwrap().len(), 2);
    let config = "/nvidia/parakeet-tdt-0.6b-v2/resolve/main/config.json";
    once(
        &stderr,
        &format!("tried: {endpoint}{NEMO}, {endpoint}{config}\n"),
    );
    no_url_twice(&stderr);
    once(&stderr, "404 Not Found: no such repository");
    once(&stderr, "check the repository id");
    once(&stderr, CANNOT_FETCH);
}

/// hf-hub retries a 500 and logs the URL when it gives up; the default log filter leaves that
/// to the error, which names it once.
#[test]
fn a_server_error_after_retries_names_the_url_once() {
    let hub = hub("500 Internal Server Error");
    let endpoint = hub.url.as_str();
    let stderr = worker_run(&[("HF_ENDPOINT", endpoint)]);
    assert!(hub.requests.lock().unwrap().len() > 1, "hf-hub retries");
    no_url_twice(&stderr);
    once(&stderr, &format!("{endpoint}{NEMO}"));
    once(&stderr, "the server answered 500 Internal Server Error");
    once(&stderr, "try again later");
    once(&stderr, CANNOT_FETCH);
}

#[test]
fn offline_with_an_empty_cache_says_where_the_cache_is() {
    let stderr = worker_run(&[("HF_HUB_OFFLINE", "1")]);
    assert!(!stderr.contains("http"), "{stderr}");
    once(&stderr, "offline (HF_HUB_OFFLINE) and not in the cache");
    once(
        &stderr,
        "looked for: parakeet-tdt-0.6b-v2.nemo, config.json in ",
    );
    once(
        &stderr,
        "point HF_HOME (or HF_HUB_CACHE) at a cache that holds it",
    );
    once(&stderr, CANNOT_FETCH);
}

#[test]
fn a_malformed_hf_endpoint_is_named() {
    let stderr = worker_run(&[("HF_ENDPOINT", "huggingface.co")]);
    once(&stderr, "HF_ENDPOINT \"huggingface.co\" is not a URL");
    once(
        &stderr,
        "set HF_ENDPOINT to the URL of the Hub or of a mirror, or unset it",
    );
    once(&stderr, CANNOT_FETCH);
}

/// A `.nemo` path that does not exist is reported as a missing file, not sent to the Hub.
#[test]
fn a_missing_local_file_is_not_looked_for_on_the_hub() {
    let hub = hub("401 Unauthorized");
    let endpoint = hub.url.as_str();
    let stderr = worker_run(&[
        ("HF_ENDPOINT", endpoint),
        ("WARBLE_MODEL", "models/parakeet.nemo"),
    ]);
    once(
        &stderr,
        "cannot read model models/parakeet.nemo: no such file or directory",
    );
    assert!(hub.requests.lock().unwrap().is_empty());
}
