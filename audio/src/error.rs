//! Why audio could not be read. Serializable, because the sandbox's child process reports its
//! errors to the parent over a pipe. Messages never contain paths: they reach API clients.

use serde::{Deserialize, Serialize};

/// The codecs we decode, as refusals list them.
const SUPPORTED_CODECS: &str =
    "PCM and ADPCM (WAV), FLAC, ALAC, MP3, AAC-LC in mono or stereo, Vorbis and Opus";

/// Why a file could not be probed or decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum AudioError {
    /// The file could not be read.
    #[error("cannot read the file: {0}")]
    Io(String),
    /// No demuxer recognised the data.
    #[error("unsupported or unrecognised audio format: {0}")]
    UnsupportedFormat(String),
    /// The container holds no audio track.
    #[error("the file has no audio track")]
    NoAudioTrack,
    /// The audio track uses a codec we don't decode, named for people.
    #[error(
        "the audio codec is {0}, which is not supported; supported: {supported}",
        supported = SUPPORTED_CODECS
    )]
    UnsupportedCodec(String),
    /// The stream's parameters are out of range (a sample rate of 0, 40 channels, ...).
    #[error("{0}")]
    Invalid(String),
    /// Reading or decoding the stream failed beyond a single corrupt packet.
    #[error("decoding failed: {0}")]
    Decode(String),
    /// The file decoded to no samples.
    #[error("the file contains no audio samples")]
    Empty,
    /// The resampler could not be built or run.
    #[error("resampling from {rate} Hz failed: {reason}")]
    Resample {
        /// Source rate.
        rate: u32,
        /// What went wrong.
        reason: String,
    },
    /// More audio than allowed, counted from the decoded samples (headers are not trusted).
    #[error("the audio is longer than the limit of {limit_secs:.0} s")]
    TooLong {
        /// The limit, seconds.
        limit_secs: f64,
    },
    /// Decoding ran past its wall-clock or CPU budget.
    #[error("decoding took longer than {secs} s")]
    TimedOut {
        /// The budget, seconds.
        secs: u64,
    },
    /// The decoding process died (a decoder panic, or the memory limit).
    #[error("the decoder failed on this file ({0})")]
    Crashed(String),
}

impl From<std::io::Error> for AudioError {
    fn from(err: std::io::Error) -> Self {
        Self::Io(err.kind().to_string())
    }
}
