//! SentencePiece pieces back to text, the way NeMo's `SentencePieceTokenizer` decodes them.
//!
//! Parakeet checkpoints list their pieces in the config (`joint.vocabulary` or
//! `decoder.vocabulary`) in id order, so decoding needs no SentencePiece runtime: pieces are
//! concatenated and the word-boundary marker `▁` becomes a space.

use std::collections::BTreeSet;

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// The word-boundary marker SentencePiece puts in front of word-initial pieces.
pub const WORD_MARKER: char = '\u{2581}';

/// Decodes token ids to text.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    pieces: Vec<String>,
    punctuation: BTreeSet<char>,
}

impl Tokenizer {
    /// A tokenizer over `pieces`, where `pieces[id]` is the piece of token `id`.
    pub fn new(pieces: Vec<String>) -> Self {
        let punctuation = pieces
            .iter()
            .filter(|p| !is_special(p))
            .flat_map(|p| p.chars())
            .filter(|c| c.general_category_group() == GeneralCategoryGroup::Punctuation)
            .collect();
        Self {
            pieces,
            punctuation,
        }
    }

    /// Number of pieces (the vocabulary size, without blank).
    pub fn len(&self) -> usize {
        self.pieces.len()
    }

    /// Whether the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.pieces.is_empty()
    }

    /// The piece of token `id`, `""` if out of range.
    pub fn piece(&self, id: usize) -> &str {
        self.pieces.get(id).map(String::as_str).unwrap_or("")
    }

    /// Punctuation characters that occur in the vocabulary (NeMo's `supported_punctuation`).
    pub fn punctuation(&self) -> &BTreeSet<char> {
        &self.punctuation
    }

    /// Whether `text` is a single punctuation mark of this vocabulary.
    pub fn is_punctuation(&self, text: &str) -> bool {
        let mut chars = text.chars();
        matches!((chars.next(), chars.next()), (Some(c), None) if self.punctuation.contains(&c))
    }

    /// SentencePiece's decoding of a sequence of pieces: concatenated, `▁` as spaces, without
    /// the leading space of the first word. `<unk>` reads ` ⁇ `; other control pieces vanish.
    pub fn decode_pieces<'a>(&self, pieces: impl IntoIterator<Item = &'a str>) -> String {
        let mut text = String::new();
        for piece in pieces {
            match piece {
                "<unk>" => text.push_str(" \u{2047} "),
                p if is_control(p) => {}
                p => text.extend(p.chars().map(|c| if c == WORD_MARKER { ' ' } else { c })),
            }
        }
        match text.strip_prefix(' ') {
            Some(rest) => rest.to_string(),
            None => text,
        }
    }

    /// Text of a token sequence.
    pub fn decode(&self, ids: &[usize]) -> String {
        self.decode_pieces(ids.iter().map(|&id| self.piece(id)))
    }

    /// Text of a transcript: [`Self::decode`] without the space NeMo removes before punctuation.
    pub fn decode_text(&self, ids: &[usize]) -> String {
        let text = self.decode(ids);
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let before_punct = chars.peek().is_some_and(|n| self.punctuation.contains(n));
            if !(c.is_whitespace() && before_punct) {
                out.push(c);
            }
        }
        out
    }
}

/// Control pieces such as `<s>`, `</s>` and `<pad>`, which decode to nothing.
fn is_control(piece: &str) -> bool {
    piece.len() > 2 && piece.starts_with('<') && piece.ends_with('>')
}

/// Pieces NeMo leaves out when it collects the vocabulary's punctuation.
fn is_special(piece: &str) -> bool {
    (piece.starts_with('[') && piece.ends_with(']'))
        || (piece.starts_with('<') && piece.ends_with('>'))
        || piece.starts_with("##")
        || piece.starts_with(WORD_MARKER)
        || piece.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Tokenizer {
        let pieces = ["<unk>", "▁the", "▁cat", "s", ",", "▁sat", ".", "▁", "?"];
        Tokenizer::new(pieces.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn joins_pieces_into_words() {
        assert_eq!(tokenizer().decode(&[1, 2, 3, 5]), "the cats sat");
    }

    #[test]
    fn removes_the_space_before_punctuation() {
        let t = tokenizer();
        assert_eq!(t.decode(&[1, 2, 7, 4, 5, 6]), "the cat , sat.");
        assert_eq!(t.decode_text(&[1, 2, 7, 4, 5, 6]), "the cat, sat.");
    }

    #[test]
    fn collects_punctuation_from_plain_pieces_only() {
        assert_eq!(tokenizer().punctuation().iter().collect::<String>(), ",.?");
    }

    #[test]
    fn unknown_reads_as_sentencepiece_does() {
        assert_eq!(tokenizer().decode(&[1, 0, 2]), "the \u{2047}  cat");
    }
}
