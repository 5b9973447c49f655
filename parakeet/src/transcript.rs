//! The result of a transcription: text, and tokens, words and segments with times in seconds.

use serde::{Deserialize, Serialize};

use crate::decoder::Emission;
use crate::timestamps::{SegmentSpan, WordSpan};
use crate::tokenizer::Tokenizer;

/// One token with its time span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedToken {
    /// Token id in the model's vocabulary.
    pub id: u32,
    /// The SentencePiece piece (`▁` marks a word start).
    pub piece: String,
    /// Start, seconds from the beginning of the audio.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// One word with its time span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedWord {
    /// The word, with attached punctuation.
    pub word: String,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// A sentence or a stretch of speech between pauses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimedSegment {
    /// The segment's words joined by spaces.
    pub text: String,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
}

/// A transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The full text.
    pub text: String,
    /// Length of the audio, seconds.
    pub duration: f64,
    /// Every token.
    pub tokens: Vec<TimedToken>,
    /// Every word.
    pub words: Vec<TimedWord>,
    /// Sentences (split after `.`, `?`, `!` and at long pauses).
    pub segments: Vec<TimedSegment>,
}

/// Seconds of encoder frame `frame`, to the millisecond (encoder frames are 80 ms, so nothing
/// is lost, and `0.24` reads `0.24` rather than `0.24000000000000002`).
fn seconds(frame: usize, frame_secs: f64) -> f64 {
    (frame as f64 * frame_secs * 1000.0).round() / 1000.0
}

impl Transcript {
    /// Assembles a transcript from decoder output measured in encoder frames.
    pub fn new(
        tokenizer: &Tokenizer,
        emissions: &[Emission],
        words: &[WordSpan],
        segments: &[SegmentSpan],
        frame_secs: f64,
        duration: f64,
    ) -> Self {
        let at = |frame| seconds(frame, frame_secs);
        let ids: Vec<usize> = emissions.iter().map(|e| e.token).collect();
        Self {
            text: tokenizer.decode_text(&ids),
            duration,
            tokens: emissions
                .iter()
                .map(|e| TimedToken {
                    id: e.token as u32,
                    piece: tokenizer.piece(e.token).to_string(),
                    start: at(e.start),
                    end: at(e.end),
                })
                .collect(),
            words: words
                .iter()
                .map(|w| TimedWord {
                    word: w.word.clone(),
                    start: at(w.start),
                    end: at(w.end),
                })
                .collect(),
            segments: segments
                .iter()
                .map(|s| TimedSegment {
                    text: s.text.clone(),
                    start: at(s.start),
                    end: at(s.end),
                })
                .collect(),
        }
    }

    /// The token ids.
    pub fn token_ids(&self) -> Vec<u32> {
        self.tokens.iter().map(|t| t.id).collect()
    }
}
