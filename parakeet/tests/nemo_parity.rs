//! Parity with NeMo on every fixture model and audio file: mel features and encoder output
//! within 1e-4 relative error, identical tokens and text, word timestamps within one frame.
//!
//! The references were recorded by `tools/fixtures/record.py` running NeMo on the same models
//! and audio; see `tools/fixtures/README.md`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::Deserialize;
use warble_parakeet::encoder::AttentionWindow;
use warble_parakeet::{DecoderKind, LoadOptions, Parakeet, TranscribeOptions, Transcript};

const TOLERANCE: f64 = 1e-4;
/// One encoder frame: 8 x 10 ms.
const FRAME_SECS: f64 = 0.08;

#[derive(Debug, Deserialize)]
struct Reference {
    audio: String,
    mel_len: usize,
    encoded_len: usize,
    heads: BTreeMap<String, HeadReference>,
    #[serde(default)]
    att_context_size: Option<Vec<i64>>,
}

#[derive(Debug, Deserialize)]
struct HeadReference {
    text: String,
    token_ids: Vec<u32>,
    word: Vec<WordReference>,
    /// Absent from the hour-long reference, which keeps only tokens and words.
    segment: Option<Vec<SegmentReference>>,
}

#[derive(Debug, Deserialize)]
struct WordReference {
    word: String,
    start: f64,
    end: f64,
}

#[derive(Debug, Deserialize)]
struct SegmentReference {
    segment: String,
    start: f64,
    end: f64,
}

