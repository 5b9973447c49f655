//! The whole engine: audio samples in, timed transcript out.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::checkpoint::{self, Checkpoint};
use crate::config::ModelConfig;
use crate::decoder::transducer::TransducerShape;
use crate::decoder::{CtcHead, DecoderKind, Emission, Transducer};
use crate::encoder::{AttentionWindow, ConformerEncoder};
use crate::error::{Error, Result};
use crate::mel::{MelConfig, MelFrontend};
use crate::timestamps;
use crate::tokenizer::Tokenizer;
use crate::transcript::Transcript;

/// How to load a model.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Where the weights live and the work runs.
    pub device: Device,
    /// Refuse the model file unless its SHA-256 is this (hex).
    pub sha256: Option<String>,
    /// What the encoder's weights and activations are held in: [`DType::F32`] (the default,
    /// token-identical to NeMo), or [`DType::F16`] / [`DType::BF16`], which halve the encoder's
    /// memory and run on the tensor cores of CUDA GPUs and on Metal. Only the encoder changes:
    /// the mel frontend, the CTC head and the transducer (prediction network and joint) stay in
    /// f32, and the encoder's output is cast back to f32 before they see it.
    ///
    /// Neither keeps every token of f32 (`docs/precision.md`, measured by `tests/precision.rs`
    /// on every fixture model and recording: f16 changes about 1% of words, bf16 about 11%),
    /// so f32 stays the default. The reduced types are meant for GPUs. They also run on the
    /// CPU, where the measurement runs, but four to seven times slower than f32 there (candle
    /// widens bf16 matrix products to f32 and back, and the subsampling's fast CPU kernel is
    /// f32 only).
    /// Any other dtype is refused ([`Error::Dtype`]); see [`crate::check_dtype`] and
    /// [`crate::parse_dtype`].
    pub dtype: DType,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            sha256: None,
            dtype: DType::F32,
        }
    }
}

/// How to transcribe.
#[derive(Debug, Clone)]
pub struct TranscribeOptions {
    /// Which head decodes; `None` takes the model's main one.
    pub decoder: Option<DecoderKind>,
    /// Audio longer than this runs with local attention of [`Self::long_audio_window`] frames to
    /// each side, so memory grows linearly with length instead of quadratically; in a batch,
    /// each utterance is judged by its own length. `None` never switches. Models configured
    /// with local attention always use it.
    pub long_audio_secs: Option<f64>,
    /// Local attention reach for long audio (NeMo's model cards use 256).
    pub long_audio_window: usize,
    /// Start a new segment after a pause of at least this many seconds between words (segments
    /// always end after `.`, `?` and `!`).
    pub segment_pause_secs: Option<f64>,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self {
            decoder: None,
            long_audio_secs: Some(300.0),
            long_audio_window: 256,
            segment_pause_secs: Some(2.0),
        }
    }
}

/// A loaded Parakeet model.
#[derive(Debug)]
pub struct Parakeet {
    mel: MelFrontend,
    encoder: ConformerEncoder,
    transducer: Option<Transducer>,
    ctc: Option<CtcHead>,
    tokenizer: Tokenizer,
    device: Device,
    sample_rate: u32,
    /// Seconds per encoder frame: subsampling factor x hop.
    frame_secs: f64,
}

impl Parakeet {
    /// Loads `model` (a path or a Hugging Face repository id, see [`checkpoint::resolve`]).
    pub fn load(model: &str, options: &LoadOptions) -> Result<Self> {
        crate::device::check_dtype(options.dtype, &options.device)?;
        let path = checkpoint::resolve(model)?;
        let checkpoint = checkpoint::read(&path, options.sha256.as_deref())?;
        Self::from_checkpoint(checkpoint, &options.device, options.dtype)
    }

    /// Builds the model from a checkpoint already in memory, on `device`, with the encoder in
    /// `dtype` (see [`LoadOptions::dtype`]; everything else is f32).
    pub fn from_checkpoint(checkpoint: Checkpoint, device: &Device, dtype: DType) -> Result<Self> {
        crate::device::check_dtype(dtype, device)?;
        let (config, vb) = checkpoint.into_var_builder(device);
        // NeMo's `transcribe()` forces `pad_to = 0` whatever the config says; padding only adds
        // masked frames, so dropping it changes no result and saves work.
        let mel = MelFrontend::new(&MelConfig {
            pad_to: 0,
            ..config.preprocessor.clone()
        })?;
        if config.encoder.feat_in != mel.n_mels() {
            return Err(Error::Config(format!(
                "encoder expects {} features, preprocessor makes {}",
                config.encoder.feat_in,
                mel.n_mels()
            )));
        }
        let encoder = ConformerEncoder::load(&config.encoder, vb.pp("encoder").set_dtype(dtype))?;
        let tokenizer = Tokenizer::new(vocabulary(&config)?);
        let (transducer, ctc) = load_heads(&config, tokenizer.len(), &vb)?;
        let sample_rate = config.preprocessor.sample_rate;
        let frame_secs =
            config.encoder.subsampling_factor as f64 * mel.hop_length() as f64 / sample_rate as f64;
        Ok(Self {
            mel,
            encoder,
            transducer,
            ctc,
            tokenizer,
            device: device.clone(),
            sample_rate,
            frame_secs,
        })
    }

