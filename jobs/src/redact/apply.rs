//! Replacing the entities found: each one's words merged into one word with the substitution.

use super::find::Entity;
use super::spoken::SENTENCE_END;
use super::{Policy, Redaction, Substitution};
use crate::transcript::Word;

impl Substitution {
    /// What replaces `replaced`, an entity of `policy` as written.
    fn replace(self, policy: Policy, replaced: &str) -> String {
        match self {
            Substitution::EntityName => policy.entity_name(),
            Substitution::Hash => "#".repeat(replaced.chars().count()),
        }
    }
}

/// `words` with each of `entities` (in order, none overlapping) merged into one word, and the
/// entities' spans. The merged word is the substitution followed by the [`SENTENCE_END`] the
/// last of its words ended with, from the first's start to the last's end; its other fields
/// are the first's.
pub(super) fn merge(
    words: &[Word],
    entities: &[Entity],
    substitution: Substitution,
) -> (Vec<Word>, Vec<Redaction>) {
    let mut merged = Vec::with_capacity(words.len());
    let mut spans = Vec::with_capacity(entities.len());
    let mut next = 0;
    for entity in entities {
        merged.extend_from_slice(&words[next..entity.words.start]);
        let own = &words[entity.words.clone()];
        let (first, last) = (&own[0], &own[own.len() - 1]);
        let written = crate::transcript::join(own);
        let replaced = written.trim_end_matches(SENTENCE_END);
        merged.push(Word {
            word: substitution.replace(entity.policy, replaced) + &written[replaced.len()..],
            start: first.start,
            end: last.end,
            ..first.clone()
        });
        spans.push(Redaction {
            policy: entity.policy,
            start: first.start,
            end: last.end,
        });
        next = entity.words.end;
    }
    merged.extend_from_slice(&words[next..]);
    (merged, spans)
}
