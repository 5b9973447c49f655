//! The transcript a job produces, as stored and served, and its renderings as plain text,
//! SubRip (SRT) and WebVTT.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A word with its time span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Word {
    /// The word, with attached punctuation.
    pub word: String,
    /// Start, seconds from the beginning of the audio.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// A sentence, or a stretch of speech between long pauses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    /// The segment's words.
    pub text: String,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// A finished transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    /// The whole text.
    pub text: String,
    /// Length of the audio, seconds.
    pub duration: f64,
    /// Sentences with times.
    pub segments: Vec<Segment>,
    /// Every word with times.
    pub words: Vec<Word>,
}

/// The renderings `GET /v1/jobs/{id}/transcript` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// The [`Transcript`] as JSON.
    #[default]
    Json,
    /// The text and a newline.
    Text,
    /// SubRip subtitles, one cue per segment.
    Srt,
    /// WebVTT subtitles, one cue per segment.
    Vtt,
}

impl Format {
    /// The `Content-Type` of this rendering.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Text => "text/plain; charset=utf-8",
            Self::Srt => "application/x-subrip; charset=utf-8",
            Self::Vtt => "text/vtt; charset=utf-8",
        }
    }
}

impl Transcript {
    /// Renders the transcript as `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string(self).expect("a transcript serialises"),
            Format::Text => format!("{}\n", self.text),
            Format::Srt => self.cues(",", |n| format!("{n}\n")),
            Format::Vtt => format!("WEBVTT\n\n{}", self.cues(".", |_| String::new())),
        }
    }

    /// One cue per segment: an optional header line, `start --> end`, the text, a blank line.
    fn cues(&self, decimal: &str, header: impl Fn(usize) -> String) -> String {
        self.segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "{}{} --> {}\n{}\n\n",
                    header(i + 1),
                    timestamp(s.start, decimal),
                    timestamp(s.end, decimal),
                    s.text
                )
            })
            .collect()
    }
}

/// `HH:MM:SS<decimal>mmm`, the timestamp both subtitle formats use.
fn timestamp(seconds: f64, decimal: &str) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    format!("{h:02}:{m:02}:{s:02}{decimal}{ms:03}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Transcript {
        Transcript {
            text: "Hello there. General Kenobi.".into(),
            duration: 3725.5,
            segments: vec![
                Segment {
                    text: "Hello there.".into(),
                    start: 0.24,
                    end: 1.2,
                },
                Segment {
                    text: "General Kenobi.".into(),
                    start: 3723.0,
                    end: 3725.04,
                },
            ],
            words: vec![],
        }
    }

    #[test]
    fn srt_numbers_cues_and_uses_commas() {
        assert_eq!(
            sample().render(Format::Srt),
            "1\n00:00:00,240 --> 00:00:01,200\nHello there.\n\n\
             2\n01:02:03,000 --> 01:02:05,040\nGeneral Kenobi.\n\n"
        );
    }

    #[test]
    fn vtt_has_its_header_and_uses_dots() {
        assert_eq!(
            sample().render(Format::Vtt),
            "WEBVTT\n\n00:00:00.240 --> 00:00:01.200\nHello there.\n\n\
             01:02:03.000 --> 01:02:05.040\nGeneral Kenobi.\n\n"
        );
    }

    #[test]
    fn json_round_trips() {
        let json = sample().render(Format::Json);
        assert_eq!(serde_json::from_str::<Transcript>(&json).unwrap(), sample());
    }
}
