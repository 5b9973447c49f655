//! Files as phones, browsers and tools write them, made by `tools/fixtures/make_real_world.sh`
//! (ffmpeg and sox; without them the tests fail, saying so):
//! each was refused or mismeasured once (issue 15). Their lengths must be measured, not
//! guessed, and decoded in full; large cover art must not hide the audio; ALAC and ADPCM
//! decode; a codec we cannot decode is named.

#[path = "../../jobs/tests/support/prerequisite.rs"]
mod prerequisite;
#[path = "support/real_world.rs"]
mod support;

use std::fs::File;
use std::path::Path;

use support::{durations, inputs};
use warble_audio::probe::probe;
use warble_audio::{AudioError, decode_file};

fn probed(path: &Path) -> Result<warble_audio::Probe, AudioError> {
    let extension = path.extension().and_then(|e| e.to_str());
    probe(Box::new(File::open(path).unwrap()), extension, None)
}

/// The inputs are made once (ffmpeg takes a while) and every check runs on them.
#[test]
fn real_world_files() {
    let dir = tempfile::tempdir().unwrap();
    let dir = inputs(dir.path());
    lengths_are_measured_and_decoded_in_full(&dir);
    lossless_codecs_and_big_pictures_decode_exactly(&dir);
    an_unsupported_codec_is_named(&dir);
}

/// Every file is probed and decoded to its source's length within 1 % (codec priming and
/// padding): no guess from the first frames' bitrate (pipe MP3: 30.4 s for 21.1 s; ADTS),
/// no 0 s for a fragmented MP4, no first part for chained Ogg, and no decoding that stops
/// at a guess (the MP3 with a loud start lost its last 6 s, speech included).
fn lengths_are_measured_and_decoded_in_full(dir: &Path) {
    let mut wrong = Vec::new();
    for (file, expected) in durations(dir) {
        let path = dir.join(&file);
        let probed = probed(&path).map(|p| p.duration_secs);
        let decoded = decode_file(&path).map(|a| a.duration_secs());
        println!("{file}: {expected:.3} s, probed {probed:?}, decoded {decoded:?}");
        for (what, secs) in [("probed", probed), ("decoded", decoded)] {
            match secs {
                Ok(secs) if (secs - expected).abs() <= expected * 0.01 => {}
                other => wrong.push(format!(
                    "{file}: {what} {other:?}, expected {expected:.3} s"
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Lossless files decode to exactly the samples of the WAV they were made from, whatever
/// precedes them (cover art) or codes them (ALAC); ADPCM to nearly.
fn lossless_codecs_and_big_pictures_decode_exactly(dir: &Path) {
    let speech = decode_file(&dir.join("speech.wav")).unwrap().samples;
    for file in ["alac.m4a", "big-picture.flac"] {
        let decoded = decode_file(&dir.join(file)).unwrap();
        assert_eq!(decoded.samples, speech, "{file}");
    }
    for file in ["adpcm-ima.wav", "adpcm-ms.wav"] {
        let decoded = decode_file(&dir.join(file)).unwrap().samples;
        let n = speech.len().min(decoded.len());
        let noise: f64 = (0..n)
            .map(|i| f64::from(decoded[i] - speech[i]).powi(2))
            .sum();
        let signal: f64 = speech[..n].iter().map(|&s| f64::from(s).powi(2)).sum();
        let snr_db = 10.0 * (signal / noise).log10();
        println!("{file}: {snr_db:.1} dB");
        assert!(snr_db > 20.0, "{file}: {snr_db:.1} dB");
    }
}

/// A codec we cannot decode is refused with its name and what we take, not symphonia's words.
fn an_unsupported_codec_is_named(dir: &Path) {
    let error = probed(&dir.join("ac3.m4a")).unwrap_err();
    assert_eq!(
        error,
        AudioError::UnsupportedCodec("AC-3 (Dolby Digital)".into())
    );
    let message = error.to_string();
    println!("{message}");
    assert!(
        message.contains("ALAC") && message.contains("Opus"),
        "{message}"
    );
    assert!(
        !message.contains("core") && !message.contains("feature"),
        "{message}"
    );
}
