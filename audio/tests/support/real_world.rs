//! The real-world inputs of `audio/tests/real_world.rs` and `api/tests/real_world.rs`, made by
//! `tools/fixtures/make_real_world.sh` (and of `api/tests/transcripts.rs`, its subtitles
//! section). Each test crate uses what it needs of it, and has `crate::prerequisite`
//! (`jobs/tests/support/prerequisite.rs`).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the inputs under `dir`; fails the test, saying what to install, where ffmpeg or sox
/// is missing.
pub fn inputs(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures/make_real_world.sh");
    let output = Command::new("bash").arg(script).arg(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => dir.to_path_buf(),
        Some(77) => crate::prerequisite::missing(stderr.trim(), "install ffmpeg and sox"),
        _ => panic!("make_real_world.sh failed: {stderr}"),
    }
}

/// `durations.tsv`: each file whose length is under test, and the length of the audio it was
/// made from, seconds.
pub fn durations(dir: &Path) -> BTreeMap<String, f64> {
    std::fs::read_to_string(dir.join("durations.tsv"))
        .unwrap()
        .lines()
        .map(|line| {
            let (file, secs) = line.split_once('\t').unwrap();
            (file.to_string(), secs.parse().unwrap())
        })
        .collect()
}
