//! Which model to load, where: the options `worker transcribe` and `worker run` share.

use anyhow::Context;
use warble_parakeet::checkpoint::ChecksumCache;
use warble_parakeet::{LoadOptions, Parakeet, Quantization, parse_device, parse_dtype};

/// The model and the device it runs on.
#[derive(Debug, Clone, clap::Args)]
pub struct ModelArgs {
    /// Model: a `.nemo` file, an MLX directory, or a Hugging Face repository id.
    #[arg(long, env = "WARBLE_MODEL", default_value = warble_parakeet::DEFAULT_MODEL)]
    pub model: String,
    /// Expected SHA-256 of the model file; a mismatch refuses to load.
    #[arg(long, env = "WARBLE_MODEL_SHA256")]
    pub model_sha256: Option<String>,
    /// Where a verified WARBLE_MODEL_SHA256 is remembered so that an unchanged model file is
    /// hashed once, not at every start: a directory, or `off` to hash at every start. Default:
    /// `$XDG_CACHE_HOME/warble`, else `$HOME/.cache/warble`.
    #[arg(long, env = "WARBLE_CHECKSUM_CACHE")]
    pub checksum_cache: Option<String>,
    /// Device: cpu, cuda[:N] or metal[:N].
    #[arg(long, env = "WARBLE_DEVICE", default_value = "cpu")]
    pub device: String,
    /// Encoder precision: f32, f16 or bf16. The reduced ones are for CUDA and Metal (half the
    /// encoder's memory, tensor cores); see docs/precision.md for what they change.
    #[arg(long, env = "WARBLE_DTYPE", default_value = "f32")]
    pub dtype: String,
    /// Encoder weight quantization on the CPU: `none` (float, token-identical to NeMo) or
    /// `int8` (about twice as fast on CPUs with AVX512-VNNI, a quarter of the weight memory;
    /// see docs/precision.md for what it changes).
    #[arg(long, env = "WARBLE_QUANTIZATION", default_value = "none")]
    pub quantization: String,
}

impl ModelArgs {
    /// The checksum cache `--checksum-cache` names.
    fn checksum_cache(&self) -> Option<ChecksumCache> {
        match self.checksum_cache.as_deref().map(str::trim) {
            None | Some("") => ChecksumCache::user_default(),
            Some("off") => None,
            Some(dir) => Some(ChecksumCache::new(dir)),
        }
    }

    /// Loads the model onto the device (blocking; seconds for the large models).
    pub fn load(&self) -> anyhow::Result<Parakeet> {
        let options = LoadOptions {
            device: parse_device(&self.device)?,
            sha256: self.model_sha256.clone(),
            checksum_cache: self.checksum_cache(),
            dtype: parse_dtype(&self.dtype)?,
            quantization: Quantization::parse(&self.quantization)
                .map_err(anyhow::Error::msg)
                .context("WARBLE_QUANTIZATION, --quantization")?,
        };
        // Name the setting: a Hub error's remedies speak of "the model", and this says where it
        // is set.
        Parakeet::load(&self.model, &options)
            .with_context(|| format!("loading model {} (WARBLE_MODEL, --model)", self.model))
    }
}
