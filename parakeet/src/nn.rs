//! Small building blocks shared by the encoder and the heads: layers loaded under their NeMo
//! names, and the padding masks that keep padded frames from leaking into real ones.

use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::{GgmlDType, QMatMul};
use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{LayerNorm, Linear, VarBuilder};
use rayon::prelude::*;

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

/// How the encoder's dense layers hold their weights when not in float
/// ([`crate::LoadOptions::quantization`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// 8-bit integer weights in blocks of 32 along the input dimension, one f16 scale per
    /// block (ggml's `Q8_0`, candle's [`GgmlDType::Q8_0`]); activations are quantised to 8 bits
    /// per row on the fly and the products run as integer dot products (AVX512-VNNI where the
    /// CPU has it). CPU only. A quarter of f32's weight memory.
    Int8,
}

impl Quantization {
    /// `"int8"` (or `"q8_0"`), as `--quantization` / `WARBLE_QUANTIZATION` take it; `"none"`,
    /// `"f32"` or an empty string is no quantization.
    ///
    /// # Errors
    ///
    /// A message naming the accepted values, for anything else.
    pub fn parse(text: &str) -> std::result::Result<Option<Self>, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "f32" => Ok(None),
            "int8" | "q8_0" => Ok(Some(Self::Int8)),
            other => Err(format!(
                "unknown quantization {other:?}: use int8, or none for float weights"
            )),
        }
    }
}

/// A dense layer `y = x W^T + b`: float weights ([`Linear`]) or quantized ones.
#[derive(Debug, Clone)]
pub enum Dense {
    /// Weights in the encoder's float dtype.
    Float(Linear),
    /// [`Quantization::Int8`] weights, the bias in f32.
    Int8 {
        weight: QMatMul,
        bias: Option<Tensor>,
        /// Zero columns appended to the input: `Q8_0` blocks are 32 wide, and a layer whose
        /// input width is not a multiple of 32 (the small test models' 80) is quantized with
        /// zero-padded rows.
        pad: usize,
    },
}

impl Dense {
    /// `layer` as it is, or quantized. Quantizing rounds the weight once, after any folding
    /// was done on the float weight.
    pub fn new(layer: Linear, quantization: Option<Quantization>) -> Result<Self> {
        let Some(Quantization::Int8) = quantization else {
            return Ok(Self::Float(layer));
        };
        let weight = layer.weight().to_dtype(DType::F32)?;
        let (_, in_dim) = weight.dims2()?;
        let block = GgmlDType::Q8_0.block_size();
        let pad = in_dim.next_multiple_of(block) - in_dim;
        let weight = weight.pad_with_zeros(1, 0, pad)?;
        let dims = weight.dims().to_vec();
        let blocks = q8_0_blocks(&to_host_f32(&weight)?);
        let weight = qtensor_from_ggml(GgmlDType::Q8_0, &blocks, dims, weight.device())?;
        Ok(Self::Int8 {
            weight: QMatMul::from_qtensor(weight)?,
            bias: layer.bias().map(|b| b.to_dtype(DType::F32)).transpose()?,
            pad,
        })
    }
}

