//! Sortformer against NeMo: the fixture models of `tools/fixtures/train_sortformer.py` and the
//! outputs `tools/fixtures/record_sortformer.py` recorded with NeMo on the conversation files.
//! Frame probabilities must match to 1e-4 (they lie in [0, 1], so this is relative to their
//! scale) and the post-processed segments exactly, for the offline model and for the streaming
//! one, whose long file cycles the speaker cache and FIFO many times.

mod common;

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use common::{fixture, relative_error};
use serde_json::Value;
use warble_parakeet::sortformer::{PostProcessing, Sortformer, SpeakerSegment};
use warble_parakeet::{LoadOptions, audio};

/// The models under test, by fixture name; each has `reference/<name>/*.json`.
fn models() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture("reference"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("sortformer_") && !n.ends_with(".json"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no Sortformer references");
    names
}

fn load(name: &str) -> Sortformer {
    Sortformer::load(
        fixture(&format!("models/{name}.nemo")).to_str().unwrap(),
        &LoadOptions::default(),
    )
    .unwrap()
}

/// `(stem, recorded json, recorded tensors)` of every file recorded for `name`.
fn references(name: &str) -> Vec<(String, Value, HashMap<String, Tensor>)> {
    let dir = fixture(&format!("reference/{name}"));
    let mut stems: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    stems.sort();
    stems
        .into_iter()
        .map(|stem| {
            let json: Value = serde_json::from_str(
                &std::fs::read_to_string(dir.join(format!("{stem}.json"))).unwrap(),
            )
            .unwrap();
            let tensors = candle_core::safetensors::load(
                dir.join(format!("{stem}.safetensors")),
                &Device::Cpu,
            )
            .unwrap();
            (stem, json, tensors)
        })
        .collect()
}

fn samples(json: &Value) -> Vec<f32> {
    let path = fixture(json["audio"].as_str().unwrap());
    audio::decode_file(&path).unwrap().samples
}

#[test]
fn frame_probabilities_and_segments_match_nemo() {
    for name in models() {
        let model = load(&name);
        for (stem, json, tensors) in references(&name) {
            let samples = samples(&json);
            let diarization = model.diarize(&samples).unwrap();
            let expected = &tensors["preds"];
            let actual = Tensor::from_vec(
                diarization.probabilities.clone(),
                (diarization.frames(), diarization.speakers),
                &Device::Cpu,
            )
            .unwrap();
            assert_eq!(actual.dims(), expected.dims(), "{name}/{stem}: frames");
            let (relative, max_abs) = relative_error(&actual, expected);
            eprintln!("{name}/{stem}: relative {relative:.2e}, max abs {max_abs:.2e}");
            assert!(
                max_abs <= 1e-4,
                "{name}/{stem}: max abs difference {max_abs:.2e}"
            );
            for (preset, recorded) in json["segments"].as_object().unwrap() {
                let params: PostProcessing =
                    serde_json::from_value(json["presets"][preset].clone()).unwrap();
                let mut expected: Vec<SpeakerSegment> = recorded["segments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| SpeakerSegment {
                        speaker: s["speaker"]
                            .as_str()
                            .unwrap()
                            .trim_start_matches("speaker_")
                            .parse()
                            .unwrap(),
                        start: s["start"].as_f64().unwrap(),
                        end: s["end"].as_f64().unwrap(),
                    })
                    .collect();
                // NeMo lists speaker by speaker; ours are ordered by start.
                expected
                    .sort_by(|a, b| a.start.total_cmp(&b.start).then(a.speaker.cmp(&b.speaker)));
                assert_eq!(
                    diarization.segments(&params),
                    expected,
                    "{name}/{stem}: segments with {preset}"
                );
            }
        }
    }
}
