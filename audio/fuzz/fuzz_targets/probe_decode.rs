//! Probes and decodes arbitrary bytes as an uploaded audio file would be.
//!
//! The first byte picks the extension hint (as the upload's file name would give it); the
//! rest is the file. Errors are the expected outcome for most inputs and are ignored: only
//! panics, aborts, hangs (libFuzzer's `-timeout`) and memory blow-ups (`-rss_limit_mb`) are
//! findings. The wall-clock limits below keep a long but valid file (endless silence) from
//! counting as a hang; a single packet that never returns is still reported.

#![no_main]

use std::io::Cursor;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use warble_audio::Limits;
use warble_audio::decode::decode_stream;
use warble_audio::probe::probe;

/// Extension hints the upload path accepts, and no hint at all. Seeds start with the index.
const EXTENSIONS: [Option<&str>; 10] = [
    Some("wav"),
    Some("flac"),
    Some("mp3"),
    Some("m4a"),
    Some("aac"),
    Some("ogg"),
    Some("opus"),
    Some("webm"),
    Some("mka"),
    None,
];

/// Wall-clock budget of the probe and of the decode, each (libFuzzer's `-timeout` is 10 s).
const TIMEOUT: Duration = Duration::from_secs(3);

fuzz_target!(|data: &[u8]| {
    let Some((&selector, file)) = data.split_first() else {
        return;
    };
    let extension = EXTENSIONS[usize::from(selector) % EXTENSIONS.len()];

    let _ = probe(
        Box::new(Cursor::new(file.to_vec())),
        extension,
        Some(TIMEOUT),
    );

    let limits = Limits {
        max_seconds: Some(60.0),
        timeout: Some(TIMEOUT),
    };
    let mut samples = 0usize;
    let _ = decode_stream(
        Box::new(Cursor::new(file.to_vec())),
        extension,
        &limits,
        &mut |chunk: &[f32]| samples += chunk.len(),
    );
    std::hint::black_box(samples);
});
