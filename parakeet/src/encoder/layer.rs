//! One FastConformer block (NeMo's `ConformerLayer`): a macaron pair of half-step feed-forward
//! modules around self-attention and a convolution module, each with a pre-norm and a residual.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use super::attention::{AttentionWindow, RelPositionAttention};
use super::fused::{self, HostNorm};
use crate::config::EncoderConfig;
use crate::nn::{
    Dense, FrameMask, LAYER_NORM_EPS, Quantization, batch_norm_affine, layer_norm, linear,
    pointwise_conv1d, scaled, swish, to_host_f32,
};

/// `feed_forward1` / `feed_forward2`: linear, Swish, linear.
///
/// Both are macaron half-steps, added to the residual times 0.5. That factor is folded into
/// `linear2` at load time: halving is exact in floating point, so the output is bit for bit the
/// same and the layer saves a pass over its activations.
#[derive(Debug, Clone)]
struct FeedForward {
    linear1: Dense,
    linear2: Dense,
}

impl FeedForward {
    fn load(
        d_model: usize,
        d_ff: usize,
        bias: bool,
        quantization: Option<Quantization>,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            linear1: Dense::new(linear(d_model, d_ff, bias, vb.pp("linear1"))?, quantization)?,
            linear2: Dense::new(
                scaled(&linear(d_ff, d_model, bias, vb.pp("linear2"))?, 0.5)?,
                quantization,
            )?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let hidden = self.linear1.forward(x)?;
        let hidden = if fused::applies(&hidden) {
            fused::swish_all(&hidden)?
        } else {
            swish(&hidden)?
        };
        self.linear2.forward(&hidden)
    }
}

/// `conv`: pointwise conv to 2x width, GLU, depthwise conv over time, batch norm, Swish,
/// pointwise conv back. Runs channels-last, `(batch, time, channels)`.
///
/// The batch norm is folded into the depthwise convolution at load time (in f32, rounded to
/// the encoder's dtype once): its scale into the taps, its shift plus the scaled convolution
/// bias into one shift per channel, as NeMo's own ONNX export does.
#[derive(Debug, Clone)]
struct ConvModule {
    pointwise_conv1: Dense,
    /// Depthwise kernel as `(kernel, channels)`, batch norm scale folded in: row `k` weighs
    /// the frame `k - kernel/2` away.
    taps: Tensor,
    /// `(channels,)`: what the batch norm and the convolution bias add.
    shift: Tensor,
    /// `taps` and `shift` on the host, for [`fused::conv_module`] (f32 CPU models only).
    host: Option<(Vec<f32>, Vec<f32>)>,
    pointwise_conv2: Dense,
}

