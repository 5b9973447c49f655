//! Who said each word: the turns a diarizer finds ("who spoke when"), given to the words of a
//! transcript.
//!
//! The rule, word by word, in the order of the words:
//!
//! 1. A word goes to the speaker whose turns overlap its span the most (in total, whole
//!    milliseconds, so that equal overlaps compare equal whatever float noise the times
//!    carry).
//! 2. A word no turn overlaps (in a gap between turns, or a word of no length) goes to the
//!    speaker of the nearest turn in time.
//! 3. Ties, in either case (two voices both over the whole word, say, or a word halfway
//!    between two turns), go to the previous word's speaker if it is among the tied, so that
//!    a sentence is not cut by an overlapping voice; else to the one of the tied who started
//!    talking earliest (whose overlapping, or nearest, turn starts first), the voice that
//!    held the floor rather than the one that cut in; else to the diarizer's lower index.
//!
//! Words are then labelled as AssemblyAI labels speakers: in order of first appearance in the
//! words, the first speaker heard `A`, the next `B`, ..., after `Z` `AA`, `AB`, ... The
//! diarizer's own speaker indices, in whatever order it numbers them, do not show.

use std::collections::{BTreeMap, HashMap};

use crate::transcript::{Transcript, Word};

/// One stretch of one speaker's speech, as a diarizer reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Turn {
    /// The diarizer's index for the speaker: the same for all of one voice's turns, in no
    /// particular order.
    pub speaker: usize,
    /// Start, seconds from the beginning of the audio.
    pub start: f64,
    /// End, seconds; not before `start`. Turns of different speakers may overlap, where both
    /// speak at once.
    pub end: f64,
}

/// Sets each word's [`Word::speaker`] from `turns`, by the rule of this module. Without any
/// turns the words are left as they are: a transcript without speakers has `None` on all.
pub fn attribute(transcript: &mut Transcript, turns: &[Turn]) {
    if turns.is_empty() {
        return;
    }
    let mut previous = None;
    let mut labels = HashMap::new();
    for word in &mut transcript.words {
        let speaker = choose(word, turns, previous);
        let count = labels.len();
        let label = labels.entry(speaker).or_insert_with(|| nth_label(count));
        word.speaker = Some(label.clone());
        previous = Some(speaker);
    }
}

/// How strongly a speaker's turns claim a word, weakest first: the distance to the nearest
/// turn (nearer is stronger), below any overlap (more is stronger); whole milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Strength {
    Near(std::cmp::Reverse<u64>),
    Overlap(u64),
}

/// A speaker's claim on a word: its strength, and when the turns that make it start.
#[derive(Debug, Clone, Copy)]
struct Claim {
    strength: Strength,
    since: f64,
}

impl Claim {
    /// `turn`'s claim on `word`.
    fn of(turn: &Turn, word: &Word) -> Self {
        // Negative when they do not overlap: then minus the gap between them.
        let overlap = word.end.min(turn.end) - word.start.max(turn.start);
        let strength = if overlap > 0.0 {
            Strength::Overlap(millis(overlap))
        } else {
            Strength::Near(std::cmp::Reverse(millis(-overlap)))
        };
        Self {
            strength,
            since: turn.start,
        }
    }

    /// The claim of one speaker's two turns together: their overlaps add up; otherwise the
    /// stronger counts, the earlier of equals.
    fn and(self, other: Self) -> Self {
        match (self.strength, other.strength) {
            (Strength::Overlap(a), Strength::Overlap(b)) => Self {
                strength: Strength::Overlap(a + b),
                since: self.since.min(other.since),
            },
            (a, b) if a == b && other.since < self.since => other,
            (a, b) if b > a => other,
            _ => self,
        }
    }
}

/// The diarizer's speaker for `word`, given the previous word's.
fn choose(word: &Word, turns: &[Turn], previous: Option<usize>) -> usize {
    let mut claims: BTreeMap<usize, Claim> = BTreeMap::new();
    for turn in turns {
        let claim = Claim::of(turn, word);
        claims
            .entry(turn.speaker)
            .and_modify(|c| *c = c.and(claim))
            .or_insert(claim);
    }
    let best = claims.values().map(|c| c.strength).max();
    let tied: Vec<(usize, f64)> = claims
        .into_iter()
        .filter(|(_, c)| Some(c.strength) == best)
        .map(|(speaker, c)| (speaker, c.since))
        .collect();
    match previous {
        Some(previous) if tied.iter().any(|&(speaker, _)| speaker == previous) => previous,
        // In index order, so the first of equal starts is the lower index.
        _ => tied
            .iter()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|&(speaker, _)| speaker)
            .expect("there are turns, so claims"),
    }
}

/// Seconds as whole milliseconds.
fn millis(seconds: f64) -> u64 {
    (seconds * 1000.0).round() as u64
}