    /// The decoders this model has, main one first.
    pub fn decoders(&self) -> Vec<DecoderKind> {
        self.transducer
            .iter()
            .map(Transducer::kind)
            .chain(self.ctc.iter().map(|_| DecoderKind::Ctc))
            .collect()
    }

    /// Sample rate the model expects (16 kHz for every Parakeet).
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// What the encoder computes in ([`LoadOptions::dtype`]).
    pub fn dtype(&self) -> DType {
        self.encoder.dtype()
    }

    /// Log-mel features of one utterance, `(1, n_mels, frames)`, and the valid frame count.
    pub fn features(&self, samples: &[f32]) -> Result<(Tensor, usize)> {
        Ok(self.mel.forward(samples, &self.device)?)
    }

    /// Encodes a padded batch of features `(batch, n_mels, frames)` with `lengths` valid
    /// frames each, into `(batch, encoder_frames, d_model)` and valid encoder frames.
    pub fn encode(
        &self,
        mel: &Tensor,
        lengths: &[usize],
        window: AttentionWindow,
    ) -> Result<(Tensor, Vec<usize>)> {
        Ok(self.encoder.forward(mel, lengths, window)?)
    }

    /// The attention window used for `samples` samples of audio under `options`.
    pub fn window_for(&self, samples: usize, options: &TranscribeOptions) -> AttentionWindow {
        let configured = self.encoder.configured_window();
        let secs = samples as f64 / self.sample_rate as f64;
        match (configured, options.long_audio_secs) {
            (AttentionWindow::Full, Some(limit)) if secs > limit => {
                AttentionWindow::Local(options.long_audio_window)
            }
            _ => configured,
        }
    }

    /// Transcribes one utterance of 16 kHz mono samples.
    pub fn transcribe(&self, samples: &[f32], options: &TranscribeOptions) -> Result<Transcript> {
        let mut out = self.transcribe_batch(&[samples], options)?;
        Ok(out.remove(0))
    }

