//! Sortformer speaker diarization ("who spoke when") on candle: NVIDIA's
//! `SortformerEncLabelModel` (`nemo/collections/asr/models/sortformer_diar_models.py`), loaded
//! from its `.nemo` checkpoint.
//!
//! The model is Parakeet's FastConformer encoder, a linear projection, a post-LN Transformer
//! encoder and a sigmoid per speaker: for every 80 ms frame, the probability that each of up to
//! four speakers is talking, speakers numbered in order of first appearance. The offline v1
//! model (`nvidia/diar_sortformer_4spk-v1`) sees the whole recording at once (its attention
//! grows with the square of the length, so it is refused past [`MAX_OFFLINE_SECS`]); the
//! streaming models (`nvidia/diar_streaming_sortformer_4spk-v2`, `-v2.1`) run chunk by chunk
//! with a speaker cache ([`streaming`]), in memory bounded whatever the length.
//!
//! ```no_run
//! use warble_parakeet::sortformer::{PostProcessing, Sortformer};
//! use warble_parakeet::{LoadOptions, audio};
//!
//! let model = Sortformer::load("nvidia/diar_streaming_sortformer_4spk-v2.1", &LoadOptions::default())?;
//! let audio = audio::decode_file("meeting.flac".as_ref())?;
//! let diarization = model.diarize(&audio.samples)?;
//! for turn in diarization.segments(&PostProcessing::preset("callhome").unwrap()) {
//!     println!("speaker {} from {:.2} s to {:.2} s", turn.speaker, turn.start, turn.end);
//! }
//! # Ok::<(), warble_parakeet::Error>(())
//! ```

mod config;
mod postprocess;
mod streaming;
mod transformer;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder};

pub use config::{ModulesConfig, SortformerConfig, TransformerConfig};
pub use postprocess::{PostProcessing, SpeakerSegment};

use crate::checkpoint;
use crate::encoder::{AttentionWindow, ConformerEncoder};
use crate::error::{Error, Result};
use crate::mel::{MelConfig, MelFrontend};
use crate::model::LoadOptions;
use crate::nn::linear;
use streaming::StreamingState;
use transformer::TransformerEncoder;

/// Longest audio the offline (non-streaming) model takes, seconds: its full attention over
/// 10 minutes (7,500 frames) already needs about 2 GB per layer and head group.
pub const MAX_OFFLINE_SECS: f64 = 600.0;

/// A loaded Sortformer model.
#[derive(Debug)]
pub struct Sortformer {
    mel: MelFrontend,
    encoder: ConformerEncoder,
    encoder_proj: Linear,
    transformer: TransformerEncoder,
    first_hidden_to_hidden: Linear,
    single_hidden_to_spks: Linear,
    config: SortformerConfig,
    device: Device,
    /// Seconds per output frame.
    frame_secs: f64,
}

/// Frame-level speaker activity: what the model says before post-processing.
#[derive(Debug, Clone, PartialEq)]
pub struct Diarization {
    /// `frames x speakers` probabilities, row-major.
    pub probabilities: Vec<f32>,
    /// Speakers per frame (4 for the published models).
    pub speakers: usize,
    /// Seconds per frame (0.08).
    pub frame_secs: f64,
}

impl Diarization {
    /// Frames.
    pub fn frames(&self) -> usize {
        self.probabilities.len() / self.speakers.max(1)
    }

    /// The speakers' segments after `params`, ordered by start.
    pub fn segments(&self, params: &PostProcessing) -> Vec<SpeakerSegment> {
        let steps = (self.frame_secs / 0.01).round() as usize;
        postprocess::segments(&self.probabilities, self.speakers, steps, params)
    }
}

impl Sortformer {
    /// Loads `model`: a `.nemo` path (or a directory holding one), or a Hugging Face
    /// repository id such as `nvidia/diar_streaming_sortformer_4spk-v2.1`, on
    /// `options.device` (CPU, CUDA or Metal). Only f32 is supported.
    ///
    /// # Errors
    ///
    /// As [`crate::Parakeet::load`], and [`Error::Unsupported`] for a configuration this engine
    /// does not reproduce.
    pub fn load(model: &str, options: &LoadOptions) -> Result<Self> {
        if options.dtype != DType::F32 {
            return Err(Error::Dtype {
                spec: format!("{:?}", options.dtype),
                message: "Sortformer runs in f32 only".into(),
            });
        }
        let path = checkpoint::weights_file(&checkpoint::resolve(model)?)?;
        if let Some(expected) = options.sha256.as_deref() {
            checkpoint::verify_sha256(&path, expected)?;
        }
        let archive = checkpoint::read_archive(&path)?;
        let config = SortformerConfig::from_yaml(&archive.config)
            .map_err(|e| Error::Config(e.to_string()))?;
        let vb = checkpoint::take_once(archive.tensors, &options.device);
        Self::from_parts(config, vb, &options.device)
    }

