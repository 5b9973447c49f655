//! Transducer head: prediction network + joint network, with NeMo's greedy TDT and RNNT
//! searches (the label-looping algorithm behind NeMo's default `greedy_batch` strategy).

use candle_core::{Module, Result, Tensor};
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
        Ok(Self {
            prediction,
            enc: linear(shape.encoder_dim, shape.joint_hidden, true, joint.pp("enc"))?,
            pred: HostLinear::load(shape.pred_hidden, shape.joint_hidden, &joint.pp("pred"))?,
            out: HostLinear::load(shape.joint_hidden, n_out, &out_vb)?,
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

    /// Greedy search over `frames` projected encoder frames.
    pub fn greedy(&self, enc_proj: &[f32], frames: usize) -> Vec<Emission> {
        let mut search = Search::new(self);
        let mut emissions = Vec::new();
        let mut t = 0;
        // How many tokens were emitted on the frame of the last token, for `max_symbols`.
        let mut last_frame = usize::MAX;
        let mut on_last_frame = 0;
        while t < frames {
            let mut label_frame = t;
            let (mut token, mut duration) = search.best(enc_proj, t);
            t += duration;
            while token == self.vocab_size && t < frames {
                label_frame = t;
                (token, duration) = search.best(enc_proj, t);
                t += duration;
            }
            if token == self.vocab_size {
                break;
            }
            let end = if self.durations.is_empty() {
                label_frame + 1
            } else {
                label_frame + duration
            };
            emissions.push(Emission {
                token,
                start: label_frame,
                end,
            });
            search.advance(token);
            if label_frame == last_frame {
                on_last_frame += 1;
            } else {
                (last_frame, on_last_frame) = (label_frame, 1);
            }
            // A frame may not emit more than `max_symbols` tokens: move on.
            if on_last_frame >= self.max_symbols && label_frame == t {
                t += 1;
            }
        }
        emissions
    }
}

/// The state of one greedy search: the prediction network's state and its projected output.
struct Search<'a> {
    model: &'a Transducer,
    state: PredictionState,
    pred_proj: Vec<f32>,
    hidden: Vec<f32>,
    logits: Vec<f32>,
}

impl<'a> Search<'a> {
    /// Primes the prediction network with the start symbol (the blank).
    fn new(model: &'a Transducer) -> Self {
        let (output, state) = model
            .prediction
            .step(model.vocab_size, &model.prediction.initial_state());
        let mut search = Self {
            model,
            state,
            pred_proj: vec![0.0; model.pred.out_dim()],
            hidden: vec![0.0; model.pred.out_dim()],
            logits: vec![0.0; model.out.out_dim()],
        };
        model.pred.forward_into(&output, &mut search.pred_proj);
        search
    }

    /// Feeds an emitted token to the prediction network.
    fn advance(&mut self, token: usize) {
        let (output, state) = self.model.prediction.step(token, &self.state);
        self.state = state;
        self.model.pred.forward_into(&output, &mut self.pred_proj);
    }

    /// Best token and the frames to advance at encoder frame `t`. A blank always advances at
    /// least one frame; an RNNT token advances none.
    fn best(&mut self, enc_proj: &[f32], t: usize) -> (usize, usize) {
        let width = self.hidden.len();
        let frame = &enc_proj[t * width..(t + 1) * width];
        for ((h, e), p) in self.hidden.iter_mut().zip(frame).zip(&self.pred_proj) {
            *h = self.model.activation.apply(e + p);
        }
        self.model.out.forward_into(&self.hidden, &mut self.logits);
        let n_tokens = self.model.vocab_size + 1;
        let (token, _) = argmax(&self.logits[..n_tokens]);
        let blank = token == self.model.vocab_size;
        let duration = if self.model.durations.is_empty() {
            usize::from(blank)
        } else {
            let (d, _) = argmax(&self.logits[n_tokens..]);
            self.model.durations[d]
        };
        (token, if blank { duration.max(1) } else { duration })
    }
}
