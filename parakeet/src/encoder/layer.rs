//! One FastConformer block (NeMo's `ConformerLayer`): a macaron pair of half-step feed-forward
//! modules around self-attention and a convolution module, each with a pre-norm and a residual.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};

use super::attention::{AttentionWindow, RelPositionAttention};
use crate::config::EncoderConfig;
use crate::nn::{BatchNorm, FrameMask, layer_norm, linear, pointwise_conv1d, scaled, swish};

/// `feed_forward1` / `feed_forward2`: linear, Swish, linear.
///
/// Both are macaron half-steps, added to the residual times 0.5. That factor is folded into
/// `linear2` at load time: halving is exact in floating point, so the output is bit for bit the
/// same and the layer saves a pass over its activations.
#[derive(Debug, Clone)]
struct FeedForward {
    linear1: Linear,
    linear2: Linear,
}

impl FeedForward {
    fn load(d_model: usize, d_ff: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        Ok(Self {
            linear1: linear(d_model, d_ff, bias, vb.pp("linear1"))?,
            linear2: scaled(&linear(d_ff, d_model, bias, vb.pp("linear2"))?, 0.5)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.linear2.forward(&swish(&self.linear1.forward(x)?)?)
    }
}

/// `conv`: pointwise conv to 2x width, GLU, depthwise conv over time, batch norm, Swish,
/// pointwise conv back. Runs channels-last, `(batch, time, channels)`.
#[derive(Debug, Clone)]
struct ConvModule {
    pointwise_conv1: Linear,
    /// Depthwise kernel as `(kernel, channels)`: row `k` weighs the frame `k - kernel/2` away.
    depthwise: Tensor,
    depthwise_bias: Option<Tensor>,
    batch_norm: BatchNorm,
    pointwise_conv2: Linear,
}

impl ConvModule {
    fn load(d_model: usize, kernel: usize, bias: bool, vb: VarBuilder) -> Result<Self> {
        let dw = vb.pp("depthwise_conv");
        let depthwise = dw
            .get((d_model, 1, kernel), "weight")?
            .squeeze(1)?
            .t()?
            .contiguous()?;
        let depthwise_bias = if bias {
            Some(dw.get(d_model, "bias")?)
        } else {
            None
        };
        Ok(Self {
            pointwise_conv1: pointwise_conv1d(
                d_model,
                2 * d_model,
                bias,
                vb.pp("pointwise_conv1"),
            )?,
            depthwise,
            depthwise_bias,
            batch_norm: BatchNorm::load(d_model, vb.pp("batch_norm"))?,
            pointwise_conv2: pointwise_conv1d(d_model, d_model, bias, vb.pp("pointwise_conv2"))?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &FrameMask) -> Result<Tensor> {
        let x = self.pointwise_conv1.forward(x)?;
        let halves = x.chunk(2, D::Minus1)?;
        let x = mask.apply(&halves[0].mul(&candle_nn::ops::sigmoid(&halves[1])?)?)?;
        let mut x = self.depthwise_conv(&x)?;
        if let Some(bias) = &self.depthwise_bias {
            x = x.broadcast_add(bias)?;
        }
        let x = swish(&self.batch_norm.forward(&x)?)?;
        self.pointwise_conv2.forward(&x)
    }

    /// Depthwise convolution over time with "same" zero padding, as `kernel` shifted
    /// multiply-adds (candle's grouped convolution would loop over every channel).
    fn depthwise_conv(&self, x: &Tensor) -> Result<Tensor> {
        let (_, t, _) = x.dims3()?;
        let kernel = self.depthwise.dim(0)?;
        let half = kernel / 2;
        let padded = x.pad_with_zeros(1, half, half)?;
        let mut acc: Option<Tensor> = None;
        for k in 0..kernel {
            let term = padded
                .narrow(1, k, t)?
                .broadcast_mul(&self.depthwise.get(k)?)?;
            acc = Some(match acc {
                None => term,
                Some(a) => (a + term)?,
            });
        }
        Ok(acc.expect("kernel is not empty"))
    }
}

/// One `encoder.layers.N`.
#[derive(Debug, Clone)]
pub struct ConformerLayer {
    norm_feed_forward1: LayerNorm,
    feed_forward1: FeedForward,
    norm_self_att: LayerNorm,
    self_attn: RelPositionAttention,
    norm_conv: LayerNorm,
    conv: ConvModule,
    norm_feed_forward2: LayerNorm,
    feed_forward2: FeedForward,
    norm_out: LayerNorm,
}

impl ConformerLayer {
    /// Loads one layer of an encoder described by `cfg`.
    pub fn load(cfg: &EncoderConfig, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let d_ff = d * cfg.ff_expansion_factor;
        let bias = cfg.use_bias;
        Ok(Self {
            norm_feed_forward1: layer_norm(d, vb.pp("norm_feed_forward1"))?,
            feed_forward1: FeedForward::load(d, d_ff, bias, vb.pp("feed_forward1"))?,
            norm_self_att: layer_norm(d, vb.pp("norm_self_att"))?,
            self_attn: RelPositionAttention::load(d, cfg.n_heads, bias, vb.pp("self_attn"))?,
            norm_conv: layer_norm(d, vb.pp("norm_conv"))?,
            conv: ConvModule::load(d, cfg.conv_kernel_size, bias, vb.pp("conv"))?,
            norm_feed_forward2: layer_norm(d, vb.pp("norm_feed_forward2"))?,
            feed_forward2: FeedForward::load(d, d_ff, bias, vb.pp("feed_forward2"))?,
            norm_out: layer_norm(d, vb.pp("norm_out"))?,
        })
    }

    /// `x`: `(batch, time, d_model)`.
    pub fn forward(
        &self,
        x: &Tensor,
        mask: &FrameMask,
        positions: &Tensor,
        window: AttentionWindow,
    ) -> Result<Tensor> {
        let ff1 = self
            .feed_forward1
            .forward(&self.norm_feed_forward1.forward(x)?)?;
        let x = (x + ff1)?;
        let att =
            self.self_attn
                .forward(&self.norm_self_att.forward(&x)?, mask, positions, window)?;
        let x = (x + att)?;
        let conv = self.conv.forward(&self.norm_conv.forward(&x)?, mask)?;
        let x = (x + conv)?;
        let ff2 = self
            .feed_forward2
            .forward(&self.norm_feed_forward2.forward(&x)?)?;
        let x = (x + ff2)?;
        self.norm_out.forward(&x)
    }
}