impl ConvModule {
    fn load(
        d_model: usize,
        kernel: usize,
        bias: bool,
        quantization: Option<Quantization>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let dtype = vb.dtype();
        let exact = vb.clone().set_dtype(DType::F32);
        let dw = exact.pp("depthwise_conv");
        let (scale, mut shift) = batch_norm_affine(d_model, exact.pp("batch_norm"))?;
        let taps = dw
            .get((d_model, 1, kernel), "weight")?
            .squeeze(1)?
            .t()?
            .broadcast_mul(&scale)?
            .contiguous()?;
        if bias {
            shift = (shift + dw.get(d_model, "bias")?.mul(&scale)?)?;
        }
        let host = if vb.device().is_cpu() && dtype == DType::F32 {
            Some((to_host_f32(&taps)?, to_host_f32(&shift)?))
        } else {
            None
        };
        Ok(Self {
            pointwise_conv1: Dense::new(
                pointwise_conv1d(d_model, 2 * d_model, bias, vb.pp("pointwise_conv1"))?,
                quantization,
            )?,
            taps: taps.to_dtype(dtype)?,
            shift: shift.to_dtype(dtype)?,
            host,
            pointwise_conv2: Dense::new(
                pointwise_conv1d(d_model, d_model, bias, vb.pp("pointwise_conv2"))?,
                quantization,
            )?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &FrameMask) -> Result<Tensor> {
        let x = self.pointwise_conv1.forward(x)?;
        let x = match &self.host {
            Some((taps, shift)) if fused::applies(&x) => {
                fused::conv_module(&x, mask.lengths(), taps, shift)?
            }
            _ => {
                let halves = x.chunk(2, D::Minus1)?;
                let x = mask.apply(&halves[0].mul(&candle_nn::ops::sigmoid(&halves[1])?)?)?;
                swish(&self.depthwise_conv(&x)?.broadcast_add(&self.shift)?)?
            }
        };
        self.pointwise_conv2.forward(&x)
    }

    /// Depthwise convolution over time with "same" zero padding, as `kernel` shifted
    /// multiply-adds (candle's grouped convolution would loop over every channel).
    fn depthwise_conv(&self, x: &Tensor) -> Result<Tensor> {
        let (_, t, _) = x.dims3()?;
        let kernel = self.taps.dim(0)?;
        let half = kernel / 2;
        let padded = x.pad_with_zeros(1, half, half)?;
        let mut acc: Option<Tensor> = None;
        for k in 0..kernel {
            let term = padded.narrow(1, k, t)?.broadcast_mul(&self.taps.get(k)?)?;
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
    /// The four norms that follow a residual add (self-attention, convolution, second
    /// feed-forward, output) on the host, for [`fused`]'s add-and-norm (f32 CPU models only).
    host_norms: Option<[HostNorm; 4]>,
}

impl ConformerLayer {
    /// Loads one layer of an encoder described by `cfg`, its dense layers quantized if asked.
    pub fn load(
        cfg: &EncoderConfig,
        quantization: Option<Quantization>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let d = cfg.d_model;
        let d_ff = d * cfg.ff_expansion_factor;
        let bias = cfg.use_bias;
        let norm_self_att = layer_norm(d, vb.pp("norm_self_att"))?;
        let norm_conv = layer_norm(d, vb.pp("norm_conv"))?;
        let norm_feed_forward2 = layer_norm(d, vb.pp("norm_feed_forward2"))?;
        let norm_out = layer_norm(d, vb.pp("norm_out"))?;
        let host_norms = if vb.device().is_cpu() && vb.dtype() == DType::F32 {
            let host = |n| HostNorm::new(n, LAYER_NORM_EPS);
            Some([
                host(&norm_self_att)?,
                host(&norm_conv)?,
                host(&norm_feed_forward2)?,
                host(&norm_out)?,
            ])
        } else {
            None
        };
        Ok(Self {
            norm_feed_forward1: layer_norm(d, vb.pp("norm_feed_forward1"))?,
            feed_forward1: FeedForward::load(d, d_ff, bias, quantization, vb.pp("feed_forward1"))?,
            norm_self_att,
            self_attn: RelPositionAttention::load(
                d,
                cfg.n_heads,
                bias,
                quantization,
                vb.pp("self_attn"),
            )?,
            norm_conv,
            conv: ConvModule::load(d, cfg.conv_kernel_size, bias, quantization, vb.pp("conv"))?,
            norm_feed_forward2,
            feed_forward2: FeedForward::load(d, d_ff, bias, quantization, vb.pp("feed_forward2"))?,
            norm_out,
            host_norms,
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
        if let Some(norms) = &self.host_norms
            && fused::applies(x)
        {
            return self.forward_fused(x, mask, positions, window, norms);
        }
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

    /// [`Self::forward`] with every residual add done in one pass with the layer norm after
    /// it.
    fn forward_fused(
        &self,
        x: &Tensor,
        mask: &FrameMask,
        positions: &Tensor,
        window: AttentionWindow,
        [norm_att, norm_conv, norm_ff2, norm_out]: &[HostNorm; 4],
    ) -> Result<Tensor> {
        let ff1 = self
            .feed_forward1
            .forward(&self.norm_feed_forward1.forward(x)?)?;
        let (x, normed) = norm_att.add_norm(x, &ff1)?;
        let att = self.self_attn.forward(&normed, mask, positions, window)?;
        let (x, normed) = norm_conv.add_norm(&x, &att)?;
        let conv = self.conv.forward(&normed, mask)?;
        let (x, normed) = norm_ff2.add_norm(&x, &conv)?;
        let ff2 = self.feed_forward2.forward(&normed)?;
        Ok(norm_out.add_norm(&x, &ff2)?.1)
    }
}
