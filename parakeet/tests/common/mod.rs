//! Helpers shared by the integration tests: fixture paths and numeric comparison.

#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::Tensor;

/// `parakeet/tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Relative error `|a - b| / |b|` (Frobenius norms) and the largest absolute difference.
pub fn relative_error(actual: &Tensor, expected: &Tensor) -> (f64, f64) {
    let a = actual
        .flatten_all()
        .unwrap()
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    let b = expected
        .flatten_all()
        .unwrap()
        .to_dtype(candle_core::DType::F64)
        .unwrap();
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let diff = (&a - &b).unwrap();
    let norm = |t: &Tensor| {
        t.sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            .sqrt()
    };
    let max_abs = diff
        .abs()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    (norm(&diff) / norm(&b).max(f64::MIN_POSITIVE), max_abs)
}

/// What is said in the minute-long recording: the `.txt` of each of its parts, in order.
pub fn long_recording_text() -> String {
    let text = std::fs::read_to_string(fixture("audio/long_recipe.json")).unwrap();
    let recipe: serde_json::Value = serde_json::from_str(&text).unwrap();
    recipe["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| {
            let wav = fixture(&format!("audio/{}", part["file"].as_str().unwrap()));
            std::fs::read_to_string(wav.with_extension("txt")).unwrap()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The minute-long recording described by `audio/long_recipe.json`: fixture files joined with
/// pauses of silence, exactly as `tools/fixtures/record.py` built it for NeMo.
pub fn long_recording() -> Vec<f32> {
    #[derive(serde::Deserialize)]
    struct Recipe {
        sample_rate: usize,
        parts: Vec<Part>,
    }
    #[derive(serde::Deserialize)]
    struct Part {
        file: String,
        pause_after_ms: usize,
    }
    let text = std::fs::read_to_string(fixture("audio/long_recipe.json")).unwrap();
    let recipe: Recipe = serde_json::from_str(&text).unwrap();
    let mut samples = Vec::new();
    for part in recipe.parts {
        let audio =
            warble_parakeet::audio::decode_file(&fixture(&format!("audio/{}", part.file))).unwrap();
        samples.extend(audio.samples);
        samples.extend(std::iter::repeat_n(
            0.0,
            part.pause_after_ms * recipe.sample_rate / 1000,
        ));
    }
    samples
}

/// The five short speech recordings (the noisy one last), as 16 kHz samples.
pub fn speech_files() -> Vec<Vec<f32>> {
    [
        "tts_us_m6",
        "tts_en_f5",
        "tts_rp_m7",
        "tts_us_f5_fast",
        "alsa_noise",
    ]
    .iter()
    .map(|stem| {
        warble_parakeet::audio::decode_file(&fixture(&format!("audio/{stem}.wav")))
            .unwrap()
            .samples
    })
    .collect()
}

/// Token ids and word timings, the parts of a transcript that must not depend on batching.
pub fn fingerprint(t: &warble_parakeet::Transcript) -> (Vec<u32>, Vec<(String, f64, f64)>) {
    (
        t.token_ids(),
        t.words
            .iter()
            .map(|w| (w.word.clone(), w.start, w.end))
            .collect(),
    )
}
