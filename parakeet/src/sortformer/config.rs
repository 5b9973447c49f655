//! The configuration of a Sortformer checkpoint, read from its `model_config.yaml`
//! (NeMo's `SortformerEncLabelModel`; see NeMo's
//! `examples/speaker_tasks/diarization/conf/neural_diarizer/*sortformer*.yaml`).

use serde::Deserialize;

use crate::config::EncoderConfig;
use crate::mel::MelConfig;

/// The parts of a Sortformer config that inference needs; training sections are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct SortformerConfig {
    /// The audio frontend (`AudioToMelSpectrogramPreprocessor`).
    pub preprocessor: MelConfig,
    /// The FastConformer encoder (`ConformerEncoder`), the same block as Parakeet's.
    pub encoder: EncoderConfig,
    /// Projection, output head and streaming settings (`SortformerModules`).
    pub sortformer_modules: ModulesConfig,
    /// The Transformer encoder after the projection (`TransformerEncoder`).
    pub transformer_encoder: TransformerConfig,
    /// Whether the model runs with the speaker cache (the v2 and v2.1 streaming models).
    #[serde(default)]
    pub streaming_mode: bool,
    /// Added to the peak before offline inference scales the audio by its inverse
    /// (`SortformerEncLabelModel.eps`).
    #[serde(default = "default_eps")]
    pub eps: f64,
}

/// `sortformer_modules`: NeMo's `SortformerModules` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct ModulesConfig {
    /// Speakers the model tells apart (4 for every published Sortformer).
    #[serde(default = "default_speakers")]
    pub num_spks: usize,
    /// Width of the FastConformer's output (`encoder.d_model`).
    pub fc_d_model: usize,
    /// Width of the Transformer encoder.
    pub tf_d_model: usize,
    /// Encoder frames the speaker cache keeps.
    #[serde(default = "default_188")]
    pub spkcache_len: usize,
    /// Encoder frames the FIFO queue keeps between the cache and the new chunk.
    #[serde(default)]
    pub fifo_len: usize,
    /// Encoder frames of new audio per streaming step.
    #[serde(default = "default_188")]
    pub chunk_len: usize,
    /// Frames moved from the FIFO to the cache at once.
    #[serde(default = "default_188")]
    pub spkcache_update_period: usize,
    /// Encoder frames of context before each chunk.
    #[serde(default = "default_one")]
    pub chunk_left_context: usize,
    /// Encoder frames of context after each chunk.
    #[serde(default = "default_one")]
    pub chunk_right_context: usize,
    /// Silence frames the cache keeps per speaker.
    #[serde(default = "default_three")]
    pub spkcache_sil_frames_per_spk: usize,
    /// Probabilities are clamped to at least this before frames are scored for the cache.
    #[serde(default = "default_pred_score_threshold")]
    pub pred_score_threshold: f64,
    /// Bonus of frames new to the cache when it is compressed.
    #[serde(default = "default_boost_latest")]
    pub scores_boost_latest: f64,
    /// A frame whose speaker probabilities sum below this counts as silence.
    #[serde(default = "default_sil_threshold")]
    pub sil_threshold: f64,
    /// Share of each speaker's cache places boosted twice.
    #[serde(default = "default_strong_boost")]
    pub strong_boost_rate: f64,
    /// Share of each speaker's cache places boosted once.
    #[serde(default = "default_weak_boost")]
    pub weak_boost_rate: f64,
    /// Share of each speaker's cache places that must score positive before that speaker's
    /// overlapped frames are left out of the cache.
    #[serde(default = "default_min_pos")]
    pub min_pos_scores_rate: f64,
    /// Encoder frames per mel frame.
    #[serde(default = "default_subsampling")]
    pub subsampling_factor: usize,
}

/// `transformer_encoder`: NeMo's `TransformerEncoder` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct TransformerConfig {
    /// Number of blocks.
    pub num_layers: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Feed-forward width.
    pub inner_size: usize,
    /// Attention heads.
    #[serde(default = "default_one")]
    pub num_attention_heads: usize,
    /// `relu` (every Sortformer) or `gelu`.
    #[serde(default = "default_relu")]
    pub hidden_act: String,
    /// Layer norm before each sub-layer instead of after; Sortformer is post-LN.
    #[serde(default)]
    pub pre_ln: bool,
    /// With `pre_ln`, a final layer norm.
    #[serde(default = "default_true")]
    pub pre_ln_final_layer_norm: bool,
    /// Causal masking; Sortformer attends both ways.
    #[serde(default)]
    pub mask_future: bool,
}

impl SortformerConfig {
    /// Parses a NeMo `model_config.yaml`.
    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(text)
    }
}

fn default_eps() -> f64 {
    1e-3
}
fn default_speakers() -> usize {
    4
}
fn default_188() -> usize {
    188
}
fn default_one() -> usize {
    1
}
fn default_three() -> usize {
    3
}
fn default_pred_score_threshold() -> f64 {
    0.25
}
fn default_boost_latest() -> f64 {
    0.05
}
fn default_sil_threshold() -> f64 {
    0.2
}
fn default_strong_boost() -> f64 {
    0.75
}
fn default_weak_boost() -> f64 {
    1.5
}
fn default_min_pos() -> f64 {
    0.5
}
fn default_subsampling() -> usize {
    8
}
fn default_relu() -> String {
    "relu".into()
}
fn default_true() -> bool {
    true
}
