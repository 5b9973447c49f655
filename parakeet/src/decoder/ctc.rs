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
        let layer = pointwise_conv1d(
            feat_in,
            vocab_size + 1,
            true,
            vb.pp("decoder_layers").pp("0"),
        )?;
        Ok(Self { layer, vocab_size })
    }

    /// Log-probabilities `(batch, frames, vocab + 1)` for encoder output `(batch, frames, d)`.
    pub fn log_probs(&self, encoded: &Tensor) -> Result<Tensor> {
        candle_nn::ops::log_softmax(&self.layer.forward(encoded)?, D::Minus1)
    }

    /// Greedy search over a batch of encoder output `(batch, frames, d)` with `lengths` valid
    /// frames per item: the best label per frame (one argmax over the whole batch), runs
    /// merged, blanks dropped.
    ///
    /// Token spans follow NeMo's CTC offsets exactly: a token ends at the frame where it is
    /// first emitted and starts where the token before it was first emitted (the first token
    /// starts one frame before its own). Word times built on them therefore agree with NeMo's.
    pub fn greedy_batch(&self, encoded: &Tensor, lengths: &[usize]) -> Result<Vec<Vec<Emission>>> {
        let labels = self
            .log_probs(encoded)?
            .argmax(D::Minus1)?
            .to_vec2::<u32>()?;
        Ok(labels
            .iter()
            .zip(lengths)
            .map(|(labels, &frames)| self.collapse(&labels[..frames]))
            .collect())
    }

    /// One item's best labels per frame into emissions.
    fn collapse(&self, labels: &[u32]) -> Vec<Emission> {
        let blank = self.vocab_size as u32;
        let mut firsts: Vec<(usize, usize)> = Vec::new();
        let mut previous = blank;
        for (frame, &label) in labels.iter().enumerate() {
            if label != blank && label != previous {
                firsts.push((label as usize, frame));
            }
            previous = label;
        }
        let mut start = firsts
            .first()
            .map_or(0, |&(_, frame)| frame.saturating_sub(1));
        firsts
            .into_iter()
            .map(|(token, frame)| {
                let emission = Emission {
                    token,
                    start,
                    end: frame,
                };
                start = frame;
                emission
            })
            .collect()
    }
}
