//! Parakeet speech recognition on candle.
//!
//! An implementation of NVIDIA's Parakeet models (FastConformer encoder with TDT, RNNT and CTC
//! heads) that reproduces NeMo's numbers: the same log-mel features, the same encoder output to
//! float tolerance, and the same tokens, words and timestamps from greedy decoding.
//!
//! ```no_run
//! use warble_parakeet::{LoadOptions, Parakeet, TranscribeOptions, audio};
//!
//! let model = Parakeet::load("nvidia/parakeet-tdt-0.6b-v2", &LoadOptions::default())?;
//! let audio = audio::decode_file("meeting.flac".as_ref())?;
//! let transcript = model.transcribe(&audio.samples, &TranscribeOptions::default())?;
//! println!("{}", transcript.text);
//! # Ok::<(), warble_parakeet::Error>(())
//! ```

pub use warble_audio as audio;
pub mod batching;
pub mod checkpoint;
pub mod chunk;
pub mod config;
pub mod decoder;
pub mod device;
pub mod encoder;
mod error;
pub mod hub;
pub mod mel;
pub mod memory;
mod mlx;
mod model;
mod nn;
pub mod service;
pub mod sortformer;
pub mod timestamps;
pub mod tokenizer;
mod transcript;
mod weights;

pub use checkpoint::DEFAULT_MODEL;
pub use chunk::Chunking;
pub use decoder::DecoderKind;
pub use device::{check_dtype, parse_device, parse_dtype};
pub use error::{Error, Result};
pub use model::{DEFAULT_BATCH_SECS, LoadOptions, Parakeet, TranscribeOptions, WARM_UP_SECS};
pub use nn::Quantization;
pub use transcript::{TimedSegment, TimedToken, TimedWord, Transcript};
