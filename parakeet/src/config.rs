//! The model configuration, read from the checkpoint's own config.
//!
//! NeMo stores `model_config.yaml` inside a `.nemo` archive; the MLX conversions store the same
//! tree as `config.json`. Both deserialise into [`ModelConfig`]; unknown keys are ignored so that
//! training-only sections (datasets, optimiser, losses) never get in the way.

use serde::Deserialize;

use crate::mel::MelConfig;

/// The parts of a NeMo ASR model config that inference needs.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelConfig {
    /// The audio frontend (`AudioToMelSpectrogramPreprocessor`).
    pub preprocessor: MelConfig,
    /// The FastConformer encoder (`ConformerEncoder`).
    pub encoder: EncoderConfig,
    /// Prediction network for transducers, or the CTC head for CTC-only models.
    pub decoder: DecoderConfig,
    /// Joint network; present on transducer (TDT/RNNT) models only.
    #[serde(default)]
    pub joint: Option<JointConfig>,
    /// Decoding settings: model type, TDT durations and the greedy symbol cap.
    #[serde(default)]
    pub decoding: DecodingConfig,
    /// The auxiliary CTC head of hybrid models (`EncDecHybridRNNTCTCBPEModel`).
    #[serde(default)]
    pub aux_ctc: Option<AuxCtcConfig>,
    /// Defaults shared by sections; TDT models repeat their durations here.
    #[serde(default)]
    pub model_defaults: ModelDefaults,
    /// Top-level labels (the vocabulary) where a model keeps them.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
}

/// `encoder` section: NeMo's `ConformerEncoder` arguments.
#[derive(Debug, Clone, Deserialize)]
pub struct EncoderConfig {
    /// Number of mel features going in.
    pub feat_in: usize,
    /// Number of conformer layers.
    pub n_layers: usize,
    /// Model width.
    pub d_model: usize,
    /// Number of attention heads.
    #[serde(default = "default_heads")]
    pub n_heads: usize,
    /// Feed-forward width as a multiple of `d_model`.
    #[serde(default = "default_ff_expansion")]
    pub ff_expansion_factor: usize,
    /// Subsampling scheme; only `dw_striding` is supported.
    #[serde(default = "default_subsampling")]
    pub subsampling: String,
    /// Time reduction of the subsampling stage (a power of two).
    #[serde(default = "default_subsampling_factor")]
    pub subsampling_factor: usize,
    /// Channels of the subsampling convolutions; -1 means `d_model`.
    #[serde(default = "default_conv_channels")]
    pub subsampling_conv_channels: i64,
    /// Causal subsampling is a streaming feature we do not support.
    #[serde(default)]
    pub causal_downsampling: bool,
    /// `rel_pos` (full attention) or `rel_pos_local_attn`.
    #[serde(default = "default_attention")]
    pub self_attention_model: String,
    /// Left and right attention context in encoder frames; -1 means unlimited.
    #[serde(default = "default_context")]
    pub att_context_size: Vec<i64>,
    /// Only `regular` is supported (the chunked styles are for streaming models).
    #[serde(default = "default_context_style")]
    pub att_context_style: String,
    /// Scale the subsampled input by `sqrt(d_model)`.
    #[serde(default = "default_true")]
    pub xscaling: bool,
    /// Each layer has its own positional biases (`pos_bias_u`, `pos_bias_v`).
    #[serde(default = "default_true")]
    pub untie_biases: bool,
    /// Linear and convolution layers carry biases.
    #[serde(default = "default_true")]
    pub use_bias: bool,
    /// Kernel of the depthwise convolution in each conformer block.
    #[serde(default = "default_conv_kernel")]
    pub conv_kernel_size: usize,
    /// Normalisation after the depthwise convolution; only `batch_norm` is supported.
    #[serde(default = "default_conv_norm")]
    pub conv_norm_type: String,
    /// Output projection; -1 or absent means none.
    #[serde(default)]
    pub feat_out: Option<i64>,
}

/// `decoder` section: an `RNNTDecoder` (prediction network) or a `ConvASRDecoder` (CTC head).
#[derive(Debug, Clone, Deserialize)]
pub struct DecoderConfig {
    /// The NeMo class; tells the two kinds apart.
    #[serde(default, rename = "_target_", alias = "target")]
    pub target: Option<String>,
    /// Prediction network sizes (transducers).
    #[serde(default)]
    pub prednet: Option<PredNetConfig>,
    /// Vocabulary size without blank (transducers).
    #[serde(default)]
    pub vocab_size: Option<usize>,
    /// The blank id is used as the padding index of the embedding.
    #[serde(default = "default_true")]
    pub blank_as_pad: bool,
    /// Input width of the CTC head.
    #[serde(default)]
    pub feat_in: Option<usize>,
    /// Number of classes of the CTC head without blank.
    #[serde(default)]
    pub num_classes: Option<i64>,
    /// Vocabulary of the CTC head.
    #[serde(default)]
    pub vocabulary: Option<Vec<String>>,
}

