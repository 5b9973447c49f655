//! Small building blocks shared by the encoder and the heads: layers loaded under their NeMo
//! names, and the padding masks that keep padded frames from leaking into real ones.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};

/// PyTorch's `LayerNorm` default epsilon, which every NeMo layer norm uses.
pub const LAYER_NORM_EPS: f64 = 1e-5;

/// A `nn.Linear(in_dim, out_dim, bias=bias)`.
pub fn linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder) -> Result<Linear> {
    candle_nn::linear_b(in_dim, out_dim, bias, vb)
}

/// A `nn.Conv1d(in_dim, out_dim, kernel_size=1)`, which is a linear layer over channels;
/// loaded as one so that it runs as a single matmul in channels-last layout.
pub fn pointwise_conv1d(
    in_dim: usize,
    out_dim: usize,
    bias: bool,
    vb: VarBuilder,
) -> Result<Linear> {
    let weight = vb.get((out_dim, in_dim, 1), "weight")?.squeeze(2)?;
    let bias = if bias {
        Some(vb.get(out_dim, "bias")?)
    } else {
        None
    };
    Ok(Linear::new(weight, bias))
}

/// `layer` with weight and bias multiplied by `factor`: a constant factor on a linear layer's
/// output, folded into the layer when it loads.
pub fn scaled(layer: &Linear, factor: f64) -> Result<Linear> {
    let bias = layer.bias().map(|b| b * factor).transpose()?;
    Ok(Linear::new((layer.weight() * factor)?, bias))
}

/// A `nn.LayerNorm(dim)` with PyTorch's epsilon.
pub fn layer_norm(dim: usize, vb: VarBuilder) -> Result<LayerNorm> {
    candle_nn::layer_norm(dim, LAYER_NORM_EPS, vb)
}

/// Inference-mode `BatchNorm1d`, folded into one scale and one shift per channel.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    scale: Tensor,
    shift: Tensor,
}

impl BatchNorm {
    /// Loads `weight`, `bias`, `running_mean` and `running_var` and folds them.
    ///
    /// The fold runs in f32 whatever `vb`'s dtype, and only the folded scale and shift are
    /// rounded to it: in f16 the epsilon `1e-5` is subnormal and a small running variance
    /// would lose most of its bits before the square root.
    pub fn load(channels: usize, vb: VarBuilder) -> Result<Self> {
        let dtype = vb.dtype();
        let vb = vb.set_dtype(DType::F32);
        let weight = vb.get(channels, "weight")?;
        let bias = vb.get(channels, "bias")?;
        let mean = vb.get(channels, "running_mean")?;
        let var = vb.get(channels, "running_var")?;
        let scale = weight.div(&(var + 1e-5)?.sqrt()?)?;
        let shift = (bias - mean.mul(&scale)?)?;
        Ok(Self {
            scale: scale.to_dtype(dtype)?,
            shift: shift.to_dtype(dtype)?,
        })
    }

    /// Normalises the last (channel) axis of `x`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.broadcast_mul(&self.scale)?.broadcast_add(&self.shift)
    }
}

/// Feed-forward activation of the conformer blocks (`Swish`, i.e. SiLU).
pub fn swish(x: &Tensor) -> Result<Tensor> {
    candle_nn::ops::silu(x)
}

/// Which frames of a padded batch are real.
///
/// `None` in [`FrameMask::mask`] means every frame of every item is real, which is the common
/// single-utterance case and lets the hot paths skip masking altogether.
#[derive(Debug, Clone)]
pub struct FrameMask {
    lengths: Vec<usize>,
    mask: Option<Tensor>,
}

impl FrameMask {
    /// Builds the mask for items of `lengths` frames padded to `max_len`.
    pub fn new(lengths: &[usize], max_len: usize, device: &Device) -> Result<Self> {
        let full = lengths.iter().all(|&l| l >= max_len);
        let mask = if full {
            None
        } else {
            let data: Vec<f32> = lengths
                .iter()
                .flat_map(|&l| (0..max_len).map(move |t| if t < l { 1.0 } else { 0.0 }))
                .collect();
            Some(Tensor::from_vec(data, (lengths.len(), max_len), device)?)
        };
        Ok(Self {
            lengths: lengths.to_vec(),
            mask,
        })
    }

    /// Valid frames per item.
    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    /// Zeroes padded frames of `x`, shaped `(batch, time, ...)`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        match &self.mask {
            None => Ok(x.clone()),
            Some(mask) => {
                let mut shape = vec![mask.dim(0)?, mask.dim(1)?];
                shape.resize(x.rank(), 1);
                x.broadcast_mul(&mask.reshape(shape)?.to_dtype(x.dtype())?)
            }
        }
    }

    /// Additive attention bias `(batch, 1, time, time)` in `dtype`: 0 where both query and key
    /// are real, minus [`masked_score`] elsewhere (NeMo masks such scores before the softmax).
    pub fn attention_bias(&self, dtype: DType) -> Result<Option<Tensor>> {
        let Some(mask) = &self.mask else {
            return Ok(None);
        };
        let (b, t) = mask.dims2()?;
        let both = mask
            .reshape((b, 1, t, 1))?
            .broadcast_mul(&mask.reshape((b, 1, 1, t))?)?;
        Ok(Some(
            ((both - 1.0)? * masked_score(dtype))?.to_dtype(dtype)?,
        ))
    }
}

/// The magnitude of the bias that removes a masked score from a softmax in f32 and f64. Large
/// enough that `exp` underflows to exactly zero, small enough that a fully masked row stays
/// finite.
pub const MASKED_SCORE: f64 = 1e30;

/// The masking bias for scores in `dtype`.
///
/// [`MASKED_SCORE`] is past f16's largest number (65504): it would round to `-inf`, and a fully
/// masked row (every padded query) would come out of the softmax as `NaN`, which the zeroing of
/// padded frames cannot remove (`NaN * 0` is `NaN`). Reduced precision uses NeMo's own fill
/// value, 10000, instead: `exp(-10000)` is zero in every float format, and a score has to pass
/// 55000 before score plus bias overflows f16. bf16 takes the same value for one rule.
pub fn masked_score(dtype: DType) -> f64 {
    match dtype {
        DType::F16 | DType::BF16 => 1e4,
        _ => MASKED_SCORE,
    }
}

/// Converts the tensor to f32 on the host and returns it flat.
pub fn to_host_f32(x: &Tensor) -> Result<Vec<f32>> {
    x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
}
