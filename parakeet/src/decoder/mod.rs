//! Decoding heads: the transducer (TDT or RNNT: prediction network, joint and greedy search) and
//! CTC, each turning encoder frames into tokens with frame positions.

mod ctc;
mod host;
mod prediction;
pub(crate) mod transducer;

pub use ctc::CtcHead;
pub use transducer::Transducer;

/// How to turn encoder frames into tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderKind {
    /// Token-and-Duration Transducer greedy search.
    Tdt,
    /// Plain RNN-Transducer greedy search.
    Rnnt,
    /// CTC greedy search (best label per frame, repeats merged, blanks dropped).
    Ctc,
}

impl DecoderKind {
    /// The name used on command lines and in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            DecoderKind::Tdt => "tdt",
            DecoderKind::Rnnt => "rnnt",
            DecoderKind::Ctc => "ctc",
        }
    }
}

impl std::fmt::Display for DecoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DecoderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tdt" => Ok(DecoderKind::Tdt),
            "rnnt" => Ok(DecoderKind::Rnnt),
            "ctc" => Ok(DecoderKind::Ctc),
            other => Err(format!(
                "unknown decoder {other:?}: expected tdt, rnnt or ctc"
            )),
        }
    }
}

/// One emitted token and the encoder frames it spans, NeMo's `start_offset` / `end_offset`:
/// `[frame, frame + duration)` for TDT, `[frame, frame + 1)` for RNNT, and NeMo's shifted
/// convention for CTC (see [`CtcHead::greedy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emission {
    /// Token id (never the blank).
    pub token: usize,
    /// First encoder frame.
    pub start: usize,
    /// One past the last encoder frame.
    pub end: usize,
}