    fn from_parts(config: SortformerConfig, vb: VarBuilder, device: &Device) -> Result<Self> {
        let mel = MelFrontend::new(&MelConfig {
            pad_to: 0,
            ..config.preprocessor.clone()
        })?;
        let modules = &config.sortformer_modules;
        check(&config, mel.n_mels())?;
        let encoder = ConformerEncoder::load(&config.encoder, None, vb.pp("encoder"))?;
        let m = vb.pp("sortformer_modules");
        let (fc, tf) = (modules.fc_d_model, modules.tf_d_model);
        let frame_secs = config.encoder.subsampling_factor as f64 * mel.hop_length() as f64
            / config.preprocessor.sample_rate as f64;
        Ok(Self {
            encoder_proj: linear(fc, tf, true, m.pp("encoder_proj"))?,
            first_hidden_to_hidden: linear(tf, tf, true, m.pp("first_hidden_to_hidden"))?,
            single_hidden_to_spks: linear(
                tf,
                modules.num_spks,
                true,
                m.pp("single_hidden_to_spks"),
            )?,
            transformer: TransformerEncoder::load(
                &config.transformer_encoder,
                vb.pp("transformer_encoder"),
            )?,
            encoder,
            mel,
            device: device.clone(),
            frame_secs,
            config,
        })
    }

    /// The checkpoint's configuration.
    pub fn config(&self) -> &SortformerConfig {
        &self.config
    }

    /// Whether this is a streaming model (speaker cache) rather than an offline one.
    pub fn is_streaming(&self) -> bool {
        self.config.streaming_mode
    }

    /// Speakers the model tells apart.
    pub fn speakers(&self) -> usize {
        self.config.sortformer_modules.num_spks
    }

    /// Sample rate the model expects (16 kHz).
    pub fn sample_rate(&self) -> u32 {
        self.config.preprocessor.sample_rate
    }

    /// Frame probabilities for mono `samples` at [`Self::sample_rate`]: with the speaker
    /// cache for a streaming model, in one pass for an offline one (as NeMo's `forward`).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`] for audio longer than [`MAX_OFFLINE_SECS`] on an offline model;
    /// tensor errors from the device.
    pub fn diarize(&self, samples: &[f32]) -> Result<Diarization> {
        self.diarize_with(samples, |_| {})
    }

    /// [`Self::diarize`], calling `progress` with the share of the audio done (0 to 1) after
    /// each streaming step.
    pub fn diarize_with(&self, samples: &[f32], progress: impl FnMut(f64)) -> Result<Diarization> {
        let probabilities = if self.is_streaming() {
            self.forward_streaming(samples, progress)?
        } else {
            self.forward_offline(samples)?
        };
        Ok(Diarization {
            probabilities,
            speakers: self.speakers(),
            frame_secs: self.frame_secs,
        })
    }

    /// Log-mel features of `samples`, `(1, n_mels, valid frames)`.
    pub fn features(&self, samples: &[f32]) -> Result<Tensor> {
        let (mel, valid) = self.mel.forward(samples, &self.device)?;
        Ok(mel.narrow(2, 0, valid)?)
    }

    /// The offline pass (`frontend_encoder` + `forward_infer`): the audio scaled to a peak
    /// of one, as NeMo's `process_signal` does outside streaming mode.
    fn forward_offline(&self, samples: &[f32]) -> Result<Vec<f32>> {
        let secs = samples.len() as f64 / f64::from(self.sample_rate());
        if secs > MAX_OFFLINE_SECS {
            return Err(Error::Unsupported(format!(
                "{secs:.0} s of audio on an offline Sortformer (at most {MAX_OFFLINE_SECS:.0} s; \
                 use a streaming model such as nvidia/diar_streaming_sortformer_4spk-v2.1)"
            )));
        }
        // NeMo takes the signed maximum, not the peak magnitude.
        let max = samples.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let scale = 1.0 / (max + self.config.eps as f32);
        let scaled: Vec<f32> = samples.iter().map(|s| s * scale).collect();
        let mel = self.features(&scaled)?;
        let (x, lengths) = self.encoder.pre_encode(&mel, &[mel.dim(2)?])?;
        self.head(&x, lengths[0])
    }

