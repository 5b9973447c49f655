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
/// is lost, and `0.24` reads `0.24` rather than `0.24000000000000002`), and never past `last`.
///
/// Frame times can pass the end of the audio two ways: the last encoder frame stands for up to
/// 80 ms of which only part is audio (0.2 s of audio is 3 frames, 0.24 s), and a TDT duration
/// predicted near the end points past the last frame. Clamping here, where frames become
/// seconds, puts every token, word and segment (and every rendering made of them) inside the
/// audio; the clamp keeps their order, so starts stay at or before ends and in sequence.
fn seconds(frame: usize, frame_secs: f64, last: f64) -> f64 {
    ((frame as f64 * frame_secs * 1000.0).round() / 1000.0).min(last)
}

impl Transcript {
    /// Assembles a transcript from decoder output measured in encoder frames, for `duration`
    /// seconds of audio. Every time is a whole millisecond at or before `duration`.
    pub fn new(
        tokenizer: &Tokenizer,
        emissions: &[Emission],
        words: &[WordSpan],
        segments: &[SegmentSpan],
        frame_secs: f64,
        duration: f64,
    ) -> Self {
        // The last whole millisecond of the audio, so that rendering to milliseconds (as
        // subtitles do) cannot round a time past the end either.
        let last = (duration * 1000.0).floor() / 1000.0;
        let at = |frame| seconds(frame, frame_secs, last);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamps;

    /// Issue 15: 0.2 s of audio is three encoder frames, and its last word ended at 0.24 s; a
    /// TDT duration on the last frame reaches further still.
    #[test]
    fn no_time_passes_the_end_of_the_audio() {
        let tokenizer = Tokenizer::new(vec!["▁hi".into(), "▁yo".into()]);
        let emissions = [
            Emission {
                token: 0,
                start: 0,
                end: 2,
            },
            Emission {
                token: 1,
                start: 2,
                end: 6,
            },
        ];
        let words = timestamps::words(&emissions, &tokenizer);
        let segments = timestamps::segments(&words, None);
        let spans = |duration| {
            let t = Transcript::new(&tokenizer, &emissions, &words, &segments, 0.08, duration);
            let words: Vec<(f64, f64)> = t.words.iter().map(|w| (w.start, w.end)).collect();
            let tokens: Vec<(f64, f64)> = t.tokens.iter().map(|w| (w.start, w.end)).collect();
            let segments: Vec<(f64, f64)> = t.segments.iter().map(|w| (w.start, w.end)).collect();
            (tokens, words, segments)
        };
        let cut = [(0.0, 0.16), (0.16, 0.2)];
        assert_eq!(spans(0.2), (cut.to_vec(), cut.to_vec(), vec![(0.0, 0.2)]));
        // A start past the end as well; and the end is a whole millisecond of audio.
        let cut = [(0.0, 0.15), (0.15, 0.15)];
        assert_eq!(
            spans(0.1505),
            (cut.to_vec(), cut.to_vec(), vec![(0.0, 0.15)])
        );
        // Inside the audio, times are the frames'.
        let whole = [(0.0, 0.16), (0.16, 0.48)];
        assert_eq!(
            spans(1.0),
            (whole.to_vec(), whole.to_vec(), vec![(0.0, 0.48)])
        );
    }
}