/// `values` as ggml `Q8_0` blocks, in ggml's byte layout (per 32 values: the f16 scale
/// `max |x| / 127`, little-endian, then the 32 values divided by it and rounded half away from
/// zero, as `i8`), which candle reads with [`qtensor_from_ggml`].
///
/// This is what candle's `QTensor::quantize` computes, across threads and without a C library
/// call per value: its `round` is one, and quantizing the 0.6B model's 600 million weights
/// with it took four seconds of a load that otherwise takes one and a half.
fn q8_0_blocks(values: &[f32]) -> Vec<u8> {
    const BLOCK: usize = 32;
    const BYTES: usize = 2 + BLOCK;
    let mut out = vec![0u8; values.len() / BLOCK * BYTES];
    out.par_chunks_mut(BYTES * 256)
        .zip(values.par_chunks(BLOCK * 256))
        .for_each(|(out, values)| {
            for (out, xs) in out.chunks_exact_mut(BYTES).zip(values.chunks_exact(BLOCK)) {
                let amax = xs.iter().fold(0f32, |m, x| m.max(x.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out[..2].copy_from_slice(&half::f16::from_f32(d).to_le_bytes());
                for (q, &x) in out[2..].iter_mut().zip(xs) {
                    let v = x * id;
                    // Truncating `v ± 0.5` rounds half away from zero, like `f32::round`.
                    *q = ((v + 0.5f32.copysign(v)) as i8) as u8;
                }
            }
        });
    out
}

impl Module for Dense {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Self::Float(layer) => layer.forward(x),
            Self::Int8 { weight, bias, pad } => {
                let x = if *pad > 0 {
                    x.pad_with_zeros(D::Minus1, 0, *pad)?
                } else {
                    x.clone()
                };
                let y = weight.forward(&x)?;
                match bias {
                    Some(b) => y.broadcast_add(b),
                    None => Ok(y),
                }
            }
        }
    }
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

/// Inference-mode `BatchNorm1d` as one scale and one shift per channel, in f32:
/// `y = x * scale + shift` with `scale = weight / sqrt(running_var + eps)` and
/// `shift = bias - running_mean * scale`.
///
/// The fold runs in f32 whatever `vb`'s dtype; callers fold further (into a convolution's
/// taps) and round to their dtype once: in f16 the epsilon `1e-5` is subnormal and a small
/// running variance would lose most of its bits before the square root.
pub fn batch_norm_affine(channels: usize, vb: VarBuilder) -> Result<(Tensor, Tensor)> {
    let vb = vb.set_dtype(DType::F32);
    let weight = vb.get(channels, "weight")?;
    let bias = vb.get(channels, "bias")?;
    let mean = vb.get(channels, "running_mean")?;
    let var = vb.get(channels, "running_var")?;
    let scale = weight.div(&(var + 1e-5)?.sqrt()?)?;
    let shift = (bias - mean.mul(&scale)?)?;
    Ok((scale, shift))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantization_names_parse_and_others_are_refused_clearly() {
        for none in ["", "none", "F32", " none "] {
            assert_eq!(Quantization::parse(none), Ok(None));
        }
        for int8 in ["int8", "INT8", "q8_0"] {
            assert_eq!(Quantization::parse(int8), Ok(Some(Quantization::Int8)));
        }
        let err = Quantization::parse("int4").unwrap_err();
        assert!(err.contains("int4") && err.contains("int8"), "{err}");
    }

    #[test]
    fn q8_0_blocks_are_candles_quantization() {
        let x = Tensor::randn(0f32, 1.0, (64, 512), &Device::Cpu).unwrap();
        let ours = qtensor_from_ggml(
            GgmlDType::Q8_0,
            &q8_0_blocks(&to_host_f32(&x).unwrap()),
            vec![64, 512],
            &Device::Cpu,
        )
        .unwrap();
        let candle = candle_core::quantized::QTensor::quantize(&x, GgmlDType::Q8_0).unwrap();
        let dequantized = |q: &candle_core::quantized::QTensor| {
            to_host_f32(&q.dequantize(&Device::Cpu).unwrap()).unwrap()
        };
        assert_eq!(dequantized(&ours), dequantized(&candle));
    }

    /// A layer whose input width is no multiple of 32 is quantized with padded rows and gives
    /// what the float layer gives, to 8-bit precision.
    #[test]
    fn an_int8_dense_layer_of_any_width_stays_close_to_float() {
        let device = Device::Cpu;
        for in_dim in [80, 256] {
            let weight = Tensor::randn(0f32, 0.1, (48, in_dim), &device).unwrap();
            let bias = Tensor::randn(0f32, 0.1, 48, &device).unwrap();
            let x = Tensor::randn(0f32, 1.0, (2, 7, in_dim), &device).unwrap();
            let float = Linear::new(weight, Some(bias));
            let expected = float.forward(&x).unwrap();
            let int8 = Dense::new(float, Some(Quantization::Int8)).unwrap();
            assert!(matches!(int8, Dense::Int8 { .. }));
            let diff = (int8.forward(&x).unwrap() - &expected).unwrap();
            let rel = (diff
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                / expected
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap())
            .sqrt();
            assert!(rel < 0.02, "width {in_dim}: relative error {rel}");
        }
    }
}
