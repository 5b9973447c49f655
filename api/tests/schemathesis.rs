//! The live API against its own OpenAPI document: `tools/schemathesis/run.sh` fuzzes every
//! operation as the admin for a minute, on a platform that has one finished job, and must
//! find no server error, no operation that answers without a key (`ignored_auth`) and no
//! response the document does not describe.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{ADMIN_KEY, Api, Backends, fixture, start_worker};

/// Seconds of fuzzing.
const SECONDS: &str = "60";

/// schemathesis: `$SCHEMATHESIS`, the copy `scripts/test` installs, or one on `PATH`.
fn schemathesis() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let candidates = [
        std::env::var_os("SCHEMATHESIS").map(PathBuf::from),
        Some(root.join("target/tools-venv/bin/schemathesis")),
        Some(PathBuf::from("schemathesis")),
    ];
    candidates.into_iter().flatten().find(|path| {
        Command::new(path)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success())
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_keeps_to_its_spec_under_fuzzing() {
    let st = schemathesis().unwrap_or_else(|| {
        common::prerequisite::missing("schemathesis", "pip install schemathesis==4.32.5")
    });
    let dir = tempfile::tempdir().unwrap();
    let mut backends = Backends::local(dir.path());
    // Generated audio URLs name hosts out of reach here: give up on each quickly.
    backends
        .env
        .push(("WARBLE_AUDIO_URL_TIMEOUT_SECS".into(), "2".into()));
    let api = Api::start(&backends);
    let _worker = start_worker(&api, &backends).await;
    let job = api.submit_ok(&fixture("audio/tts_us_m6.wav")).await;
    let done = api.wait_final(&job, Duration::from_secs(120)).await;
    assert_eq!(done["status"], "succeeded", "{done}");

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/schemathesis/run.sh");
    let base = api.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(script)
            .args([base.as_str(), ADMIN_KEY, SECONDS, job.as_str()])
            .env("SCHEMATHESIS", st)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    println!("{report}{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "schemathesis found failures");
    assert!(report.contains("Test cases:"), "no summary");
}