    /// Conformer layers, projection, Transformer and sigmoid over `rows` pre-encoded frames
    /// `(1, rows, d_model)`: `rows x speakers` probabilities.
    fn head(&self, pre_encoded: &Tensor, rows: usize) -> Result<Vec<f32>> {
        let x = self
            .encoder
            .forward_pre_encoded(pre_encoded, &[rows], AttentionWindow::Full)?;
        let x = self.encoder_proj.forward(&x)?;
        let x = self.transformer.forward(&x, &[rows])?;
        let x = self.first_hidden_to_hidden.forward(&x.relu()?)?;
        let probs = candle_nn::ops::sigmoid(&self.single_hidden_to_spks.forward(&x.relu()?)?)?;
        Ok(probs.squeeze(0)?.flatten_all()?.to_vec1()?)
    }

    /// The streaming pass (`forward_streaming`): mel features of the whole recording, cut
    /// into chunks of `chunk_len` encoder frames with their context, each run after the
    /// speaker cache and FIFO.
    fn forward_streaming(
        &self,
        samples: &[f32],
        mut progress: impl FnMut(f64),
    ) -> Result<Vec<f32>> {
        let cfg = &self.config.sortformer_modules;
        let factor = cfg.subsampling_factor;
        let mel = self.features(samples)?;
        let frames = mel.dim(2)?;
        let dim = cfg.fc_d_model;
        let mut state = StreamingState::new(dim, cfg.num_spks);
        let mut probabilities = Vec::new();
        let mut start = 0;
        while start < frames {
            let left = (cfg.chunk_left_context * factor).min(start);
            let end = (start + cfg.chunk_len * factor).min(frames);
            let right = (cfg.chunk_right_context * factor).min(frames - end);
            let width = end + right - (start - left);
            let piece = mel.narrow(2, start - left, width)?;
            let (chunk, lengths) = self.encoder.pre_encode(&piece, &[width])?;
            let chunk = chunk.narrow(1, 0, lengths[0])?;
            let context = state.context();
            let rows = context.len() / dim + lengths[0];
            let x = if context.is_empty() {
                chunk.clone()
            } else {
                let context = Tensor::from_vec(context, (1, rows - lengths[0], dim), &self.device)?;
                Tensor::cat(&[&context, &chunk], 1)?
            };
            let preds = self.head(&x, rows)?;
            let chunk_embs = chunk.squeeze(0)?.flatten_all()?.to_vec1::<f32>()?;
            let lc = (left as f64 / factor as f64).round() as usize;
            let rc = right.div_ceil(factor);
            probabilities.extend(state.update(cfg, &chunk_embs, lc, rc, &preds));
            start = end;
            progress(end as f64 / frames as f64);
        }
        Ok(probabilities)
    }
}

/// Refuses configurations whose behaviour this engine does not reproduce.
fn check(config: &SortformerConfig, n_mels: usize) -> Result<()> {
    let m = &config.sortformer_modules;
    if config.encoder.feat_in != n_mels {
        return Err(Error::Config(format!(
            "encoder expects {} features, preprocessor makes {n_mels}",
            config.encoder.feat_in
        )));
    }
    if m.fc_d_model != config.encoder.d_model
        || m.tf_d_model != config.transformer_encoder.hidden_size
    {
        return Err(Error::Config(format!(
            "sortformer_modules widths {}/{} do not match the encoder ({}) and transformer ({})",
            m.fc_d_model,
            m.tf_d_model,
            config.encoder.d_model,
            config.transformer_encoder.hidden_size
        )));
    }
    if m.subsampling_factor != config.encoder.subsampling_factor {
        return Err(Error::Config(
            "sortformer_modules.subsampling_factor differs from the encoder's".into(),
        ));
    }
    if m.num_spks == 0
        || m.chunk_len == 0
        || m.spkcache_len < (1 + m.spkcache_sil_frames_per_spk) * m.num_spks
    {
        return Err(Error::Config(format!(
            "streaming parameters out of range: num_spks {}, chunk_len {}, spkcache_len {} (at least \
             (1 + spkcache_sil_frames_per_spk) * num_spks)",
            m.num_spks, m.chunk_len, m.spkcache_len
        )));
    }
    Ok(())
}
