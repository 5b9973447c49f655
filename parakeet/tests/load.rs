//! Loading: pinned checksums remembered across loads, and the warm-up a service runs first.

use std::path::{Path, PathBuf};

use warble_parakeet::checkpoint::{ChecksumCache, RACY_SECS, sha256_file};
use warble_parakeet::{Error, LoadOptions, Parakeet, TranscribeOptions, audio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn text(model: &Parakeet) -> Vec<String> {
    ["tts_en_f5.wav", "tts_us_m6.wav"]
        .iter()
        .map(|name| {
            let samples = audio::decode_file(&fixtures().join("audio").join(name))
                .unwrap()
                .samples;
            let t = model
                .transcribe(&samples, &TranscribeOptions::default())
                .unwrap();
            format!("{} {:?}", t.text, t.token_ids())
        })
        .collect()
}

/// A pinned model is hashed at its first load and its checksum remembered in the cache
/// directory; later loads trust the record and give the same model; a wrong pin is still
/// refused with the record in place.
#[test]
fn a_pinned_checksum_is_remembered_and_the_model_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tdt.nemo");
    std::fs::copy(fixtures().join("models/tdt.nemo"), &path).unwrap();
    let digest = sha256_file(&path).unwrap();
    // Only a file that last changed this long before its hash is remembered.
    std::thread::sleep(std::time::Duration::from_millis(RACY_SECS * 1000 + 200));
    let cache_dir = tempfile::tempdir().unwrap();
    let options = LoadOptions {
        sha256: Some(digest.clone()),
        checksum_cache: Some(ChecksumCache::new(cache_dir.path())),
        ..LoadOptions::default()
    };
    let reference = text(
        &Parakeet::load(
            fixtures().join("models/tdt.nemo").to_str().unwrap(),
            &LoadOptions::default(),
        )
        .unwrap(),
    );
    let first = Parakeet::load(path.to_str().unwrap(), &options).unwrap();
    let records =
        std::fs::read_to_string(cache_dir.path().join("verified-checksums.json")).unwrap();
    assert!(records.contains(&digest), "{records}");
    assert_eq!(text(&first), reference);
    let second = Parakeet::load(path.to_str().unwrap(), &options).unwrap();
    assert_eq!(text(&second), reference);
    let wrong = LoadOptions {
        sha256: Some("0".repeat(64)),
        ..options
    };
    match Parakeet::load(path.to_str().unwrap(), &wrong) {
        Err(Error::ChecksumMismatch { actual, .. }) => assert_eq!(actual, digest),
        other => panic!("a wrong pin loaded: {other:?}"),
    }
}

/// The warm-up runs on every kind of head, chunked or not, and changes nothing after it.
#[test]
fn warming_up_changes_no_result() {
    for name in ["tdt", "rnnt", "ctc", "hybrid"] {
        let path = fixtures().join(format!("models/{name}.nemo"));
        let model = Parakeet::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
        let before = text(&model);
        model.warm_up(&TranscribeOptions::default()).unwrap();
        model
            .warm_up(&TranscribeOptions {
                chunking: None,
                ..TranscribeOptions::default()
            })
            .unwrap();
        assert_eq!(text(&model), before, "{name}");
    }
    let options = TranscribeOptions::default();
    assert_eq!(
        Parakeet::warm_up_secs(&options),
        warble_parakeet::WARM_UP_SECS
    );
    assert_eq!(
        Parakeet::warm_up_secs(&TranscribeOptions {
            chunking: None,
            ..options
        }),
        warble_parakeet::WARM_UP_SECS
    );
}
