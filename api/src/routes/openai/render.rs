//! A job's transcript in the bodies OpenAI's transcription endpoint answers with.

use serde_json::{Value, json};
use warble_jobs::transcript::{Format, Transcript};

/// `response_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseFormat {
    /// `{"text", "usage"}`.
    #[default]
    Json,
    /// The text alone.
    Text,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// Task, language, duration, text, and segments and/or words.
    VerboseJson,
}

impl ResponseFormat {
    /// The names OpenAI uses.
    pub const NAMES: &'static str = "json, text, srt, vtt, verbose_json";

    /// Parses OpenAI's name.
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "json" => Self::Json,
            "text" => Self::Text,
            "srt" => Self::Srt,
            "vtt" => Self::Vtt,
            "verbose_json" => Self::VerboseJson,
            _ => return None,
        })
    }
}

/// What `verbose_json` includes (`timestamp_granularities[]`); with neither asked, segments, as
/// OpenAI does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Granularities {
    /// `word`.
    pub words: bool,
    /// `segment`.
    pub segments: bool,
}

/// The body and its content type.
pub fn render(
    transcript: &Transcript,
    format: ResponseFormat,
    granularities: Granularities,
    language: &str,
) -> (String, &'static str) {
    match format {
        ResponseFormat::Json => (
            json!({"text": transcript.text, "usage": usage(transcript)}).to_string(),
            Format::Json.content_type(),
        ),
        // OpenAI's text response has no trailing newline added; ours is the line as stored.
        ResponseFormat::Text => (transcript.render(Format::Text), Format::Text.content_type()),
        ResponseFormat::Srt => (transcript.render(Format::Srt), Format::Srt.content_type()),
        ResponseFormat::Vtt => (transcript.render(Format::Vtt), Format::Vtt.content_type()),
        ResponseFormat::VerboseJson => (
            verbose(transcript, granularities, language).to_string(),
            Format::Json.content_type(),
        ),
    }
}

/// OpenAI bills transcription by duration: `{"type": "duration", "seconds"}`, whole seconds
/// rounded up.
pub fn usage(transcript: &Transcript) -> Value {
    json!({"type": "duration", "seconds": transcript.duration.ceil() as u64})
}

/// `verbose_json`. Segments are the served segments of `GET /v1/jobs/{id}/transcript` (at most
/// 30 s each); the fields Whisper reports and Parakeet has no measure of are neutral:
/// `temperature` 0 (greedy decoding is what temperature 0 means), `tokens` empty,
/// `avg_logprob` 0 and `no_speech_prob` 0, and `compression_ratio` is the text's, measured as
/// Whisper does (its UTF-8 length over its zlib-compressed length). When the transcript has
/// speakers, each segment (of one speaker) names its own as `speaker` (`"A"`, `"B"`, ...; the
/// field and labels of OpenAI's `diarized_json` segments) and each word carries its own.
fn verbose(transcript: &Transcript, granularities: Granularities, language: &str) -> Value {
    let mut body = json!({
        "task": "transcribe",
        "language": language,
        "duration": transcript.duration,
        "text": transcript.text,
        "usage": usage(transcript),
    });
    if granularities.segments || !granularities.words {
        let served = transcript.served();
        let segments: Vec<Value> = served
            .segments
            .iter()
            .enumerate()
            .map(|(id, s)| {
                let mut segment = json!({
                    "id": id,
                    "seek": (s.start * 100.0).round() as u64,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "tokens": [],
                    "temperature": 0.0,
                    "avg_logprob": 0.0,
                    "compression_ratio": compression_ratio(&s.text),
                    "no_speech_prob": 0.0,
                });
                if let Some(speaker) = &s.speaker {
                    segment["speaker"] = speaker.as_str().into();
                }
                segment
            })
            .collect();
        body["segments"] = segments.into();
    }
    if granularities.words {
        body["words"] = serde_json::to_value(&transcript.words).expect("words serialise");
    }
    body
}

/// Whisper's `compression_ratio`: bytes of text over bytes of its zlib compression.
fn compression_ratio(text: &str) -> f64 {
    use std::io::Write as _;
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    encoder
        .write_all(text.as_bytes())
        .expect("writes to memory");
    let compressed = encoder.finish().expect("writes to memory");
    text.len() as f64 / compressed.len() as f64
}

#[cfg(test)]
mod tests {
    use warble_jobs::transcript::{Segment, Word};

    use super::*;

    /// "Hi. Hello." in one stored segment, by `speakers` (one a word, or none).
    fn transcript(speakers: [Option<&str>; 2]) -> Transcript {
        let word = |word: &str, start: f64, speaker: Option<&str>| Word {
            word: word.into(),
            start,
            end: start + 0.4,
            speaker: speaker.map(str::to_string),
        };
        Transcript {
            text: "Hi. Hello.".into(),
            duration: 2.0,
            segments: vec![Segment {
                text: "Hi. Hello.".into(),
                start: 0.0,
                end: 1.4,
                speaker: None,
            }],
            words: vec![
                word("Hi.", 0.0, speakers[0]),
                word("Hello.", 1.0, speakers[1]),
            ],
            utterances: None,
        }
    }

    fn verbose_json(transcript: &Transcript) -> Value {
        let both = Granularities {
            words: true,
            segments: true,
        };
        let (body, _) = render(transcript, ResponseFormat::VerboseJson, both, "en");
        serde_json::from_str(&body).unwrap()
    }

    #[test]
    fn verbose_json_names_the_speaker_of_segments_and_words() {
        let body = verbose_json(&transcript([Some("A"), Some("B")]));
        let segments = body["segments"].as_array().unwrap();
        let of = |items: &[Value], field: &str| -> Vec<Value> {
            items.iter().map(|item| item[field].clone()).collect()
        };
        assert_eq!(of(segments, "text"), [json!("Hi."), json!("Hello.")]);
        assert_eq!(of(segments, "speaker"), [json!("A"), json!("B")]);
        assert_eq!(of(segments, "id"), [json!(0), json!(1)]);
        let words = body["words"].as_array().unwrap();
        assert_eq!(of(words, "speaker"), [json!("A"), json!("B")]);
        assert!(body.get("utterances").is_none());
    }

    #[test]
    fn verbose_json_without_speakers_has_no_speaker_field() {
        let body = verbose_json(&transcript([None, None]));
        let segments = body["segments"].as_array().unwrap();
        assert_eq!(segments.len(), 1);
        assert!(segments[0].get("speaker").is_none());
        assert!(body["words"][0].get("speaker").is_none());
    }

    #[test]
    fn repetitive_text_compresses_more() {
        let plain = compression_ratio("the quick brown fox jumps over the lazy dog");
        let looped = compression_ratio(&"thank you ".repeat(40));
        assert!(plain < 1.5 && looped > 5.0, "{plain} {looped}");
    }
}
