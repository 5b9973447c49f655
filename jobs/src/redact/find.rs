//! Finding entities in a run of words: from the first word on, the longest run of whole words
//! that reads as an entity, then on after it.

use std::ops::Range;

use super::spoken::{self, Token};
use super::{Policy, detect};
use crate::transcript::Word;

/// An entity found among words.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entity {
    /// Its words: indices into the words searched.
    pub words: Range<usize>,
    /// What kind of information it is.
    pub policy: Policy,
}

/// The most words one entity may have: an IBAN spelled out character by character, with room.
const MAX_WORDS: usize = 48;

/// The longest an entity may read, in bytes, before a word that makes it longer; a single word
/// (a long URL) may read longer.
const MAX_LEN: usize = 128;

/// Words that start no entity: said before an address spoken in words ("I work at example dot
/// com", "the dot com bubble"), they would otherwise read as part of it (`work@example.com`,
/// `the.com`). Single letters are not among them: they may start an address spelled out.
const NEVER_FIRST: &[&str] = &[
    "an", "the", "this", "that", "these", "those", "my", "your", "his", "her", "its", "our",
    "their", "me", "you", "him", "us", "them", "it", "we", "they", "he", "she", "is", "are", "was",
    "were", "be", "am", "in", "on", "of", "to", "for", "from", "with", "by", "and", "or", "but",
    "so", "if", "as", "not", "no", "here", "there", "now", "work", "works", "worked", "working",
    "look", "looking", "live", "lives", "online",
];

/// The entities of `policies` among `words`, in order, none overlapping.
///
/// An entity that begins or ends in digits takes the digits around it too: a number read
/// inside a longer run of digits ("four one one one ... one", nine of which have the shape of
/// a social security number) would otherwise leave the rest of the run, part of the same
/// number, in the clear.
pub(super) fn entities(words: &[Word], policies: &[Policy]) -> Vec<Entity> {
    let tokens = spoken::tokens(words);
    let digits = |i: usize| {
        let text = &tokens[i].text;
        !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
    };
    let mut found: Vec<Entity> = Vec::new();
    let mut start = 0;
    while start < tokens.len() {
        match longest(&tokens[start..], policies) {
            Some((len, policy)) => {
                let free = found.last().map_or(0, |e| e.words.end);
                let mut first = start;
                while first > free && digits(first) && digits(first - 1) {
                    first -= 1;
                }
                let mut end = start + len;
                while end < tokens.len() && digits(end - 1) && digits(end) {
                    end += 1;
                }
                found.push(Entity {
                    words: first..end,
                    policy,
                });
                start = end;
            }
            None => start += 1,
        }
    }
    found
}

/// The longest run of `tokens` from the first that reads as an entity of one of `policies`:
/// its length and policy (the first of `policies` it is one of).
fn longest(tokens: &[Token], policies: &[Policy]) -> Option<(usize, Policy)> {
    if NEVER_FIRST.contains(&tokens[0].text.as_str()) {
        return None;
    }
    let mut text = String::new();
    let mut marked = false;
    let mut best = None;
    for (n, token) in tokens.iter().take(MAX_WORDS).enumerate() {
        if n > 0 && !spoken::joined(&tokens[n - 1], token) {
            text.push(' ');
        }
        text.push_str(&token.text);
        marked = marked || detect::marks_entity(&token.text);
        if marked && let Some(&policy) = policies.iter().find(|policy| policy.matches(&text)) {
            best = Some((n + 1, policy));
        }
        if text.len() > MAX_LEN {
            break;
        }
    }
    best
}
