//! The sandbox against the real `warble-audio` executable: the same answers as decoding
//! in-process, and every way a child can fail turned into a clean error.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use warble_audio::{AudioError, Sandbox, decode_file};

fn sandbox(memory_bytes: u64, timeout_secs: u64) -> Sandbox {
    Sandbox::new(
        PathBuf::from(env!("CARGO_BIN_EXE_warble-audio")),
        memory_bytes,
        Duration::from_secs(timeout_secs),
    )
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// A WAV header declaring `seconds` of 8 kHz mono 16-bit audio, followed by that much silence
/// as a sparse file (no disk used).
fn long_silent_wav(dir: &Path, seconds: u32) -> PathBuf {
    let data_len = seconds * 8_000 * 2;
    let mut header = Vec::new();
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(36 + data_len).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt \x10\0\0\0\x01\0\x01\0");
    header.extend_from_slice(&8_000u32.to_le_bytes());
    header.extend_from_slice(&16_000u32.to_le_bytes());
    header.extend_from_slice(b"\x02\0\x10\0data");
    header.extend_from_slice(&data_len.to_le_bytes());
    let path = dir.join("long.wav");
    std::fs::write(&path, &header).unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(u64::from(data_len) + header.len() as u64)
        .unwrap();
    path
}

#[test]
fn answers_like_decoding_in_process() {
    let sandbox = sandbox(1 << 30, 30);
    for file in fixtures() {
        let extension = file.extension().and_then(|e| e.to_str());
        let expected = decode_file(&file).unwrap();
        let probe = sandbox.probe(&file, extension).unwrap();
        let decoded = sandbox.decode(&file, extension, 60.0).unwrap();
        println!("{}: {probe:?}", file.display());
        assert_eq!(decoded.samples, expected.samples, "{}", file.display());
        assert_eq!(
            (decoded.source_rate, decoded.source_channels),
            (expected.source_rate, expected.source_channels)
        );
        assert_eq!(
            (probe.sample_rate, probe.channels),
            (expected.source_rate, expected.source_channels)
        );
        assert!(
            (probe.duration_secs - expected.duration_secs()).abs() < 0.06,
            "{}: probed {} s, decoded {} s",
            file.display(),
            probe.duration_secs,
            expected.duration_secs()
        );
    }
}

#[test]
fn stops_at_the_duration_limit_and_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let wav = long_silent_wav(dir.path(), 10 * 3600);
    let probe = sandbox(1 << 30, 30).probe(&wav, Some("wav")).unwrap();
    assert_eq!(probe.duration_secs, 36_000.0);

    let started = Instant::now();
    let error = sandbox(1 << 30, 30)
        .decode(&wav, Some("wav"), 60.0)
        .unwrap_err();
    assert_eq!(error, AudioError::TooLong { limit_secs: 60.0 });
    assert!(started.elapsed() < Duration::from_secs(10));

    let started = Instant::now();
    let error = sandbox(1 << 30, 1)
        .decode(&wav, Some("wav"), 36_000.0)
        .unwrap_err();
    println!("{error} after {:?}", started.elapsed());
    assert_eq!(error, AudioError::TimedOut { secs: 1 });
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_child_that_cannot_run_is_a_clean_error() {
    let file = &fixtures()[0];
    let error = sandbox(4 << 20, 10).decode(file, None, 60.0).unwrap_err();
    println!("{error}");
    assert!(matches!(error, AudioError::Crashed(_)), "{error:?}");
    let missing = sandbox(1 << 30, 10)
        .probe(Path::new("/nonexistent/file.wav"), None)
        .unwrap_err();
    assert_eq!(missing, AudioError::Io("entity not found".into()));
}