/// The label of the `n`th speaker heard, from 0: `A` to `Z`, then `AA`, `AB`, ... as
/// spreadsheet columns go.
fn nth_label(mut n: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(speaker: usize, start: f64, end: f64) -> Turn {
        Turn {
            speaker,
            start,
            end,
        }
    }

    /// The labels `turns` give words with the given spans.
    fn labels(spans: &[(f64, f64)], turns: &[Turn]) -> Vec<Option<String>> {
        let words: Vec<Word> = spans
            .iter()
            .map(|&(start, end)| Word {
                word: "word".into(),
                start,
                end,
                speaker: None,
            })
            .collect();
        let mut transcript = Transcript {
            text: String::new(),
            duration: 10.0,
            segments: Vec::new(),
            words,
            utterances: None,
        };
        attribute(&mut transcript, turns);
        transcript.words.into_iter().map(|w| w.speaker).collect()
    }

    fn some(labels: &[&str]) -> Vec<Option<String>> {
        labels.iter().map(|l| Some(l.to_string())).collect()
    }

    #[test]
    fn clear_turns_are_labelled_in_the_order_speakers_are_first_heard() {
        // The diarizer numbers the first voice 3 and the second 1.
        let turns = [turn(1, 2.0, 4.0), turn(3, 0.0, 2.0), turn(3, 4.0, 5.0)];
        assert_eq!(
            labels(
                &[(0.1, 0.5), (0.6, 1.0), (2.1, 2.5), (3.0, 3.5), (4.2, 4.6)],
                &turns
            ),
            some(&["A", "A", "B", "B", "A"])
        );
    }

    #[test]
    fn a_word_across_two_turns_goes_to_the_one_over_more_of_it() {
        let turns = [turn(0, 0.0, 2.0), turn(1, 2.0, 4.0)];
        assert_eq!(
            labels(&[(1.0, 1.5), (1.8, 2.4), (2.5, 2.9), (3.9, 4.05)], &turns),
            some(&["A", "B", "B", "B"])
        );
        // Overlaps of one speaker's turns add up: 0.3 + 0.4 s of the first word are 0's,
        // 0.5 s 1's. The second word is 1's alone.
        let split = [
            turn(0, 0.0, 1.1),
            turn(0, 1.2, 2.0),
            turn(1, 1.0, 1.5),
            turn(1, 3.0, 4.0),
        ];
        assert_eq!(labels(&[(0.8, 1.6), (3.2, 3.5)], &split), some(&["A", "B"]));
    }

    #[test]
    fn a_word_both_say_goes_to_the_previous_speaker_else_to_who_spoke_first() {
        // Y (7) from 3.0, X (5) from 3.5: both over the word at 4.0.
        let turns = [
            turn(7, 0.0, 1.0),
            turn(5, 1.5, 2.5),
            turn(7, 3.0, 6.0),
            turn(5, 3.5, 6.0),
        ];
        assert_eq!(
            labels(&[(0.2, 0.6), (1.8, 2.2), (4.0, 4.5)], &turns),
            some(&["A", "B", "B"]),
            "X said the word before"
        );
        assert_eq!(
            labels(&[(0.2, 0.6), (4.0, 4.5)], &turns),
            some(&["A", "A"]),
            "Y said the word before"
        );
        // Only X says the last word.
        let with_x_after = [&turns[..], &[turn(5, 6.5, 7.0)]].concat();
        assert_eq!(
            labels(&[(4.0, 4.5), (6.6, 6.9)], &with_x_after),
            some(&["A", "B"]),
            "no word before: Y, who started first"
        );
        assert_eq!(
            labels(
                &[(4.0, 4.5), (5.0, 5.5), (6.6, 6.9)],
                &[turn(2, 3.0, 6.0), turn(0, 3.0, 6.0), turn(2, 6.5, 7.0)]
            ),
            some(&["A", "A", "B"]),
            "equal in all: the lower index"
        );
    }

    #[test]
    fn a_word_in_a_gap_goes_to_the_nearest_turn_the_previous_speaker_of_equals() {
        let turns = [turn(0, 0.0, 1.0), turn(1, 1.5, 2.0), turn(0, 3.0, 4.0)];
        assert_eq!(
            labels(
                &[(0.2, 0.8), (1.1, 1.2), (1.3, 1.4), (1.6, 1.9), (2.4, 2.6)],
                &turns
            ),
            // 0.1 s after A; 0.1 s before B; in B; 0.4 s from both, B said the word before.
            some(&["A", "A", "B", "B", "B"])
        );
        assert_eq!(
            labels(&[(0.2, 0.8), (2.4, 2.6), (4.5, 5.0)], &turns),
            some(&["A", "A", "A"]),
            "A said the word before; after all turns, the last"
        );
        assert_eq!(
            labels(&[(2.4, 2.6), (3.2, 3.5)], &turns),
            some(&["A", "B"]),
            "no word before: B, whose turn started first"
        );
    }

    #[test]
    fn a_word_of_no_length_goes_to_the_turn_around_it() {
        let turns = [turn(0, 0.0, 1.0), turn(1, 1.0, 2.0)];
        assert_eq!(labels(&[(0.5, 0.5), (1.5, 1.5)], &turns), some(&["A", "B"]));
        assert_eq!(labels(&[(1.5, 1.5), (0.5, 0.5)], &turns), some(&["A", "B"]));
    }

    #[test]
    fn without_turns_words_have_no_speaker() {
        assert_eq!(labels(&[(0.0, 1.0), (1.0, 2.0)], &[]), [None, None]);
        assert_eq!(labels(&[], &[turn(0, 0.0, 1.0)]), []);
    }

    #[test]
    fn labels_go_on_after_z_as_spreadsheet_columns() {
        let labels: Vec<String> = [0, 1, 25, 26, 27, 51, 52, 701, 702, usize::MAX]
            .into_iter()
            .map(nth_label)
            .collect();
        assert_eq!(
            labels[..9],
            ["A", "B", "Z", "AA", "AB", "AZ", "BA", "ZZ", "AAA"]
        );
        assert!(labels[9].bytes().all(|b| b.is_ascii_uppercase()));
    }
}
