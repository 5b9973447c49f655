//! CTC head (NeMo's `ConvASRDecoder`): a pointwise convolution to vocabulary + blank, log-softmax,
//! and greedy search.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::Emission;
use crate::nn::pointwise_conv1d;

/// `decoder.decoder_layers.0` (CTC models) or `ctc_decoder.decoder_layers.0` (hybrids).
#[derive(Debug, Clone)]
pub struct CtcHead {
    layer: Linear,
    vocab_size: usize,
}

impl CtcHead {
    /// Loads the head for `vocab_size` tokens plus blank over `feat_in` encoder features.
    pub fn load(feat_in: usize, vocab_size: usize, vb: VarBuilder) -> Result<Self> {
        let layer = pointwise_conv1d(feat_in, vocab_size + 1, true, vb.pp("decoder_layers").pp("0"))?;
        Ok(Self { layer, vocab_size })
    }

    /// Log-probabilities `(batch, frames, vocab + 1)` for encoder output `(batch, frames, d)`.
    pub fn log_probs(&self, encoded: &Tensor) -> Result<Tensor> {
        candle_nn::ops::log_softmax(&self.layer.forward(encoded)?, D::Minus1)
    }

    /// Greedy search over the first `frames` frames of one item's log-probabilities
    /// `(frames, vocab + 1)`: the best label per frame, runs merged, blanks dropped.
    /// A token spans the frames of its run.
    pub fn greedy(&self, log_probs: &Tensor, frames: usize) -> Result<Vec<Emission>> {
        let labels = log_probs.narrow(0, 0, frames)?.argmax(D::Minus1)?;
        let labels = labels.to_vec1::<u32>()?;
        let mut emissions = Vec::new();
        let mut start = 0;
        while start < labels.len() {
            let label = labels[start];
            let end = start + labels[start..].iter().take_while(|&&l| l == label).count();
            if label as usize != self.vocab_size {
                emissions.push(Emission { token: label as usize, start, end });
            }
            start = end;
        }
        Ok(emissions)
    }
}
