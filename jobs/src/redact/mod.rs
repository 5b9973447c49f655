//! PII redaction of transcripts, after AssemblyAI's `redact_pii`: e-mail addresses, phone
//! numbers, card numbers, IBANs, US social security numbers, IP addresses and URLs, written in
//! digits and symbols or spoken in words ("five five five, oh one three four", "john dot smith
//! at example dot com"), each replaced by its entity name (`[PHONE_NUMBER]`) or by hashes.
//!
//! Segment by segment (an entity never crosses a stored segment), [`redact`]:
//!
//! 1. reads each word as detection sees it (`spoken`): without attached punctuation, spoken
//!    digits and symbols written as such;
//! 2. finds the entities (`find`): from the first word on, the longest run of whole words
//!    that reads as an entity of an asked-for policy (`detect`), then on after it;
//! 3. merges each entity's words into one word with the substitution (`apply`), and rebuilds
//!    the segments' texts and the transcript's from the words.
//!
//! The worker redacts a transcript before storing it: the unredacted one is never stored.
//! `docs/redaction.md` says what is detected and what is not.

mod apply;
mod detect;
mod find;
mod spoken;
#[cfg(test)]
mod tests;

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::transcript::{Segment, Transcript, Word};

/// A kind of personal information that redaction finds, by AssemblyAI's name for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// E-mail addresses: `john.smith@example.com`, "john dot smith at example dot com".
    EmailAddress,
    /// Phone numbers: North American ones of 7, 10 or 11 digits, national ones starting with a
    /// trunk `0`, international ones starting with `+`.
    PhoneNumber,
    /// Payment card numbers: 13 to 19 digits that pass the Luhn check.
    CreditCardNumber,
    /// IBANs, checked against their country's format and their check digits.
    BankingInformation,
    /// US social security numbers: `AAA-GG-SSSS` with an area that is not 000, 666 or 9xx, a
    /// group that is not 00 and a serial that is not 0000.
    UsSocialSecurityNumber,
    /// IPv4 and IPv6 addresses.
    IpAddress,
    /// Web addresses: with a scheme or `www.`, or a domain ending in a known top-level domain.
    Url,
}

impl Policy {
    /// Every policy: what a job that names none redacts.
    pub const ALL: [Policy; 7] = [
        Policy::EmailAddress,
        Policy::PhoneNumber,
        Policy::CreditCardNumber,
        Policy::BankingInformation,
        Policy::UsSocialSecurityNumber,
        Policy::IpAddress,
        Policy::Url,
    ];

    /// The policy's name, as in `redact_pii_policies`: `email_address`, `phone_number`, ...
    pub fn name(self) -> &'static str {
        match self {
            Policy::EmailAddress => "email_address",
            Policy::PhoneNumber => "phone_number",
            Policy::CreditCardNumber => "credit_card_number",
            Policy::BankingInformation => "banking_information",
            Policy::UsSocialSecurityNumber => "us_social_security_number",
            Policy::IpAddress => "ip_address",
            Policy::Url => "url",
        }
    }

    /// What [`Substitution::EntityName`] writes for it: its name in upper case, in brackets.
    fn entity_name(self) -> String {
        format!("[{}]", self.name().to_ascii_uppercase())
    }
}

impl FromStr for Policy {
    type Err = UnknownPolicy;

    /// The policy named `name` ([`Policy::name`]).
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|policy| policy.name() == name)
            .ok_or_else(|| UnknownPolicy(name.to_string()))
    }
}

/// A name in `redact_pii_policies` that is no [`Policy`]; AssemblyAI's policies that need a
/// language model (`person_name`, `location`, ...) are among them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown PII policy `{name}`: the policies are {names}",
    name = .0,
    names = Policy::ALL.map(Policy::name).join(", ")
)]
pub struct UnknownPolicy(pub String);

/// What replaces an entity (`redact_pii_sub`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Substitution {
    /// The policy's name in upper case, in brackets: `[EMAIL_ADDRESS]`.
    #[default]
    EntityName,
    /// `#` for each character replaced, spaces between its words included, so that the text
    /// keeps its length.
    Hash,
}

/// What to redact, and how.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// The kinds of information to redact; empty for all ([`Policy::ALL`]).
    pub policies: Vec<Policy>,
    /// What replaces each entity.
    pub substitution: Substitution,
}

/// One redacted entity: what it was and when it was said, for silencing the audio.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Redaction {
    /// What kind of information it was.
    pub policy: Policy,
    /// Start of its first word, seconds.
    pub start: f64,
    /// End of its last word, seconds.
    pub end: f64,
}

/// A redacted transcript and what was redacted in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    /// The transcript with each entity's words merged into one word, its substitution, with
    /// the segments' texts and the text rebuilt from the words; the input itself when nothing
    /// was found.
    pub transcript: Transcript,
    /// Each entity redacted, in order.
    pub spans: Vec<Redaction>,
}

/// Redacts what `options` asks for from `transcript` (see the module's documentation).
///
/// Each entity's words become one word: the substitution followed by the sentence punctuation
/// that ended the last of them, from the start of the first to the end of the last, its other
/// fields the first's. Each changed segment's text becomes its words joined by spaces, and the
/// transcript's text its segments' texts joined by spaces, so that segments still map to their
/// words by counting them. Redacting a redacted transcript again changes nothing.
pub fn redact(transcript: &Transcript, options: &Options) -> Redacted {
    let policies = match options.policies.as_slice() {
        [] => Policy::ALL.as_slice(),
        some => some,
    };
    let mut runs = transcript.sentences();
    let segmented = runs.len();
    // Words past the last segment's (none, as the worker stores transcripts) are redacted too.
    let covered: usize = runs.iter().map(|run| run.len()).sum();
    runs.push(&transcript.words[covered..]);

    let mut spans = Vec::new();
    let redacted: Vec<Option<Vec<Word>>> = runs
        .iter()
        .map(|run| {
            let entities = find::entities(run, policies);
            (!entities.is_empty()).then(|| {
                let (words, found) = apply::merge(run, &entities, options.substitution);
                spans.extend(found);
                words
            })
        })
        .collect();
    if spans.is_empty() {
        return Redacted {
            transcript: transcript.clone(),
            spans,
        };
    }

    let new_runs: Vec<&[Word]> = runs
        .iter()
        .zip(&redacted)
        .map(|(run, new)| new.as_deref().unwrap_or(run))
        .collect();
    // A segment with words in its text has the next run, while there is one (see
    // `Transcript::sentences`).
    let mut segment_runs = redacted[..segmented].iter();
    let segments: Vec<Segment> = transcript
        .segments
        .iter()
        .map(|segment| {
            let has_words = segment.text.split_whitespace().next().is_some();
            match has_words.then(|| segment_runs.next()).flatten() {
                Some(Some(words)) => Segment {
                    text: crate::transcript::join(words),
                    ..segment.clone()
                },
                _ => segment.clone(),
            }
        })
        .collect();
    let tail = new_runs[segmented];
    let text = segments
        .iter()
        .map(|segment| segment.text.clone())
        .chain((!tail.is_empty()).then(|| crate::transcript::join(tail)))
        .collect::<Vec<_>>()
        .join(" ");
    Redacted {
        transcript: Transcript {
            text,
            segments,
            words: new_runs.concat(),
            ..transcript.clone()
        },
        spans,
    }
}
