//! Word and segment timing from token emissions, following NeMo's `get_words_offsets` and
//! `get_segment_offsets` so that words and their frame offsets come out the same.

use crate::decoder::{DecoderKind, Emission};
use crate::tokenizer::Tokenizer;

/// A word and the encoder frames it spans, `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordSpan {
    /// The word, with any punctuation attached to it.
    pub word: String,
    /// First encoder frame.
    pub start: usize,
    /// One past the last encoder frame.
    pub end: usize,
}

/// Characters that end a segment (NeMo's default `segment_seperators`).
pub const SEGMENT_DELIMITERS: [char; 3] = ['.', '?', '!'];

/// Moves punctuation timings where NeMo does: a TDT punctuation token is pinned to the end of
/// the token before it (the model tends to emit it late, after the pause), a CTC one lasts
/// zero frames. RNNT timings stay as they are.
pub fn refine_punctuation(emissions: &mut [Emission], tokenizer: &Tokenizer, kind: DecoderKind) {
    for i in 1..emissions.len() {
        let text = tokenizer.decode(&[emissions[i].token]);
        if !text
            .chars()
            .next()
            .is_some_and(|c| tokenizer.punctuation().contains(&c))
        {
            continue;
        }
        match kind {
            DecoderKind::Tdt => {
                let end = emissions[i - 1].end;
                emissions[i].start = end;
                emissions[i].end = end;
            }
            DecoderKind::Ctc => emissions[i].end = emissions[i].start,
            DecoderKind::Rnnt => {}
        }
    }
}

/// Groups tokens into words: a word starts at a piece that carries the word marker, and
/// punctuation sticks to the word before it.
pub fn words(emissions: &[Emission], tokenizer: &Tokenizer) -> Vec<WordSpan> {
    let texts: Vec<String> = emissions
        .iter()
        .map(|e| tokenizer.decode(&[e.token]))
        .collect();
    let mut words: Vec<WordSpan> = Vec::new();
    let mut built: Vec<&str> = Vec::new();
    let mut first = 0;
    let word = |built: &[&str], start: usize, end: usize| WordSpan {
        word: tokenizer.decode_pieces(built.iter().copied()),
        start,
        end,
    };
    for (i, (emission, text)) in emissions.iter().zip(&texts).enumerate() {
        let piece = tokenizer.piece(emission.token);
        let is_punct = tokenizer.is_punctuation(text);
        let next_is_punct = texts[i + 1..]
            .iter()
            .find(|t| !t.is_empty() && t.as_str() != " ")
            .is_some_and(|t| tokenizer.is_punctuation(t));
        let starts_word = piece != text || (text == " " && !next_is_punct);
        if starts_word && !is_punct {
            if !built.is_empty() {
                words.push(word(&built, emissions[first].start, emissions[i - 1].end));
                built.clear();
            }
            if text != " " {
                built.push(piece);
                first = i;
            }
        } else if is_punct && built.is_empty() && !words.is_empty() {
            let last = words.last_mut().expect("checked non-empty");
            last.end = emission.end;
            if last.word.ends_with(' ') {
                last.word.pop();
            }
            last.word.push_str(text);
        } else if is_punct && !built.is_empty() {
            if built
                .last()
                .is_some_and(|p| [" ", "_", "\u{2581}"].contains(p))
            {
                built.pop();
            }
            built.push(piece);
        } else {
            if built.is_empty() {
                first = i;
            }
            built.push(piece);
        }
    }
    let (Some(head), Some(tail)) = (emissions.first(), emissions.last()) else {
        return words;
    };
    if words.is_empty() {
        if !built.is_empty() {
            words.push(word(&built, head.start, tail.end));
        }
    } else {
        words[0].start = head.start;
        if !built.is_empty() {
            words.push(word(&built, emissions[first].start, tail.end));
        }
    }
    words
}

/// A run of words and the frames it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSpan {
    /// The words joined by spaces.
    pub text: String,
    /// First encoder frame.
    pub start: usize,
    /// One past the last encoder frame.
    pub end: usize,
}

/// Splits words into segments after sentence punctuation and, when `gap_frames` is set, where
/// the silence between two words is at least that long.
pub fn segments(words: &[WordSpan], gap_frames: Option<usize>) -> Vec<SegmentSpan> {
    let mut segments = Vec::new();
    let mut current: Vec<&WordSpan> = Vec::new();
    let close = |current: &mut Vec<&WordSpan>, segments: &mut Vec<SegmentSpan>| {
        if let (Some(first), Some(last)) = (current.first(), current.last()) {
            let text = current
                .iter()
                .map(|w| w.word.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            segments.push(SegmentSpan {
                text,
                start: first.start,
                end: last.end,
            });
        }
        current.clear();
    };
    for word in words {
        if let (Some(gap), Some(prev)) = (gap_frames, current.last())
            && word.start.saturating_sub(prev.end) >= gap
        {
            close(&mut current, &mut segments);
        }
        current.push(word);
        if word.word.ends_with(SEGMENT_DELIMITERS) {
            close(&mut current, &mut segments);
        }
    }
    close(&mut current, &mut segments);
    segments
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Tokenizer {
        let pieces = ["▁hel", "lo", "▁world", ".", "▁how", "▁are", "?"];
        Tokenizer::new(pieces.iter().map(|p| p.to_string()).collect())
    }

    fn emit(tokens: &[(usize, usize, usize)]) -> Vec<Emission> {
        tokens
            .iter()
            .map(|&(token, start, end)| Emission { token, start, end })
            .collect()
    }

    #[test]
    fn words_join_pieces_and_keep_punctuation() {
        let t = tokenizer();
        let e = emit(&[
            (0, 1, 2),
            (1, 2, 4),
            (2, 6, 8),
            (3, 9, 9),
            (4, 20, 21),
            (5, 22, 23),
            (6, 23, 24),
        ]);
        let w = words(&e, &t);
        let got: Vec<_> = w
            .iter()
            .map(|w| (w.word.as_str(), w.start, w.end))
            .collect();
        assert_eq!(
            got,
            [
                ("hello", 1, 4),
                ("world.", 6, 9),
                ("how", 20, 21),
                ("are?", 22, 24)
            ]
        );
    }

    #[test]
    fn tdt_punctuation_is_pinned_to_the_previous_token() {
        let t = tokenizer();
        let mut e = emit(&[(2, 6, 8), (3, 15, 16)]);
        refine_punctuation(&mut e, &t, DecoderKind::Tdt);
        assert_eq!((e[1].start, e[1].end), (8, 8));
    }

    #[test]
    fn segments_split_on_sentence_ends_and_pauses() {
        let w = |word: &str, start, end| WordSpan {
            word: word.into(),
            start,
            end,
        };
        let words = [
            w("one", 0, 2),
            w("two.", 3, 5),
            w("three", 6, 8),
            w("four", 40, 42),
        ];
        let by_punct: Vec<_> = segments(&words, None).into_iter().map(|s| s.text).collect();
        assert_eq!(by_punct, ["one two.", "three four"]);
        let by_gap: Vec<_> = segments(&words, Some(25))
            .into_iter()
            .map(|s| (s.text, s.start, s.end))
            .collect();
        assert_eq!(
            by_gap,
            [
                ("one two.".into(), 0, 5),
                ("three".into(), 6, 8),
                ("four".into(), 40, 42)
            ]
        );
    }
}
