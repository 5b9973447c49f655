//! What a job asks for beyond the words, applied to its transcript before it is stored:
//! speaker labels from a Sortformer diarization model, then PII redaction (so that the
//! unredacted text never leaves the worker's memory).

use anyhow::Context;
use warble_jobs::features::Features;
use warble_jobs::redact::{self, Options as RedactOptions};
use warble_jobs::speakers::{self, Turn};
use warble_jobs::transcript::Transcript;
use warble_parakeet::sortformer::{MAX_OFFLINE_SECS, PostProcessing, Sortformer, SpeakerSegment};
use warble_parakeet::{LoadOptions, parse_device};

/// The diarization model a worker may load for `speaker_labels`.
#[derive(Debug, Clone, clap::Args)]
pub struct DiarizationArgs {
    /// Sortformer model for `speaker_labels` jobs: a `.nemo` file or a Hugging Face id
    /// (`nvidia/diar_streaming_sortformer_4spk-v2.1`, `nvidia/diar_sortformer_4spk-v1`).
    /// Unset: such jobs fail with `unsupported`.
    #[arg(long, env = "WARBLE_DIARIZATION_MODEL")]
    pub diarization_model: Option<String>,
    /// Post-processing of the speaker probabilities: `auto` (NeMo's DIHARD3 set for the
    /// model's kind), or one of default, callhome, dihard3, v1-callhome, v1-dihard3.
    #[arg(long, env = "WARBLE_DIARIZATION_PRESET", default_value = "auto")]
    pub diarization_preset: String,
}

/// A loaded diarization model and its post-processing.
pub struct Diarizer {
    model: Sortformer,
    params: PostProcessing,
}

impl DiarizationArgs {
    /// Loads the model on `device` (blocking), or `None` when none is configured.
    pub fn load(&self, device: &str) -> anyhow::Result<Option<Diarizer>> {
        let Some(name) = &self.diarization_model else {
            return Ok(None);
        };
        let options = LoadOptions {
            device: parse_device(device)?,
            ..LoadOptions::default()
        };
        let model = Sortformer::load(name, &options).with_context(|| {
            format!("loading diarization model {name} (WARBLE_DIARIZATION_MODEL)")
        })?;
        let preset = match self.diarization_preset.as_str() {
            "auto" if model.is_streaming() => "dihard3",
            "auto" => "v1-dihard3",
            other => other,
        };
        let params = PostProcessing::preset(preset).with_context(|| {
            format!(
                "WARBLE_DIARIZATION_PRESET {preset:?}: use auto or one of {}",
                PostProcessing::PRESETS
            )
        })?;
        Ok(Some(Diarizer { model, params }))
    }
}

/// Why a job's features could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    /// `speaker_labels` on a worker without a diarization model.
    #[error(
        "speaker_labels needs a worker with a diarization model: set WARBLE_DIARIZATION_MODEL \
         (for example nvidia/diar_streaming_sortformer_4spk-v2.1)"
    )]
    NoDiarizer,
    /// Audio longer than the offline model takes.
    #[error(
        "{0:.0} s of audio is more than the worker's offline diarization model takes ({max:.0} s); \
         a streaming model (nvidia/diar_streaming_sortformer_4spk-v2.1) takes any length",
        max = MAX_OFFLINE_SECS
    )]
    TooLong(f64),
    /// The model failed.
    #[error("diarization failed: {0}")]
    Diarization(#[from] warble_parakeet::Error),
}

/// Whether `features` can be applied to `duration` seconds of audio here: checked before
/// transcribing, so that a job this worker cannot finish fails at once, not after the work.
pub fn check(
    diarizer: Option<&Diarizer>,
    features: &Features,
    duration: f64,
) -> Result<(), EnrichError> {
    if !features.speaker_labels {
        return Ok(());
    }
    let diarizer = diarizer.ok_or(EnrichError::NoDiarizer)?;
    if !diarizer.model.is_streaming() && duration > MAX_OFFLINE_SECS {
        return Err(EnrichError::TooLong(duration));
    }
    Ok(())
}

impl Diarizer {
    /// What the worker's start-up log says of it.
    pub fn describe(&self) -> &'static str {
        if self.model.is_streaming() {
            "streaming"
        } else {
            "offline"
        }
    }
}

/// Applies `features` to `transcript` of `samples` (16 kHz mono): speakers first, so that
/// redaction's merged words keep their speaker, then redaction.
pub fn apply(
    diarizer: Option<&Diarizer>,
    samples: &[f32],
    mut transcript: Transcript,
    features: &Features,
) -> Result<Transcript, EnrichError> {
    if features.speaker_labels {
        let diarizer = diarizer.ok_or(EnrichError::NoDiarizer)?;
        let segments = diarizer.model.diarize(samples)?.segments(&diarizer.params);
        let mut turns = turns(&segments, features.speakers_expected.map(usize::from));
        if turns.is_empty() {
            // Words the diarizer heard no one say still have a speaker: the only one.
            turns.push(Turn {
                speaker: 0,
                start: 0.0,
                end: transcript.duration,
            });
        }
        speakers::attribute(&mut transcript, &turns);
    }
    if features.redact_pii {
        let options = RedactOptions {
            policies: features.redact_pii_policies.clone(),
            substitution: features.redact_pii_sub.unwrap_or_default(),
        };
        transcript = redact::redact(&transcript, &options).transcript;
    }
    Ok(transcript)
}

/// The diarizer's segments as turns, keeping at most `expected` speakers: those who speak
/// longest. The others' turns are dropped, so their words go to the nearest kept speaker.
fn turns(segments: &[SpeakerSegment], expected: Option<usize>) -> Vec<Turn> {
    let mut talk: Vec<(usize, f64)> = Vec::new();
    for s in segments {
        match talk.iter_mut().find(|(speaker, _)| *speaker == s.speaker) {
            Some((_, secs)) => *secs += s.end - s.start,
            None => talk.push((s.speaker, s.end - s.start)),
        }
    }
    talk.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    talk.truncate(expected.unwrap_or(usize::MAX));
    segments
        .iter()
        .filter(|s| talk.iter().any(|(speaker, _)| *speaker == s.speaker))
        .map(|s| Turn {
            speaker: s.speaker,
            start: s.start,
            end: s.end,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(speaker: usize, start: f64, end: f64) -> SpeakerSegment {
        SpeakerSegment {
            speaker,
            start,
            end,
        }
    }

    #[test]
    fn speakers_beyond_the_expected_count_are_the_quietest_and_are_dropped() {
        let segments = [
            seg(0, 0.0, 5.0),
            seg(1, 5.0, 6.0),
            seg(2, 6.0, 9.0),
            seg(0, 9.0, 10.0),
        ];
        let kept: Vec<usize> = turns(&segments, Some(2))
            .iter()
            .map(|t| t.speaker)
            .collect();
        assert_eq!(kept, vec![0, 2, 0]);
        assert_eq!(turns(&segments, None).len(), 4);
    }
}
