//! Transducer head: prediction network + joint network, with NeMo's greedy TDT and RNNT
//! searches, batched (the label-looping algorithm behind NeMo's default `greedy_batch` strategy).

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::host::{HostLinear, argmax};
use super::prediction::{PredictionNetwork, PredictionState};
use super::{DecoderKind, Emission};
use crate::nn::{linear, to_host_f32};

/// The joint's non-linearity.
#[derive(Debug, Clone, Copy)]
enum Activation {
    Relu,
    Tanh,
    Sigmoid,
}

impl Activation {
    fn parse(name: &str) -> Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "relu" => Ok(Self::Relu),
            "tanh" => Ok(Self::Tanh),
            "sigmoid" => Ok(Self::Sigmoid),
            other => candle_core::bail!("unsupported joint activation {other:?}"),
        }
    }

    fn apply_tensor(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Relu => x.relu(),
            Self::Tanh => x.tanh(),
            Self::Sigmoid => candle_nn::ops::sigmoid(x),
        }
    }

    fn apply(self, x: f32) -> f32 {
        match self {
            Self::Relu => x.max(0.0),
            Self::Tanh => x.tanh(),
            Self::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        }
    }
}

/// Prediction network, joint network and the TDT duration set.
#[derive(Debug, Clone)]
pub struct Transducer {
    prediction: PredictionNetwork,
    /// `joint.enc`, applied to all encoder frames at once on the device.
    enc: Linear,
    /// `joint.pred`.
    pred: HostLinear,
    /// The joint's output layer: vocabulary, blank, then one logit per duration.
    out: HostLinear,
    /// `joint.pred` and the output layer on the model's device, for decoding there.
    pred_on_device: Linear,
    out_on_device: Linear,
    activation: Activation,
    vocab_size: usize,
    /// TDT durations; empty for RNNT.
    durations: Vec<usize>,
    max_symbols: usize,
}

/// Sizes a [`Transducer`] is loaded with.
#[derive(Debug, Clone)]
pub struct TransducerShape {
    /// Vocabulary size without blank.
    pub vocab_size: usize,
    /// Encoder width.
    pub encoder_dim: usize,
    /// Prediction network width.
    pub pred_hidden: usize,
    /// Number of LSTM layers.
    pub pred_layers: usize,
    /// Joint hidden width.
    pub joint_hidden: usize,
    /// Joint activation name.
    pub activation: String,
    /// TDT durations (empty for RNNT).
    pub durations: Vec<usize>,
    /// Greedy cap on symbols per frame.
    pub max_symbols: usize,
}

impl Transducer {
    /// Loads `decoder.prediction` from `decoder` and `joint.*` from `joint`.
    pub fn load(shape: &TransducerShape, decoder: VarBuilder, joint: VarBuilder) -> Result<Self> {
        let prediction = PredictionNetwork::load(
            shape.vocab_size,
            shape.pred_hidden,
            shape.pred_layers,
            decoder.pp("prediction"),
        )?;
        let n_out = shape.vocab_size + 1 + shape.durations.len();
        // The output layer is `joint_net.2` behind a dropout, `joint_net.1` where training had none.
        let net = joint.pp("joint_net");
        let out_vb = if net.contains_tensor("2.weight") {
            net.pp("2")
        } else {
            net.pp("1")
        };
        let pred_vb = joint.pp("pred");
        let pred_bias = pred_vb.contains_tensor("bias");
        let pred_on_device = linear(shape.pred_hidden, shape.joint_hidden, pred_bias, pred_vb)?;
        let out_bias = out_vb.contains_tensor("bias");
        let out_on_device = linear(shape.joint_hidden, n_out, out_bias, out_vb)?;
        Ok(Self {
            prediction,
            enc: linear(shape.encoder_dim, shape.joint_hidden, true, joint.pp("enc"))?,
            pred: HostLinear::from_tensors(pred_on_device.weight(), pred_on_device.bias())?,
            out: HostLinear::from_tensors(out_on_device.weight(), out_on_device.bias())?,
            pred_on_device,
            out_on_device,
            activation: Activation::parse(&shape.activation)?,
            vocab_size: shape.vocab_size,
            durations: shape.durations.clone(),
            max_symbols: shape.max_symbols.max(1),
        })
    }

    /// TDT when the joint predicts durations, RNNT otherwise.
    pub fn kind(&self) -> DecoderKind {
        if self.durations.is_empty() {
            DecoderKind::Rnnt
        } else {
            DecoderKind::Tdt
        }
    }

    /// Projects encoder output `(batch, frames, d_model)` into the joint space, on the device,
    /// and brings it to the host: one `Vec` of `frames * joint_hidden` per batch item.
    pub fn project_encoder(&self, encoded: &Tensor) -> Result<Vec<Vec<f32>>> {
        let projected = self.enc.forward(encoded)?;
        (0..projected.dim(0)?)
            .map(|b| to_host_f32(&projected.get(b)?))
            .collect()
    }

