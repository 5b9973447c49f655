//! The whole engine: audio samples in, timed transcript out.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::batching::{self, Candidate};
use crate::checkpoint::{self, Checkpoint};
use crate::chunk::{ChunkPlan, Chunking};
use crate::config::ModelConfig;
use crate::decoder::transducer::TransducerShape;
use crate::decoder::{CtcHead, DecoderKind, Emission, Transducer};
use crate::encoder::{AttentionWindow, ConformerEncoder};
use crate::error::{Error, Result};
use crate::mel::{MelConfig, MelFrontend};
use crate::nn::Quantization;
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
    /// Where a verified [`Self::sha256`] is remembered, so that an unchanged model file is
    /// hashed once rather than at every load; `None` hashes it every time. The default is the
    /// user's cache directory (`$XDG_CACHE_HOME/warble`, else `$HOME/.cache/warble`), where the
    /// file `verified-checksums.json` is written. Nothing is written without a pinned checksum.
    /// See [`checkpoint::ChecksumCache`] for what is recorded and why trusting it is sound.
    pub checksum_cache: Option<checkpoint::ChecksumCache>,
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
    /// Quantized weights for the encoder's dense layers, CPU only (with [`DType::F32`]):
    /// [`Quantization::Int8`] holds them as 8-bit blocks and runs the products on integer dot
    /// products, about twice as fast as f32 on a CPU with AVX512-VNNI and a quarter of the
    /// weight memory, at the accuracy measured in `docs/precision.md`. `None` (the default)
    /// keeps float weights, token-identical to NeMo.
    pub quantization: Option<Quantization>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            device: Device::Cpu,
            sha256: None,
            checksum_cache: checkpoint::ChecksumCache::user_default(),
            dtype: DType::F32,
            quantization: None,
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
    /// Audio longer than a chunk is transcribed in overlapping chunks joined at word
    /// boundaries ([`crate::chunk`]), so that a long recording batches like short files and
    /// its memory is that of one chunk. `None` transcribes it whole (with local attention
    /// past [`Self::long_audio_secs`]).
    pub chunking: Option<Chunking>,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        Self {
            decoder: None,
            long_audio_secs: Some(300.0),
            long_audio_window: 256,
            segment_pause_secs: Some(2.0),
            chunking: Some(Chunking::default()),
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
    ///
    /// The weights are read in place from the `.nemo` archive (as each layer takes them) or
    /// the safetensors file, each tensor straight into its own buffer
    /// ([`checkpoint::open_with`]): nothing is unpacked or written, and memory holds the
    /// weights once. Logs each stage's time at debug level.
    pub fn load(model: &str, options: &LoadOptions) -> Result<Self> {
        crate::device::check_dtype(options.dtype, &options.device)?;
        let started = std::time::Instant::now();
        let path = checkpoint::resolve(model)?;
        let checkpoint = checkpoint::open_with(
            &path,
            options.sha256.as_deref(),
            options.checksum_cache.as_ref(),
        )?;
        let read_ms = started.elapsed().as_millis() as u64;
        let built = Self::from_checkpoint(checkpoint, options)?;
        tracing::debug!(
            model,
            read_ms,
            build_ms = started.elapsed().as_millis() as u64 - read_ms,
            "model loaded"
        );
        Ok(built)
    }

    /// Builds the model from a checkpoint already in memory, on `options.device`, with the
    /// encoder in `options.dtype` and `options.quantization` (see [`LoadOptions`]; everything
    /// else is f32). `options.sha256` is for reading the checkpoint and is not looked at here.
    ///
    /// # Errors
    ///
    /// [`Error::Dtype`] for a dtype the device cannot run; [`Error::Unsupported`] for
    /// quantization off the CPU or with a reduced dtype.
    pub fn from_checkpoint(checkpoint: Checkpoint, options: &LoadOptions) -> Result<Self> {
        let (device, dtype) = (&options.device, options.dtype);
        crate::device::check_dtype(dtype, device)?;
        if options.quantization.is_some() && (!device.is_cpu() || dtype != DType::F32) {
            return Err(Error::Unsupported(
                "int8 quantization runs on the CPU with dtype f32 only".into(),
            ));
        }
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
        let encoder = ConformerEncoder::load(
            &config.encoder,
            options.quantization,
            vb.pp("encoder").set_dtype(dtype),
        )?;
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

    /// Seconds of audio [`Self::warm_up`] runs under `options`: [`WARM_UP_SECS`], or one
    /// chunk when chunks are shorter.
    pub fn warm_up_secs(options: &TranscribeOptions) -> f64 {
        options
            .chunking
            .map_or(WARM_UP_SECS, |c| c.secs.min(WARM_UP_SECS))
    }

    /// `secs` seconds of synthetic audio for warming up: quiet deterministic noise, so that
    /// every stage, the decoder's search included, does real work.
    pub fn warm_up_audio(&self, secs: f64) -> Vec<f32> {
        let samples = (secs.max(0.0) * self.sample_rate as f64) as usize;
        let mut state = 0x2545_f491_u32;
        (0..samples)
            .map(|_| {
                // xorshift32: cheap, the same every time.
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32 - 0.5) * 0.02
            })
            .collect()
    }

    /// Transcribes [`Self::warm_up_secs`] of [`Self::warm_up_audio`] once and throws the
    /// result away.
    ///
    /// A fresh process pays on its first transcription for what later ones find ready: the
    /// rayon and gemm thread pools, the allocator's arenas grown to the size of a chunk's
    /// activations (with [`crate::memory::retain_freed_memory`] they are kept from then on),
    /// the weights' pages faulted in, and on a GPU the kernels loaded. A service calls this
    /// once before it takes work, through the path its work takes (the allocator's arenas are
    /// per thread): the worker sends [`Self::warm_up_audio`] through its
    /// [`crate::service::ModelService`].
    pub fn warm_up(&self, options: &TranscribeOptions) -> Result<()> {
        self.transcribe(&self.warm_up_audio(Self::warm_up_secs(options)), options)
            .map(drop)
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
    /// Long utterances are cut into chunks ([`TranscribeOptions::chunking`]). Each chunk gets
    /// the attention window its own length calls for ([`Self::window_for`]): a short one
    /// batched with audio past [`TranscribeOptions::long_audio_secs`] still runs with full
    /// attention. Chunks share encoder passes of at most [`DEFAULT_BATCH_SECS`] of padded
    /// audio, nearest in length together ([`crate::batching`]).
    pub fn transcribe_batch(
        &self,
        batch: &[&[f32]],
        options: &TranscribeOptions,
    ) -> Result<Vec<Transcript>> {
        let prepared = batch
            .iter()
            .map(|samples| self.prepare(samples, options))
            .collect::<Result<Vec<_>>>()?;
        let mut waiting: Vec<(usize, usize)> = prepared
            .iter()
            .enumerate()
            .flat_map(|(f, p)| (0..p.chunks.len()).map(move |c| (f, c)))
            .collect();
        let mut results: Vec<Vec<Option<Vec<Emission>>>> = prepared
            .iter()
            .map(|p| vec![None; p.chunks.len()])
            .collect();
        let budget = self.frames_for_secs(DEFAULT_BATCH_SECS);
        while !waiting.is_empty() {
            let candidates: Vec<Candidate> = waiting
                .iter()
                .map(|&(f, c)| prepared[f].chunks[c].candidate())
                .collect();
            let pass = batching::next_pass(&candidates, budget);
            let items: Vec<(&ChunkFeatures, DecoderKind)> = pass
                .iter()
                .map(|&k| {
                    let (f, c) = waiting[k];
                    (&prepared[f].chunks[c], prepared[f].decoder)
                })
                .collect();
            for (&k, emissions) in pass.iter().zip(self.run_pass(&items)?) {
                let (f, c) = waiting[k];
                results[f][c] = Some(emissions);
            }
            for &k in pass.iter().rev() {
                waiting.remove(k);
            }
        }
        Ok(prepared
            .iter()
            .zip(results)
            .map(|(p, chunks)| {
                self.finish(
                    p,
                    chunks
                        .into_iter()
                        .map(|c| c.expect("every chunk ran"))
                        .collect(),
                )
            })
            .collect())
    }

    /// Plans one utterance's chunks and computes their features: everything before the
    /// device. Fails when the requested decoder is not in the model.
    pub(crate) fn prepare(&self, samples: &[f32], options: &TranscribeOptions) -> Result<Prepared> {
        let decoder = self.pick_decoder(options.decoder)?;
        let plan = ChunkPlan::new(
            samples.len(),
            options.chunking,
            self.sample_rate,
            self.frame_samples(),
        );
        let chunks = (0..plan.len())
            .map(|i| {
                let range = plan.samples(i, samples.len());
                let chunk = &samples[range.clone()];
                let (features, frames, valid) = self.mel.compute(chunk);
                ChunkFeatures {
                    features,
                    frames,
                    valid,
                    window: self.window_for(chunk.len(), options),
                    secs: range.len() as f64 / self.sample_rate as f64,
                }
            })
            .collect();
        Ok(Prepared {
            decoder,
            pause: options
                .segment_pause_secs
                .map(|s| (s / self.frame_secs).round() as usize),
            samples: samples.len(),
            plan,
            chunks,
        })
    }

    /// One encoder pass over `items` (all with the same attention window), padded to the
    /// longest, then each item's head: the emissions of each, in frames from its start.
    pub(crate) fn run_pass(
        &self,
        items: &[(&ChunkFeatures, DecoderKind)],
    ) -> Result<Vec<Vec<Emission>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let chunks: Vec<&ChunkFeatures> = items.iter().map(|(c, _)| *c).collect();
        let (encoded, lengths) = self.encode_chunks(&chunks)?;
        let mut out: Vec<Option<Vec<Emission>>> = vec![None; items.len()];
        for kind in self.decoders() {
            let members: Vec<usize> = (0..items.len()).filter(|&i| items[i].1 == kind).collect();
            if members.is_empty() {
                continue;
            }
            let encoded = if members.len() == items.len() {
                encoded.clone()
            } else {
                let index = Tensor::from_vec(
                    members.iter().map(|&i| i as u32).collect::<Vec<_>>(),
                    members.len(),
                    &self.device,
                )?;
                encoded.index_select(&index, 0)?
            };
            let member_lengths: Vec<usize> = members.iter().map(|&i| lengths[i]).collect();
            for (i, emissions) in
                members
                    .into_iter()
                    .zip(self.decode(kind, &encoded, &member_lengths)?)
            {
                out[i] = Some(emissions);
            }
        }
        Ok(out
            .into_iter()
            .map(|e| e.expect("every item's decoder is one of the model's"))
            .collect())
    }

    /// The encoder over `chunks` (all with the first one's attention window), zero-padded to
    /// the longest: `(batch, encoder_frames, d_model)` and each chunk's valid encoder frames.
    fn encode_chunks(&self, chunks: &[&ChunkFeatures]) -> Result<(Tensor, Vec<usize>)> {
        let n_mels = self.mel.n_mels();
        let longest = chunks.iter().map(|c| c.frames).max().unwrap_or(0).max(1);
        let mut padded = vec![0.0f32; chunks.len() * n_mels * longest];
        for (chunk, out) in chunks.iter().zip(padded.chunks_exact_mut(n_mels * longest)) {
            for (row, out) in chunk
                .features
                .chunks_exact(chunk.frames.max(1))
                .zip(out.chunks_exact_mut(longest))
            {
                out[..row.len()].copy_from_slice(row);
            }
        }
        // One host-to-device copy for the whole pass.
        let mel = Tensor::from_vec(padded, (chunks.len(), n_mels, longest), &self.device)?;
        let lengths: Vec<usize> = chunks.iter().map(|c| c.valid).collect();
        Ok(self.encoder.forward(&mel, &lengths, chunks[0].window)?)
    }

    /// Joins a prepared utterance's chunk emissions into its transcript.
    pub(crate) fn finish(&self, prepared: &Prepared, chunks: Vec<Vec<Emission>>) -> Transcript {
        let emissions = prepared.plan.merge(chunks, &self.tokenizer);
        self.assemble(
            emissions,
            prepared.decoder,
            prepared.samples,
            prepared.pause,
        )
    }

    /// Samples per encoder frame.
    fn frame_samples(&self) -> usize {
        (self.frame_secs * self.sample_rate as f64).round() as usize
    }

    /// Feature frames (10 ms) in `secs` seconds of audio.
    pub(crate) fn frames_for_secs(&self, secs: f64) -> usize {
        (secs * self.sample_rate as f64 / self.mel.hop_length() as f64) as usize
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

    /// Runs the chosen head over encoder output; one emission list per batch item.
    pub fn decode(
        &self,
        kind: DecoderKind,
        encoded: &Tensor,
        lengths: &[usize],
    ) -> Result<Vec<Vec<Emission>>> {
        match (kind, &self.transducer, &self.ctc) {
            (DecoderKind::Ctc, _, Some(ctc)) => Ok(ctc.greedy_batch(encoded, lengths)?),
            // On a GPU the search runs there: the host would do a matrix product per step for
            // hundreds of items while the device idles.
            (_, Some(transducer), _) if !encoded.device().is_cpu() => {
                Ok(transducer.greedy_batch_on_device(encoded, lengths)?)
            }
            (_, Some(transducer), _) => {
                let projected = transducer.project_encoder(encoded)?;
                let items: Vec<(&[f32], usize)> = projected
                    .iter()
                    .map(Vec::as_slice)
                    .zip(lengths.iter().copied())
                    .collect();
                Ok(transducer.greedy_batch(&items))
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

/// Seconds of audio [`Parakeet::warm_up`] transcribes by default. Ten seconds pass through
/// every layer, so the thread pools start, the weights' pages are faulted in and int8 weights
/// are repacked for the integer kernels, which is what a first file pays for; a whole chunk
/// (120 s) would also grow the allocator to a chunk's activations, but measured on the 0.6B
/// model that saved nothing on a CPU (`docs/benchmarks.md`) and took 30 s of a 2-core worker's
/// start.
pub const WARM_UP_SECS: f64 = 10.0;

/// Padded audio per encoder pass in [`Parakeet::transcribe_batch`], seconds: four two-minute
/// chunks, or a few dozen short files, in the memory of a few hundred MB on a CPU.
pub const DEFAULT_BATCH_SECS: f64 = 480.0;

/// A chunk of audio as features, ready for an encoder pass.
#[derive(Debug)]
pub(crate) struct ChunkFeatures {
    /// Row-major `[n_mels][frames]`.
    features: Vec<f32>,
    /// Feature frames (10 ms), padding included.
    pub frames: usize,
    /// Frames that hold audio (NeMo's `seq_len`).
    valid: usize,
    window: AttentionWindow,
    /// Seconds of audio in the chunk.
    pub secs: f64,
}

impl ChunkFeatures {
    /// What the choice of a pass needs.
    pub(crate) fn candidate(&self) -> Candidate {
        Candidate {
            frames: self.frames,
            window: self.window,
        }
    }
}

/// An utterance planned and featurized: its chunks and what assembling its transcript needs.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub decoder: DecoderKind,
    pause: Option<usize>,
    samples: usize,
    plan: ChunkPlan,
    pub chunks: Vec<ChunkFeatures>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The device search, run on the CPU, finds the host search's tokens on every fixture
    /// transducer and recording, batched as the worker batches them.
    #[test]
    fn the_device_search_finds_the_host_search_tokens() {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let files: Vec<Vec<f32>> = std::fs::read_dir(fixtures.join("audio"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .map(|p| crate::audio::decode_file(&p).unwrap().samples)
            .collect();
        assert!(files.len() >= 5);
        for name in ["tdt", "rnnt", "hybrid"] {
            let path = fixtures.join(format!("models/{name}.nemo"));
            let model = Parakeet::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
            let transducer = model.transducer.as_ref().unwrap();
            let prepared: Vec<Prepared> = files
                .iter()
                .map(|f| model.prepare(f, &TranscribeOptions::default()).unwrap())
                .collect();
            let chunks: Vec<&ChunkFeatures> = prepared.iter().map(|p| &p.chunks[0]).collect();
            let (encoded, lengths) = model.encode_chunks(&chunks).unwrap();
            let projected = transducer.project_encoder(&encoded).unwrap();
            let host_items: Vec<(&[f32], usize)> = projected
                .iter()
                .map(Vec::as_slice)
                .zip(lengths.iter().copied())
                .collect();
            let host = transducer.greedy_batch(&host_items);
            let device = transducer
                .greedy_batch_on_device(&encoded, &lengths)
                .unwrap();
            assert_eq!(device, host, "{name}");
            assert!(host.iter().all(|e| !e.is_empty()), "{name}");
        }
    }
}