    /// Transcribes several utterances of 16 kHz mono samples; each result is what
    /// [`Self::transcribe`] gives for that utterance alone, in the order given.
    ///
    /// Each utterance gets the attention window its own length calls for
    /// ([`Self::window_for`]): a short one batched with audio past
    /// [`TranscribeOptions::long_audio_secs`] still runs with full attention. Utterances with
    /// the same window share one forward pass, padded to the longest of them, so a batch costs
    /// one pass per window among its items (at most two).
    pub fn transcribe_batch(
        &self,
        batch: &[&[f32]],
        options: &TranscribeOptions,
    ) -> Result<Vec<Transcript>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let kind = self.pick_decoder(options.decoder)?;
        let pause = options
            .segment_pause_secs
            .map(|s| (s / self.frame_secs).round() as usize);
        let mut groups: Vec<(AttentionWindow, Vec<usize>)> = Vec::new();
        for (i, samples) in batch.iter().enumerate() {
            let window = self.window_for(samples.len(), options);
            match groups.iter_mut().find(|(w, _)| *w == window) {
                Some((_, items)) => items.push(i),
                None => groups.push((window, vec![i])),
            }
        }
        let mut done = Vec::with_capacity(batch.len());
        for (window, items) in groups {
            let group: Vec<&[f32]> = items.iter().map(|&i| batch[i]).collect();
            let (mel, mel_lengths) = self.batch_features(&group)?;
            let (encoded, lengths) = self.encoder.forward(&mel, &mel_lengths, window)?;
            let emissions = self.decode(kind, &encoded, &lengths)?;
            for (i, e) in items.into_iter().zip(emissions) {
                done.push((i, self.assemble(e, kind, batch[i].len(), pause)));
            }
        }
        done.sort_by_key(|(i, _)| *i);
        Ok(done.into_iter().map(|(_, transcript)| transcript).collect())
    }

    fn pick_decoder(&self, requested: Option<DecoderKind>) -> Result<DecoderKind> {
        let available = self.decoders();
        match requested {
            None => Ok(available[0]),
            Some(kind) if available.contains(&kind) => Ok(kind),
            Some(kind) => Err(Error::NoSuchDecoder {
                requested: kind,
                available: available
                    .iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Features of every utterance, zero-padded to the longest: `(batch, n_mels, frames)`.
    fn batch_features(&self, batch: &[&[f32]]) -> Result<(Tensor, Vec<usize>)> {
        let mut mels = Vec::with_capacity(batch.len());
        let mut lengths = Vec::with_capacity(batch.len());
        for samples in batch {
            let (mel, valid) = self.features(samples)?;
            mels.push(mel);
            lengths.push(valid);
        }
        let frames = mels
            .iter()
            .map(|m| m.dim(2))
            .collect::<candle_core::Result<Vec<_>>>()?;
        let max = frames.iter().copied().max().unwrap_or(0);
        let padded = mels
            .iter()
            .zip(&frames)
            .map(|(m, &f)| m.pad_with_zeros(2, 0, max - f))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok((Tensor::cat(&padded, 0)?, lengths))
    }

    /// Runs the chosen head over encoder output; one emission list per batch item.
    pub fn decode(
        &self,
        kind: DecoderKind,
        encoded: &Tensor,
        lengths: &[usize],
    ) -> Result<Vec<Vec<Emission>>> {
        match (kind, &self.transducer, &self.ctc) {
            (DecoderKind::Ctc, _, Some(ctc)) => {
                let log_probs = ctc.log_probs(encoded)?;
                lengths
                    .iter()
                    .enumerate()
                    .map(|(b, &frames)| Ok(ctc.greedy(&log_probs.get(b)?, frames)?))
                    .collect()
            }
            (_, Some(transducer), _) => {
                let projected = transducer.project_encoder(encoded)?;
                Ok(projected
                    .iter()
                    .zip(lengths)
                    .map(|(p, &frames)| transducer.greedy(p, frames))
                    .collect())
            }
            _ => Err(Error::NoSuchDecoder {
                requested: kind,
                available: String::new(),
            }),
        }
    }

    /// Text, tokens, words and segments with times in seconds.
    fn assemble(
        &self,
        mut emissions: Vec<Emission>,
        kind: DecoderKind,
        samples: usize,
        pause: Option<usize>,
    ) -> Transcript {
        timestamps::refine_punctuation(&mut emissions, &self.tokenizer, kind);
        let words = timestamps::words(&emissions, &self.tokenizer);
        let segments = timestamps::segments(&words, pause);
        Transcript::new(
            &self.tokenizer,
            &emissions,
            &words,
            &segments,
            self.frame_secs,
            samples as f64 / self.sample_rate as f64,
        )
    }
}

/// The SentencePiece pieces in id order, from wherever this checkpoint keeps them.
fn vocabulary(config: &ModelConfig) -> Result<Vec<String>> {
    config
        .joint
        .as_ref()
        .and_then(|j| j.vocabulary.clone())
        .or_else(|| config.decoder.vocabulary.clone())
        .or_else(|| {
            config
                .aux_ctc
                .as_ref()
                .and_then(|a| a.decoder.vocabulary.clone())
        })
        .or_else(|| config.labels.clone())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            Error::Config("no vocabulary (joint.vocabulary, decoder.vocabulary or labels)".into())
        })
}

/// The transducer head (prediction + joint) and/or the CTC head the config describes.
fn load_heads(
    config: &ModelConfig,
    vocab_size: usize,
    vb: &VarBuilder,
) -> Result<(Option<Transducer>, Option<CtcHead>)> {
    let d_model = config.encoder.d_model;
    let check_vocab = |n: usize, section: &str| {
        if n == vocab_size {
            Ok(())
        } else {
            Err(Error::Config(format!(
                "{section} has {n} classes but the vocabulary has {vocab_size} pieces"
            )))
        }
    };
    let ctc_head =
        |decoder: &crate::config::DecoderConfig, prefix: &str, section: &str| -> Result<CtcHead> {
            let classes = decoder
                .num_classes
                .filter(|&n| n > 0)
                .map(|n| n as usize)
                .unwrap_or(vocab_size);
            check_vocab(classes, section)?;
            let feat_in = decoder.feat_in.unwrap_or(d_model);
            Ok(CtcHead::load(feat_in, classes, vb.pp(prefix))?)
        };
    if config.decoder.is_ctc() {
        return Ok((None, Some(ctc_head(&config.decoder, "decoder", "decoder")?)));
    }
    let joint = config
        .joint
        .as_ref()
        .ok_or_else(|| Error::Config("transducer model without a joint section".into()))?;
    let prednet = config
        .decoder
        .prednet
        .as_ref()
        .ok_or_else(|| Error::Config("decoder has no prednet".into()))?;
    check_vocab(joint.num_classes, "joint")?;
    let durations = config.tdt_durations().unwrap_or_default();
    if durations.len() != joint.num_extra_outputs {
        return Err(Error::Config(format!(
            "joint has {} extra outputs but {} TDT durations are configured",
            joint.num_extra_outputs,
            durations.len()
        )));
    }
    if !config.decoder.blank_as_pad {
        return Err(Error::Unsupported(
            "a prediction network without blank_as_pad".into(),
        ));
    }
    let shape = TransducerShape {
        vocab_size,
        encoder_dim: d_model,
        pred_hidden: prednet.pred_hidden,
        pred_layers: prednet.pred_rnn_layers,
        joint_hidden: joint.jointnet.joint_hidden,
        activation: joint.jointnet.activation.clone(),
        durations,
        max_symbols: config.max_symbols(),
    };
    let transducer = Transducer::load(&shape, vb.pp("decoder"), vb.pp("joint"))?;
    let ctc = match &config.aux_ctc {
        Some(aux) => Some(ctc_head(&aux.decoder, "ctc_decoder", "aux_ctc.decoder")?),
        None => None,
    };
    Ok((Some(transducer), ctc))
}
