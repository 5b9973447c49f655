//! `worker transcribe` end to end: the real binary on the fixture model and audio.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use warble_parakeet::{DecoderKind, LoadOptions, Parakeet, TranscribeOptions};

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../parakeet/tests/fixtures")
        .join(rel)
}

fn worker(args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_worker"));
    cmd.arg("transcribe")
        .args(args)
        .env_remove("WARBLE_MODEL")
        .env_remove("WARBLE_MODEL_SHA256");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().unwrap()
}

fn json_lines(output: &Output) -> Vec<Value> {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const AUDIO: [&str; 2] = ["audio/tts_us_m6.wav", "audio/tts_rp_m7.wav"];

#[test]
fn json_lines_carry_what_the_engine_produces() {
    let model_path = fixture("models/hybrid.nemo");
    let files: Vec<PathBuf> = AUDIO.iter().map(|f| fixture(f)).collect();
    let model = Parakeet::load(model_path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    for decoder in [DecoderKind::Tdt, DecoderKind::Ctc] {
        let mut args = vec![
            "--model",
            model_path.to_str().unwrap(),
            "--json",
            "--decoder",
            decoder.as_str(),
        ];
        args.extend(files.iter().map(|f| f.to_str().unwrap()));
        let lines = json_lines(&worker(&args, &[]));
        assert_eq!(lines.len(), files.len());
        for (line, file) in lines.iter().zip(&files) {
            let audio = warble_parakeet::audio::decode_file(file).unwrap();
            let options = TranscribeOptions {
                decoder: Some(decoder),
                ..TranscribeOptions::default()
            };
            let expected = model.transcribe(&audio.samples, &options).unwrap();
            assert_eq!(line["file"], file.to_str().unwrap());
            assert_eq!(line["text"], expected.text.as_str());
            assert_eq!(line["duration"].as_f64().unwrap(), expected.duration);
            assert_eq!(
                line["tokens"],
                serde_json::to_value(expected.token_ids()).unwrap()
            );
            assert_eq!(
                line["words"],
                serde_json::to_value(&expected.words).unwrap()
            );
            let keys: Vec<&str> = line
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(
                keys,
                ["duration", "file", "text", "tokens", "words"],
                "exactly these fields"
            );
        }
    }
}

#[test]
fn a_bad_file_is_reported_and_the_others_still_run() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.wav");
    std::fs::write(&broken, b"RIFF....WAVEnot really").unwrap();
    let good = fixture(AUDIO[0]);
    let model = fixture("models/hybrid.nemo");
    let output = worker(
        &[
            "--model",
            model.to_str().unwrap(),
            "--json",
            broken.to_str().unwrap(),
            good.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.contains("tts_us_m6.wav"));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("broken.wav"), "{stderr}");
}

#[test]
fn a_checksum_mismatch_refuses_the_model() {
    let model = fixture("models/hybrid.nemo");
    let zeros = "0".repeat(64);
    let output = worker(
        &[
            "--model",
            model.to_str().unwrap(),
            "--model-sha256",
            &zeros,
            fixture(AUDIO[0]).to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("refusing to load it"), "{stderr}");
    assert!(output.stdout.is_empty());
}

/// Lays out a Hugging Face cache the way `huggingface_hub` does, holding `name.nemo`.
fn hub_cache(home: &Path, owner: &str, name: &str) {
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let repo = home.join("hub").join(format!("models--{owner}--{name}"));
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs/main"), commit).unwrap();
    let snapshot = repo.join("snapshots").join(commit);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::copy(
        fixture("models/hybrid.nemo"),
        snapshot.join(format!("{name}.nemo")),
    )
    .unwrap();
}

#[test]
fn a_repository_id_resolves_through_the_hub_cache_offline() {
    let home = tempfile::tempdir().unwrap();
    hub_cache(home.path(), "warble-test", "tiny-hybrid");
    let audio = fixture(AUDIO[0]);
    let offline = Path::new("1");
    let by_id = worker(
        &[
            "--model",
            "warble-test/tiny-hybrid",
            "--json",
            audio.to_str().unwrap(),
        ],
        &[("HF_HOME", home.path()), ("HF_HUB_OFFLINE", offline)],
    );
    let by_path = worker(
        &[
            "--model",
            fixture("models/hybrid.nemo").to_str().unwrap(),
            "--json",
            audio.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(json_lines(&by_id), json_lines(&by_path));

    let empty = tempfile::tempdir().unwrap();
    let missing = worker(
        &["--model", "warble-test/not-cached", audio.to_str().unwrap()],
        &[("HF_HOME", empty.path()), ("HF_HUB_OFFLINE", offline)],
    );
    assert_eq!(missing.status.code(), Some(2));
    let stderr = String::from_utf8(missing.stderr).unwrap();
    assert!(
        stderr.contains("cannot fetch warble-test/not-cached from the Hugging Face Hub"),
        "{stderr}"
    );
}
