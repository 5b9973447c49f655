//! From frame probabilities to speaker segments, as NeMo's `ts_vad_post_processing` does
//! (`nemo/collections/asr/parts/utils/vad_utils.py`: `binarization`, `filtering`), with its
//! published parameter sets as named presets.
//!
//! Each speaker's probabilities are repeated to 10 ms frames, thresholded with hysteresis
//! (speech starts above `onset`, ends below `offset`), padded, and cleaned of gaps shorter
//! than `min_duration_off` and then of segments shorter than `min_duration_on`. Times are
//! computed in f32 as NeMo's tensors hold them and rounded to 10 ms at the end.

use serde::{Deserialize, Serialize};

/// Post-processing thresholds and durations (NeMo's `PostProcessingParams`), seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PostProcessing {
    /// Speech starts where the probability rises above this.
    pub onset: f64,
    /// Speech ends where the probability falls below this.
    pub offset: f64,
    /// Seconds added before each segment.
    pub pad_onset: f64,
    /// Seconds added after each segment.
    pub pad_offset: f64,
    /// Segments shorter than this are dropped (before gaps are filled).
    pub min_duration_on: f64,
    /// Gaps shorter than this are filled.
    pub min_duration_off: f64,
}

impl Default for PostProcessing {
    /// NeMo's defaults: thresholds at 0.5, no padding, nothing filtered.
    fn default() -> Self {
        Self {
            onset: 0.5,
            offset: 0.5,
            pad_onset: 0.0,
            pad_offset: 0.0,
            min_duration_on: 0.0,
            min_duration_off: 0.0,
        }
    }
}

impl PostProcessing {
    /// The named presets: `default`, and the sets NeMo tuned for its published models
    /// (`examples/speaker_tasks/diarization/conf/post_processing/*.yaml`): `callhome` and
    /// `dihard3` for the streaming v2 models, `v1-callhome` and `v1-dihard3` for the offline v1.
    pub const PRESETS: &'static str = "default, callhome, dihard3, v1-callhome, v1-dihard3";

    /// The preset called `name` ([`Self::PRESETS`]).
    pub fn preset(name: &str) -> Option<Self> {
        let set = |onset, offset, pad_onset, pad_offset, min_duration_on, min_duration_off| Self {
            onset,
            offset,
            pad_onset,
            pad_offset,
            min_duration_on,
            min_duration_off,
        };
        Some(match name {
            "default" => Self::default(),
            "callhome" => set(0.641, 0.561, 0.229, 0.079, 0.511, 0.296),
            "dihard3" => set(0.56, 1.0, 0.063, 0.002, 0.007, 0.151),
            "v1-callhome" => set(0.53, 0.49, 0.23, 0.01, 0.42, 0.34),
            "v1-dihard3" => set(0.64, 0.74, 0.06, 0.0, 0.1, 0.15),
            _ => return None,
        })
    }
}

/// One speaker's stretch of speech, seconds (to 10 ms).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeakerSegment {
    /// The model's speaker index, in order of arrival (0 spoke first).
    pub speaker: usize,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// NeMo's post-processing resolution: 10 ms.
const STEP_SECS: f64 = 0.01;

/// The segments of every speaker, ordered by start then speaker. `probs` is `frames x
/// speakers`; each frame lasts `steps_per_frame` 10 ms steps (8 for Sortformer's 80 ms).
pub fn segments(
    probs: &[f32],
    speakers: usize,
    steps_per_frame: usize,
    params: &PostProcessing,
) -> Vec<SpeakerSegment> {
    let mut all: Vec<SpeakerSegment> = (0..speakers)
        .flat_map(|speaker| {
            let track: Vec<f32> = probs
                .iter()
                .skip(speaker)
                .step_by(speakers)
                .copied()
                .collect();
            let spans = filtering(binarization(&track, steps_per_frame, params), params);
            merged_rounded(&spans)
                .into_iter()
                .map(move |(start, end)| SpeakerSegment {
                    speaker,
                    start,
                    end,
                })
        })
        .collect();
    all.sort_by(|a, b| a.start.total_cmp(&b.start).then(a.speaker.cmp(&b.speaker)));
    all
}

