//! The real-world inputs of `audio/tests/real_world.rs` and `api/tests/real_world.rs`, made by
//! `tools/fixtures/make_real_world.sh` (and of `api/tests/transcripts.rs`, its subtitles
//! section). Each test crate uses what it needs of it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the inputs under `dir`; `None`, after saying why, where ffmpeg or sox is missing,
/// except under `CI`, where that fails the test.
pub fn inputs(dir: &Path) -> Option<PathBuf> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/fixtures/make_real_world.sh");
    let output = Command::new("bash").arg(script).arg(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) => Some(dir.to_path_buf()),
        Some(77) if std::env::var_os("CI").is_none() => {
            eprintln!("SKIPPED: {}", stderr.trim());
            None
        }
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
