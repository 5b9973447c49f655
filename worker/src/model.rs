//! Which model to load, where: the options `worker transcribe` and `worker run` share.

use anyhow::Context;
use warble_parakeet::{LoadOptions, Parakeet, parse_device, parse_dtype};

/// The model and the device it runs on.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model: a `.nemo` file, an MLX directory, or a Hugging Face repository id.
    #[arg(long, env = "WARBLE_MODEL", default_value = warble_parakeet::DEFAULT_MODEL)]
    pub model: String,
    /// Expected SHA-256 of the model file; a mismatch refuses to load.
    #[arg(long, env = "WARBLE_MODEL_SHA256")]
    pub model_sha256: Option<String>,
    /// Device: cpu, cuda[:N] or metal[:N].
    #[arg(long, env = "WARBLE_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Encoder precision: f32, f16 or bf16. The reduced ones are for CUDA and Metal (half the
    /// encoder's memory, tensor cores); see docs/precision.md for what they change.
    #[arg(long, env = "WARBLE_DTYPE", default_value = "f32")]
    pub dtype: String,
}

impl ModelArgs {
    /// Loads the model onto the device (blocking; seconds for the large models).
    pub fn load(&self) -> anyhow::Result<Parakeet> {
        let options = LoadOptions {
            device: parse_device(&self.device)?,
            sha256: self.model_sha256.clone(),
            dtype: parse_dtype(&self.dtype)?,
        };
        // Name the setting: a Hub error's remedies speak of "the model", and this says where it
        // is set.
        Parakeet::load(&self.model, &options)
            .with_context(|| format!("loading model {} (WARBLE_MODEL, --model)", self.model))
    }
}
