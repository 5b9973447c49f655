//! Words as detection reads them: without the punctuation attached to them, in lower case,
//! with spoken digits and symbols written as such ("five" `5`, "oh" `0`, "dot" `.`, "at" `@`),
//! "double five" as `55`.

use crate::transcript::Word;

/// A word as detection reads it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    /// The word without attached punctuation, in lower case, a spoken digit or symbol as the
    /// digit or symbol. "double" or "triple" before a digit or letter is empty, and the digit
    /// or letter after it repeated.
    pub text: String,
    /// What kind of word it is, by its text.
    pub kind: Kind,
}

/// What kind of word a [`Token`] is, which says how it reads together with the words beside it
/// ([`joined`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// A symbol that joins the parts of an address or number: `.`, `@`, `-`, `_`, `/`, `:`,
    /// `+`, spoken ("dot") or written.
    Symbol,
    /// A single letter or digit, spoken or written, or a repeated one ("double five"): a
    /// character of something spelled out or read digit by digit.
    Character,
    /// Any other word.
    Word,
}

/// Whether `a` and `b`, one after the other, read together with no space between them: when
/// either is a symbol, or both are characters. Others read with a space between them, which
/// only numbers in groups and IBANs may hold: "is john dot smith" reads `is john.smith`, "j o
/// h n" `john`, "I work" `i work`, "4111 1111" `4111 1111`.
pub(super) fn joined(a: &Token, b: &Token) -> bool {
    a.kind == Kind::Symbol
        || b.kind == Kind::Symbol
        || (a.kind == Kind::Character && b.kind == Kind::Character)
}

/// The punctuation that may end a word after what it says: sentence punctuation and closing
/// quotes. Redaction keeps it after the substitution, so that the sentence still ends.
pub(super) const SENTENCE_END: &[char] =
    &['.', ',', ';', ':', '?', '!', '…', '"', '\'', '”', '’', '»'];

/// What may open a word before what it says: opening brackets and quotes.
const OPENING: &[char] = &['(', '<', '"', '\'', '“', '‘', '«', '¿', '¡'];

/// Closing brackets, which may end a word before its [`SENTENCE_END`].
const CLOSING: &[char] = &[')', '>'];

/// The symbols of [`Kind::Symbol`].
const SYMBOLS: &str = ".@-_/:+";

/// Spoken digits and symbols, and what they stand for.
const SPOKEN: &[(&str, &str)] = &[
    ("zero", "0"),
    ("oh", "0"),
    ("nought", "0"),
    ("one", "1"),
    ("two", "2"),
    ("three", "3"),
    ("four", "4"),
    ("five", "5"),
    ("six", "6"),
    ("seven", "7"),
    ("eight", "8"),
    ("nine", "9"),
    ("dot", "."),
    ("at", "@"),
    ("dash", "-"),
    ("hyphen", "-"),
    ("underscore", "_"),
    ("slash", "/"),
    ("colon", ":"),
    ("plus", "+"),
];

/// Words that say the next digit or letter is repeated, and how many times it is then said.
const REPEATS: &[(&str, usize)] = &[("double", 2), ("triple", 3)];

/// How detection reads each of `words`.
pub(super) fn tokens(words: &[Word]) -> Vec<Token> {
    let mut tokens: Vec<Token> = words.iter().map(|word| token(&word.word)).collect();
    for i in 1..tokens.len() {
        let repeat = REPEATS.iter().find(|(word, _)| *word == tokens[i - 1].text);
        if let Some(&(_, times)) = repeat
            && tokens[i].kind == Kind::Character
            && tokens[i].text.chars().count() == 1
        {
            tokens[i].text = tokens[i].text.repeat(times);
            tokens[i - 1] = Token {
                text: String::new(),
                kind: Kind::Character,
            };
        }
    }
    tokens
}

/// How detection reads `word` on its own.
fn token(word: &str) -> Token {
    let core = word
        .trim_start_matches(OPENING)
        .trim_end_matches(|c| SENTENCE_END.contains(&c) || CLOSING.contains(&c))
        .to_lowercase();
    let text = match SPOKEN.iter().find(|(spoken, _)| *spoken == core) {
        Some((_, written)) => written.to_string(),
        None => core,
    };
    let mut chars = text.chars();
    let kind = match (chars.next(), chars.next()) {
        (Some(c), None) if SYMBOLS.contains(c) => Kind::Symbol,
        (Some(c), None) if c.is_alphanumeric() => Kind::Character,
        _ => Kind::Word,
    };
    Token { text, kind }
}