/// The reference JSON files of one model, without the long-audio ones (`long_*`, `hour_*`).
fn references(model: &str) -> Vec<PathBuf> {
    let dir = common::fixture(&format!("reference/{model}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            let stem = p.file_stem().unwrap().to_string_lossy();
            !stem.starts_with("long_") && !stem.starts_with("hour_")
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no references for {model}");
    files
}

fn load_model(model: &str) -> Parakeet {
    let path = common::fixture(&format!("models/{model}.nemo"));
    Parakeet::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap()
}

fn read_reference(json: &Path) -> (Reference, std::collections::HashMap<String, Tensor>) {
    let reference: Reference =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let tensors =
        candle_core::safetensors::load(json.with_extension("safetensors"), &Device::Cpu).unwrap();
    (reference, tensors)
}

fn assert_close(what: &str, actual: &Tensor, expected: &Tensor) {
    let (rel, max_abs) = common::relative_error(actual, expected);
    eprintln!("{what}: relative error {rel:.2e}, max abs {max_abs:.2e}");
    assert!(
        rel < TOLERANCE,
        "{what}: relative error {rel:e} over {TOLERANCE:e}"
    );
}

/// Tokens, text, words and segments of `ours` against NeMo's head output.
fn assert_same_decoding(what: &str, ours: &Transcript, nemo: &HeadReference) {
    assert_eq!(ours.token_ids(), nemo.token_ids, "{what}: token ids");
    assert_eq!(ours.text, nemo.text, "{what}: text");
    let words: Vec<&str> = ours.words.iter().map(|w| w.word.as_str()).collect();
    let nemo_words: Vec<&str> = nemo.word.iter().map(|w| w.word.as_str()).collect();
    assert_eq!(words, nemo_words, "{what}: words");
    for (w, n) in ours.words.iter().zip(&nemo.word) {
        assert!(
            (w.start - n.start).abs() <= FRAME_SECS + 1e-9
                && (w.end - n.end).abs() <= FRAME_SECS + 1e-9,
            "{what}: word {:?} at {}..{}, NeMo {}..{}",
            w.word,
            w.start,
            w.end,
            n.start,
            n.end
        );
    }
    let Some(nemo_segments) = &nemo.segment else {
        return;
    };
    let segments: Vec<&str> = ours.segments.iter().map(|s| s.text.as_str()).collect();
    let expected: Vec<&str> = nemo_segments.iter().map(|s| s.segment.as_str()).collect();
    assert_eq!(segments, expected, "{what}: segments");
    for (s, n) in ours.segments.iter().zip(nemo_segments) {
        assert!(
            (s.start - n.start).abs() <= FRAME_SECS + 1e-9
                && (s.end - n.end).abs() <= FRAME_SECS + 1e-9
        );
    }
}

/// Every head NeMo recorded, decoded by us from `samples` with `base` options, compared.
fn assert_heads_match(
    what: &str,
    parakeet: &Parakeet,
    samples: &[f32],
    heads: &BTreeMap<String, HeadReference>,
    base: &TranscribeOptions,
) {
    for (head, nemo) in heads {
        let kind: DecoderKind = head.parse().unwrap();
        let options = TranscribeOptions {
            decoder: Some(kind),
            ..base.clone()
        };
        let ours = parakeet.transcribe(samples, &options).unwrap();
        assert_same_decoding(&format!("{what} {head}"), &ours, nemo);
    }
}

/// NeMo's segmentation only splits at sentence punctuation; compare with pauses off.
fn options() -> TranscribeOptions {
    TranscribeOptions {
        segment_pause_secs: None,
        // NeMo transcribes a file whole; so do the references.
        chunking: None,
        ..TranscribeOptions::default()
    }
}

fn check_model(model: &str) {
    let parakeet = load_model(model);
    for json in references(model) {
        let (reference, tensors) = read_reference(&json);
        let name = format!("{model}/{}", json.file_stem().unwrap().to_string_lossy());
        let audio =
            warble_parakeet::audio::decode_file(&common::fixture(&reference.audio)).unwrap();

        let (mel, valid) = parakeet.features(&audio.samples).unwrap();
        assert_eq!(valid, reference.mel_len, "{name}: mel length");
        assert_close(
            &format!("{name} mel"),
            &mel.squeeze(0).unwrap(),
            &tensors["mel"],
        );

        let (encoded, lengths) = parakeet
            .encode(&mel, &[valid], AttentionWindow::Full)
            .unwrap();
        assert_eq!(lengths, [reference.encoded_len], "{name}: encoder length");
        let encoded = encoded.squeeze(0).unwrap().t().unwrap();
        assert_close(&format!("{name} encoder"), &encoded, &tensors["encoded"]);

        assert_heads_match(
            &name,
            &parakeet,
            &audio.samples,
            &reference.heads,
            &options(),
        );
    }
}

#[test]
fn hybrid_tdt_ctc_matches_nemo() {
    check_model("hybrid");
}

#[test]
fn ctc_matches_nemo() {
    check_model("ctc");
}

#[test]
fn tdt_with_128_mels_matches_nemo() {
    check_model("tdt");
}

#[test]
fn rnnt_matches_nemo() {
    check_model("rnnt");
}

/// A minute of speech through full and through local attention, as NeMo ran it.
#[test]
fn long_audio_matches_nemo_with_full_and_local_attention() {
    let parakeet = load_model("hybrid");
    let samples = common::long_recording();
    for case in ["long_global", "long_local"] {
        let (reference, tensors) =
            read_reference(&common::fixture(&format!("reference/hybrid/{case}.json")));
        let window = match reference.att_context_size.as_deref() {
            Some([left, right]) if *left > 0 && left == right => {
                AttentionWindow::Local(*left as usize)
            }
            _ => AttentionWindow::Full,
        };
        let (mel, valid) = parakeet.features(&samples).unwrap();
        assert_eq!(valid, reference.mel_len);
        let (encoded, lengths) = parakeet.encode(&mel, &[valid], window).unwrap();
        assert_eq!(lengths, [reference.encoded_len]);
        assert_close(
            &format!("{case} encoder"),
            &encoded.squeeze(0).unwrap().t().unwrap(),
            &tensors["encoded"],
        );
        let long_secs = match window {
            AttentionWindow::Local(w) => TranscribeOptions {
                long_audio_secs: Some(0.0),
                long_audio_window: w,
                ..options()
            },
            AttentionWindow::Full => TranscribeOptions {
                long_audio_secs: None,
                ..options()
            },
        };
        assert_heads_match(case, &parakeet, &samples, &reference.heads, &long_secs);
    }
}

/// The minute-long recording repeated to an hour, through local attention of 256 frames each
/// side, as NeMo ran it (`tools/fixtures/record_hour.py`): encoder output around the places
/// where the subsampling is sliced, and every token and word of both heads.
#[test]
fn an_hour_matches_nemo_with_local_attention() {
    #[derive(Deserialize)]
    struct Hour {
        repeats: usize,
        num_samples: usize,
        encoded_len: usize,
        encoded_slices: BTreeMap<String, [usize; 2]>,
        heads: BTreeMap<String, HeadReference>,
    }
    let json = common::fixture("reference/hybrid/hour_local.json");
    let hour: Hour = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tensors =
        candle_core::safetensors::load(json.with_extension("safetensors"), &Device::Cpu).unwrap();
    let minute = common::long_recording();
    let samples: Vec<f32> = std::iter::repeat_n(minute.as_slice(), hour.repeats)
        .flatten()
        .copied()
        .collect();
    assert_eq!(samples.len(), hour.num_samples);

    let parakeet = load_model("hybrid");
    let options = options();
    let window = parakeet.window_for(samples.len(), &options);
    assert_eq!(window, AttentionWindow::Local(256));
    let (mel, valid) = parakeet.features(&samples).unwrap();
    let (encoded, lengths) = parakeet.encode(&mel, &[valid], window).unwrap();
    assert_eq!(lengths, [hour.encoded_len]);
    let encoded = encoded.squeeze(0).unwrap();
    for (name, [start, end]) in &hour.encoded_slices {
        let ours = encoded.narrow(0, *start, end - start).unwrap().t().unwrap();
        assert_close(&format!("hour {name}"), &ours, &tensors[name.as_str()]);
    }
    drop((mel, encoded));

    assert_heads_match("hour", &parakeet, &samples, &hour.heads, &options);
}
