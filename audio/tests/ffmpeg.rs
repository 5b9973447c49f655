//! Our decoders against ffmpeg's, sample by sample, on files ffmpeg encodes here (needs ffmpeg;
//! without it the test fails, saying so).

use std::path::{Path, PathBuf};
use std::process::Command;

use warble_audio::decode_file;

#[path = "../../jobs/tests/support/prerequisite.rs"]
mod prerequisite;

fn ffmpeg(args: &[&str]) {
    match Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-y"])
        .args(args)
        .status()
    {
        Ok(status) => assert!(status.success(), "ffmpeg {args:?} failed"),
        Err(_) => prerequisite::missing("ffmpeg", "apt-get install ffmpeg"),
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Root-mean-square difference in dB relative to the reference's RMS.
fn difference_db(ours: &[f32], reference: &[f32]) -> f64 {
    let n = ours.len().min(reference.len());
    let power = |x: &mut dyn Iterator<Item = f64>| x.sum::<f64>() / n as f64;
    let noise = power(&mut (0..n).map(|i| f64::from(ours[i] - reference[i]).powi(2)));
    let signal = power(&mut (0..n).map(|i| f64::from(reference[i]).powi(2)));
    10.0 * (noise / signal).log10()
}

/// Each lossy decoder against ffmpeg's decoding of the same file: aligned, the same length
/// within 20 ms, and the same signal within -60 dB. Opus: ropus is a port of libopus's
/// fixed-point decoder, ffmpeg runs libopus's float one. The Matroska/WebM files carry the
/// codec padding in ways we do not read (ffmpeg applies WebM's DiscardPadding).
#[test]
fn lossy_decoders_match_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let source = fixture("stereo44k.wav");
    let source = source.to_str().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("mono.opus", &["-ac", "1", "-c:a", "libopus", "-b:a", "96k"]),
        ("stereo.webm", &["-c:a", "libopus", "-b:a", "96k"]),
        (
            "surround.opus",
            &[
                "-ac",
                "6",
                "-c:a",
                "libopus",
                "-b:a",
                "96k",
                "-mapping_family",
                "1",
            ],
        ),
        ("stereo.ogg", &["-c:a", "libvorbis", "-q:a", "6"]),
        ("stereo.mka", &["-c:a", "libvorbis", "-q:a", "6"]),
        (
            "mono8k.mka",
            &["-ac", "1", "-ar", "8000", "-c:a", "libvorbis", "-q:a", "6"],
        ),
        (
            "surround48k.mka",
            &["-ac", "6", "-ar", "48000", "-c:a", "libvorbis", "-q:a", "6"],
        ),
        ("stereo.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"]),
        ("stereo.m4a", &["-c:a", "aac", "-b:a", "192k"]),
    ];
    for (name, encode) in cases {
        let encoded = dir.path().join(name);
        let decoded = dir.path().join(format!("{name}.wav"));
        let encoded_arg = encoded.to_str().unwrap();
        let mut args = vec!["-i", source];
        args.extend_from_slice(encode);
        args.push(encoded_arg);
        ffmpeg(&args);
        let decoder: &[&str] = if name.contains("opus") || name.contains("webm") {
            &["-c:a", "libopus"]
        } else {
            &[]
        };
        let mut args = decoder.to_vec();
        args.extend_from_slice(&[
            "-i",
            encoded_arg,
            "-c:a",
            "pcm_f32le",
            decoded.to_str().unwrap(),
        ]);
        ffmpeg(&args);
        let ours = decode_file(&encoded).unwrap();
        let reference = decode_file(&decoded).unwrap();
        let db = difference_db(&ours.samples, &reference.samples);
        let extra_ms = (ours.duration_secs() - reference.duration_secs()) * 1000.0;
        println!("{name}: {db:.1} dB, {extra_ms:+.1} ms");
        assert!(db < -60.0, "{name}: differs from ffmpeg by {db:.1} dB");
        assert!(extra_ms.abs() <= 20.0, "{name}: {extra_ms:+.1} ms");
    }
}