    /// Greedy search over a batch: for each item, its projected encoder frames (`frames *
    /// joint_hidden`, from [`Self::project_encoder`]) and how many of them are valid.
    ///
    /// The items advance in lockstep, as in NeMo's label-looping `greedy_batch`
    /// (`nemo/collections/asr/parts/submodules/tdt_loop_labels_computer.py`): each step runs
    /// the joint once for every item still decoding, as one matrix-matrix product, and each
    /// item moves on by its own predicted duration (a blank by at least one frame); the
    /// prediction network then runs once for all items that emitted a token. Every item goes
    /// through exactly the arithmetic it would go through alone, so its tokens do not depend on
    /// what shares the batch.
    pub fn greedy_batch(&self, items: &[(&[f32], usize)]) -> Vec<Vec<Emission>> {
        let width = self.pred.out_dim();
        let n_out = self.out.out_dim();
        // Every search starts from the prediction network primed with the start symbol.
        let start_state = self.prediction.initial_state();
        let (start_output, start_state) = self
            .prediction
            .step_batch(&[(self.vocab_size, &start_state)])
            .remove(0);
        let mut start_proj = vec![0.0; width];
        self.pred.forward_into(&start_output, &mut start_proj);
        let mut searches: Vec<Search> = items
            .iter()
            .map(|&(enc_proj, frames)| Search {
                track: Track::new(frames),
                enc_proj,
                state: start_state.clone(),
                pred_proj: start_proj.clone(),
            })
            .collect();
        let mut active: Vec<usize> = (0..items.len()).filter(|&i| items[i].1 > 0).collect();
        let mut hidden = Vec::new();
        let mut logits = Vec::new();
        while !active.is_empty() {
            hidden.resize(active.len() * width, 0.0);
            for (h, &i) in hidden.chunks_exact_mut(width).zip(&active) {
                let s = &searches[i];
                let t = s.track.t;
                let frame = &s.enc_proj[t * width..(t + 1) * width];
                for ((h, e), p) in h.iter_mut().zip(frame).zip(&s.pred_proj) {
                    *h = self.activation.apply(e + p);
                }
            }
            logits.resize(active.len() * n_out, 0.0);
            let rows: Vec<&[f32]> = hidden.chunks_exact(width).collect();
            self.out.forward_batch_into(&rows, &mut logits);
            let mut still = Vec::with_capacity(active.len());
            let mut emitted = Vec::new();
            for (logits, &i) in logits.chunks_exact(n_out).zip(&active) {
                let (token, duration) = self.best(logits);
                let track = &mut searches[i].track;
                if track.record(token, duration, self) {
                    emitted.push((i, token));
                } else if track.running() {
                    still.push(i);
                }
            }
            if !emitted.is_empty() {
                let steps = self.prediction.step_batch(
                    &emitted
                        .iter()
                        .map(|&(i, token)| (token, &searches[i].state))
                        .collect::<Vec<_>>(),
                );
                let outputs: Vec<&[f32]> = steps.iter().map(|(o, _)| o.as_slice()).collect();
                let mut projected = vec![0.0; emitted.len() * width];
                self.pred.forward_batch_into(&outputs, &mut projected);
                for (((i, _), (_, state)), proj) in
                    emitted.iter().zip(steps).zip(projected.chunks_exact(width))
                {
                    let s = &mut searches[*i];
                    s.state = state;
                    s.pred_proj.copy_from_slice(proj);
                    if s.track.running() {
                        still.push(*i);
                    }
                }
            }
            active = still;
        }
        searches.into_iter().map(|s| s.track.emissions).collect()
    }

