//! NeMo's `TransformerEncoder` as Sortformer uses it: post-LN blocks of multi-head
//! self-attention and a ReLU feed-forward, no positional encoding (the FastConformer before it
//! has already placed every frame). Follows
//! `nemo/collections/asr/modules/transformer/transformer_encoders.py` and
//! `transformer_modules.py` (`MultiHeadAttention`, `PositionWiseFF`).

use candle_core::{Result, Tensor};
use candle_nn::{LayerNorm, Linear, Module, VarBuilder};

use super::config::TransformerConfig;
use crate::error::Error;
use crate::nn::{layer_norm, linear, scaled};

/// NeMo's `form_attention_mask` adds this to the scores of padded keys.
const MASKED_SCORE: f64 = -10000.0;

/// One block, `transformer_encoder.layers.{i}` in the checkpoint.
#[derive(Debug, Clone)]
struct Block {
    /// `first_sub_layer.query_net`, pre-multiplied by `1 / sqrt(head_dim)`: NeMo divides
    /// queries and keys by `head_dim^(1/4)` each.
    query: Linear,
    key: Linear,
    value: Linear,
    out: Linear,
    norm_1: LayerNorm,
    dense_in: Linear,
    dense_out: Linear,
    norm_2: LayerNorm,
    heads: usize,
}

impl Block {
    fn load(cfg: &TransformerConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.hidden_size;
        let attention = vb.pp("first_sub_layer");
        let head_dim = d / cfg.num_attention_heads;
        let query = linear(d, d, true, attention.pp("query_net"))?;
        let ff = vb.pp("second_sub_layer");
        Ok(Self {
            query: scaled(&query, 1.0 / (head_dim as f64).sqrt())?,
            key: linear(d, d, true, attention.pp("key_net"))?,
            value: linear(d, d, true, attention.pp("value_net"))?,
            out: linear(d, d, true, attention.pp("out_projection"))?,
            norm_1: layer_norm(d, vb.pp("layer_norm_1"))?,
            dense_in: linear(d, cfg.inner_size, true, ff.pp("dense_in"))?,
            dense_out: linear(cfg.inner_size, d, true, ff.pp("dense_out"))?,
            norm_2: layer_norm(d, vb.pp("layer_norm_2"))?,
            heads: cfg.num_attention_heads,
        })
    }

    /// `x`: `(batch, frames, d)`; `bias`: `(batch, 1, 1, frames)` or `None` without padding.
    fn forward(&self, x: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let split = |y: Tensor| {
            y.reshape((b, t, self.heads, d / self.heads))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?)?;
        let k = split(self.key.forward(x)?)?;
        let v = split(self.value.forward(x)?)?;
        let mut scores = q.matmul(&k.t()?)?;
        if let Some(bias) = bias {
            scores = scores.broadcast_add(bias)?;
        }
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, d))?;
        let attended = (self.out.forward(&context)? + x)?;
        let attended = self.norm_1.forward(&attended)?;
        let ff = self
            .dense_out
            .forward(&self.dense_in.forward(&attended)?.relu()?)?;
        self.norm_2.forward(&(ff + attended)?)
    }
}

/// The encoder, `transformer_encoder.*` in the checkpoint.
#[derive(Debug, Clone)]
pub struct TransformerEncoder {
    blocks: Vec<Block>,
}

impl TransformerEncoder {
    /// Loads the blocks, refusing the variants no Sortformer uses.
    pub fn load(cfg: &TransformerConfig, vb: VarBuilder) -> std::result::Result<Self, Error> {
        if cfg.pre_ln {
            return Err(Error::Unsupported("a pre-LN transformer encoder".into()));
        }
        if cfg.mask_future {
            return Err(Error::Unsupported("a causal transformer encoder".into()));
        }
        if cfg.hidden_act != "relu" {
            return Err(Error::Unsupported(format!(
                "transformer activation {:?} (only relu)",
                cfg.hidden_act
            )));
        }
        if !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(Error::Config(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                cfg.hidden_size, cfg.num_attention_heads
            )));
        }
        let blocks = (0..cfg.num_layers)
            .map(|i| Block::load(cfg, vb.pp("layers").pp(i)))
            .collect::<Result<_>>()?;
        Ok(Self { blocks })
    }

    /// `x`: `(batch, frames, hidden)` with `lengths` valid frames per item; padded frames are
    /// hidden from every query as keys (their own rows are computed and ignored).
    pub fn forward(&self, x: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let bias = if lengths.iter().all(|&l| l >= t) {
            None
        } else {
            let values: Vec<f32> = lengths
                .iter()
                .flat_map(|&l| (0..t).map(move |i| if i < l { 0.0 } else { MASKED_SCORE as f32 }))
                .collect();
            Some(Tensor::from_vec(values, (b, 1, 1, t), x.device())?.to_dtype(x.dtype())?)
        };
        let mut x = x.clone();
        for block in &self.blocks {
            x = block.forward(&x, bias.as_ref())?;
        }
        Ok(x)
    }
}