impl DecoderConfig {
    /// Whether this section describes a CTC head rather than a prediction network.
    pub fn is_ctc(&self) -> bool {
        self.prednet.is_none()
            && (self.num_classes.is_some()
                || self
                    .target
                    .as_deref()
                    .is_some_and(|t| t.ends_with("ConvASRDecoder")))
    }
}

/// `decoder.prednet`: the LSTM prediction network.
#[derive(Debug, Clone, Deserialize)]
pub struct PredNetConfig {
    /// Embedding and LSTM width.
    pub pred_hidden: usize,
    /// Number of stacked LSTM layers.
    #[serde(default = "default_one")]
    pub pred_rnn_layers: usize,
}

/// `joint` section: NeMo's `RNNTJoint`.
#[derive(Debug, Clone, Deserialize)]
pub struct JointConfig {
    /// Sizes of the joint network.
    pub jointnet: JointNetConfig,
    /// Vocabulary size without blank.
    pub num_classes: usize,
    /// Extra outputs after the blank: the TDT duration logits.
    #[serde(default)]
    pub num_extra_outputs: usize,
    /// The SentencePiece pieces, in id order.
    #[serde(default)]
    pub vocabulary: Option<Vec<String>>,
}

/// `joint.jointnet`.
#[derive(Debug, Clone, Deserialize)]
pub struct JointNetConfig {
    /// Hidden width of the joint.
    pub joint_hidden: usize,
    /// Activation between the projections and the output layer.
    #[serde(default = "default_activation")]
    pub activation: String,
}

/// `decoding` section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DecodingConfig {
    /// `tdt` for Token-and-Duration Transducers, otherwise plain RNNT.
    #[serde(default)]
    pub model_type: Option<String>,
    /// The TDT duration set, in the order of the duration logits.
    #[serde(default)]
    pub durations: Option<Vec<usize>>,
    /// Greedy decoding settings.
    #[serde(default)]
    pub greedy: GreedyConfig,
}

/// `decoding.greedy`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct GreedyConfig {
    /// Cap on symbols emitted on one frame.
    #[serde(default)]
    pub max_symbols: Option<usize>,
}

/// `model_defaults` section.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ModelDefaults {
    /// TDT durations as the training recipes declare them.
    #[serde(default)]
    pub tdt_durations: Option<Vec<usize>>,
}

/// `aux_ctc` section of hybrid models.
#[derive(Debug, Clone, Deserialize)]
pub struct AuxCtcConfig {
    /// The auxiliary `ConvASRDecoder`.
    pub decoder: DecoderConfig,
}

impl ModelConfig {
    /// Parses a NeMo `model_config.yaml`.
    pub fn from_yaml(text: &str) -> Result<Self, serde_yaml_ng::Error> {
        serde_yaml_ng::from_str(text)
    }

    /// Parses an MLX-style `config.json`.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// TDT durations when this is a TDT model, `None` for RNNT and CTC.
    pub fn tdt_durations(&self) -> Option<Vec<usize>> {
        let joint = self.joint.as_ref()?;
        if joint.num_extra_outputs == 0 {
            return None;
        }
        self.decoding
            .durations
            .clone()
            .or_else(|| self.model_defaults.tdt_durations.clone())
    }

    /// The greedy symbol cap; NeMo's default configs use 10.
    pub fn max_symbols(&self) -> usize {
        self.decoding.greedy.max_symbols.unwrap_or(10)
    }
}

fn default_heads() -> usize {
    4
}
fn default_ff_expansion() -> usize {
    4
}
fn default_subsampling() -> String {
    "dw_striding".into()
}
fn default_subsampling_factor() -> usize {
    8
}
fn default_conv_channels() -> i64 {
    -1
}
fn default_attention() -> String {
    "rel_pos".into()
}
fn default_context() -> Vec<i64> {
    vec![-1, -1]
}
fn default_context_style() -> String {
    "regular".into()
}
fn default_true() -> bool {
    true
}
fn default_conv_kernel() -> usize {
    31
}
fn default_conv_norm() -> String {
    "batch_norm".into()
}
fn default_one() -> usize {
    1
}
fn default_activation() -> String {
    "relu".into()
}