    /// [`Self::greedy_batch`] with every tensor operation on the device of `encoded`
    /// `(batch, frames, d_model)`, for a GPU: each step is a few batched kernels (the joint for
    /// every item at its frame, the argmaxes, the prediction network for every item with the
    /// new state kept where an item emitted a token) and one small copy of the chosen tokens and
    /// durations to the host, which keeps the bookkeeping of [`Self::greedy_batch`]. The
    /// products are the device's matrix products rather than the host's dot products, so the
    /// tokens equal the host search's up to ties that rounding could break differently
    /// (checked on every fixture model on the CPU).
    pub fn greedy_batch_on_device(
        &self,
        encoded: &Tensor,
        lengths: &[usize],
    ) -> Result<Vec<Vec<Emission>>> {
        let projected = self.enc.forward(encoded)?;
        let (batch, frames_max, width) = projected.dims3()?;
        let device = projected.device();
        let flat = projected.reshape((batch * frames_max, width))?;
        let initial = self.prediction.initial_device_state(batch, device)?;
        let start = Tensor::full(self.vocab_size as u32, batch, device)?;
        let (output, mut state) = self.prediction.step_on_device(&start, &initial)?;
        let mut pred_proj = self.pred_on_device.forward(&output)?;
        let mut searches: Vec<Track> = lengths.iter().map(|&frames| Track::new(frames)).collect();
        let n_tokens = self.vocab_size + 1;
        while searches.iter().any(Track::running) {
            // Every item looks at its frame (a finished one at any frame; its result is unused).
            let rows: Vec<u32> = searches
                .iter()
                .enumerate()
                .map(|(b, s)| (b * frames_max + s.t.min(frames_max - 1)) as u32)
                .collect();
            let frames = flat.index_select(&Tensor::new(rows, device)?, 0)?;
            let hidden = self.activation.apply_tensor(&(frames + &pred_proj)?)?;
            let logits = self.out_on_device.forward(&hidden)?;
            let tokens = logits.narrow(D::Minus1, 0, n_tokens)?.argmax(D::Minus1)?;
            let picks = if self.durations.is_empty() {
                tokens.to_vec1::<u32>()?
            } else {
                let durations = logits
                    .narrow(D::Minus1, n_tokens, self.durations.len())?
                    .argmax(D::Minus1)?;
                Tensor::cat(&[tokens, durations], 0)?.to_vec1::<u32>()?
            };
            let mut fed = vec![self.vocab_size as u32; batch];
            let mut emitted = vec![0u8; batch];
            for (b, s) in searches.iter_mut().enumerate() {
                if !s.running() {
                    continue;
                }
                let token = picks[b] as usize;
                let blank = token == self.vocab_size;
                let duration = match self.durations.is_empty() {
                    true => usize::from(blank),
                    false => self.durations[picks[batch + b] as usize],
                };
                let duration = if blank { duration.max(1) } else { duration };
                if s.record(token, duration, self) {
                    fed[b] = token as u32;
                    emitted[b] = 1;
                }
            }
            if emitted.contains(&1) {
                let (output, next) = self
                    .prediction
                    .step_on_device(&Tensor::new(fed, device)?, &state)?;
                let projected = self.pred_on_device.forward(&output)?;
                let mask = Tensor::new(emitted, device)?.reshape((batch, 1))?;
                state = next.select(&mask, &state)?;
                pred_proj = mask
                    .broadcast_as(pred_proj.shape())?
                    .where_cond(&projected, &pred_proj)?;
            }
        }
        Ok(searches.into_iter().map(|s| s.emissions).collect())
    }

    /// Best token and the frames to advance, from one item's joint logits. A blank always
    /// advances at least one frame; an RNNT token advances none.
    fn best(&self, logits: &[f32]) -> (usize, usize) {
        let n_tokens = self.vocab_size + 1;
        let (token, _) = argmax(&logits[..n_tokens]);
        let blank = token == self.vocab_size;
        let duration = if self.durations.is_empty() {
            usize::from(blank)
        } else {
            let (d, _) = argmax(&logits[n_tokens..]);
            self.durations[d]
        };
        (token, if blank { duration.max(1) } else { duration })
    }
}

/// Where one item of a batched greedy search stands, and what it emitted.
struct Track {
    frames: usize,
    /// The encoder frame the joint looks at next.
    t: usize,
    emissions: Vec<Emission>,
    /// The frame of the last token and how many tokens it emitted, for `max_symbols`.
    last_frame: usize,
    on_last_frame: usize,
}

impl Track {
    fn new(frames: usize) -> Self {
        Self {
            frames,
            t: 0,
            emissions: Vec::new(),
            last_frame: usize::MAX,
            on_last_frame: 0,
        }
    }

    fn running(&self) -> bool {
        self.t < self.frames
    }

    /// Takes the joint's choice at frame `t`: moves on by `duration` and, for a token, records
    /// it. True when a token was emitted (the prediction network must then take it).
    fn record(&mut self, token: usize, duration: usize, model: &Transducer) -> bool {
        let label_frame = self.t;
        self.t += duration;
        if token == model.vocab_size {
            return false;
        }
        let end = if model.durations.is_empty() {
            label_frame + 1
        } else {
            label_frame + duration
        };
        self.emissions.push(Emission {
            token,
            start: label_frame,
            end,
        });
        if label_frame == self.last_frame {
            self.on_last_frame += 1;
        } else {
            (self.last_frame, self.on_last_frame) = (label_frame, 1);
        }
        // A frame may not emit more than `max_symbols` tokens: move on.
        if self.on_last_frame >= model.max_symbols && label_frame == self.t {
            self.t += 1;
        }
        true
    }
}

/// One item of a host greedy search: its track, its projected encoder frames, and the
/// prediction network's state after its last token with that state's projected output.
struct Search<'a> {
    track: Track,
    enc_proj: &'a [f32],
    state: PredictionState,
    pred_proj: Vec<f32>,
}
