//! Audio in: every common format to the 16 kHz mono signal the models expect, safely.
//!
//! - [`sniff`]: which formats we take, by extension, MIME type and the file's first bytes.
//! - [`probe`]: what a file holds (codec, rate, channels, duration) without decoding it all.
//! - [`decode`]: the whole file to 16 kHz mono, streamed, within [`Limits`].
//! - [`sandbox`]: probing and decoding in a child process with memory, CPU and wall-clock
//!   limits, so that a hostile file (a decoder panic, a huge allocation, an endless loop)
//!   fails its request and never the API or the worker.

pub mod decode;
mod error;
mod opus;
pub mod probe;
mod resample;
pub mod sandbox;
pub mod sniff;

pub use decode::{Audio, Limits, decode_bytes, decode_file};
pub use error::AudioError;
pub use probe::Probe;
pub use sandbox::Sandbox;

/// The sample rate of every Parakeet model, in Hz.
pub const SAMPLE_RATE: u32 = 16_000;

/// Sample rates we accept, in Hz: telephone audio to studio masters.
pub const RATES: std::ops::RangeInclusive<u32> = 8_000..=192_000;

/// Most channels we accept (7.1).
pub const MAX_CHANNELS: usize = 8;

/// Checks a stream's rate and channel count against [`RATES`] and [`MAX_CHANNELS`].
pub fn check_format(rate: u32, channels: usize) -> Result<(), AudioError> {
    if !RATES.contains(&rate) {
        return Err(AudioError::Invalid(format!(
            "sample rate {rate} Hz is outside {} to {} Hz",
            RATES.start(),
            RATES.end()
        )));
    }
    if !(1..=MAX_CHANNELS).contains(&channels) {
        return Err(AudioError::Invalid(format!(
            "{channels} channels; 1 to {MAX_CHANNELS} are supported"
        )));
    }
    Ok(())
}