/// Hysteresis thresholding over 10 ms steps, with padding (`binarization`).
fn binarization(track: &[f32], steps_per_frame: usize, p: &PostProcessing) -> Vec<(f32, f32)> {
    let (onset, offset) = (p.onset as f32, p.offset as f32);
    let mut spans = Vec::new();
    let mut speech = false;
    let mut start = 0.0_f64;
    let steps = track.len() * steps_per_frame;
    let value = |i: usize| track[i / steps_per_frame];
    for i in 0..steps {
        let t = i as f64 * STEP_SECS;
        if speech {
            if value(i) < offset {
                let from = (start - p.pad_onset).max(0.0);
                if t + p.pad_offset > from {
                    spans.push((from as f32, (t + p.pad_offset) as f32));
                }
                start = t;
                speech = false;
            }
        } else if value(i) > onset {
            start = t;
            speech = true;
        }
    }
    if speech {
        let last = steps.saturating_sub(1) as f64 * STEP_SECS;
        spans.push((
            (start - p.pad_onset).max(0.0) as f32,
            (last + p.pad_offset) as f32,
        ));
    }
    merge_overlaps(spans)
}

/// Sorts by start and joins each span with the next where they touch or overlap
/// (`merge_overlap_segment`: neighbours only, as NeMo does).
fn merge_overlaps(mut spans: Vec<(f32, f32)>) -> Vec<(f32, f32)> {
    if spans.len() < 2 {
        return spans;
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let joins: Vec<bool> = spans.windows(2).map(|w| w[0].1 >= w[1].0).collect();
    let starts = (0..spans.len()).filter(|&i| i == 0 || !joins[i - 1]);
    let ends = (0..spans.len()).filter(|&i| i == spans.len() - 1 || !joins[i]);
    starts
        .zip(ends)
        .map(|(a, b)| (spans[a].0, spans[b].1))
        .collect()
}

/// Drops short segments, then fills short gaps (`filtering` with NeMo's default
/// `filter_speech_first`).
fn filtering(spans: Vec<(f32, f32)>, p: &PostProcessing) -> Vec<(f32, f32)> {
    let long_enough = |min: f64| move |s: &(f32, f32)| s.1 - s.0 >= min as f32;
    let mut spans = spans;
    if p.min_duration_on > 0.0 {
        spans.retain(long_enough(p.min_duration_on));
    }
    if p.min_duration_off > 0.0 && !spans.is_empty() {
        let mut sorted = spans.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        let short_gaps = sorted
            .windows(2)
            .map(|w| (w[0].1, w[1].0))
            .filter(|gap| !long_enough(p.min_duration_off)(gap));
        spans.extend(short_gaps.collect::<Vec<_>>());
        spans = merge_overlaps(spans);
    }
    spans
}

/// Rounds to 10 ms as NeMo's output does, dropping spans that round to nothing and joining
/// any that then overlap (`merge_float_intervals`).
fn merged_rounded(spans: &[(f32, f32)]) -> Vec<(f64, f64)> {
    let round = |x: f32| (f64::from(x) * 100.0).round() / 100.0;
    let mut rounded: Vec<(f64, f64)> = spans
        .iter()
        .map(|&(a, b)| (round(a), round(b)))
        .filter(|(a, b)| a < b)
        .collect();
    rounded.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(rounded.len());
    for (start, end) in rounded {
        match merged.last_mut() {
            Some(last) if start < last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(values: &[f32]) -> Vec<SpeakerSegment> {
        segments(values, 1, 8, &PostProcessing::default())
    }

    #[test]
    fn a_run_above_the_threshold_is_one_segment_in_80_ms_frames() {
        let segs = track(&[0.1, 0.9, 0.9, 0.2, 0.1]);
        assert_eq!(
            segs,
            vec![SpeakerSegment {
                speaker: 0,
                start: 0.08,
                end: 0.24
            }]
        );
    }

    #[test]
    fn speech_to_the_end_closes_at_the_last_step() {
        let segs = track(&[0.1, 0.9]);
        assert_eq!((segs[0].start, segs[0].end), (0.08, 0.15));
    }

    #[test]
    fn short_gaps_are_filled_and_short_segments_dropped() {
        let params = PostProcessing {
            min_duration_off: 0.1,
            min_duration_on: 0.2,
            ..PostProcessing::default()
        };
        // 0.9 for 3 frames, a one-frame gap (80 ms), 3 frames more; then a lone frame.
        let probs = [0.9, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.1];
        let segs = segments(&probs, 1, 8, &params);
        assert_eq!(segs.len(), 1, "{segs:?}");
        assert_eq!((segs[0].start, segs[0].end), (0.0, 0.56));
    }

    #[test]
    fn presets_are_named() {
        for name in PostProcessing::PRESETS.split(", ") {
            assert!(PostProcessing::preset(name).is_some(), "{name}");
        }
        assert!(PostProcessing::preset("nope").is_none());
    }
}
