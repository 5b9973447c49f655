//! `dw_striding` subsampling: NeMo's `ConvSubsampling` that shortens the mel sequence 8x
//! (2x per stride-2 stage) before the conformer layers.
//!
//! Checkpoint layout (`encoder.pre_encode.*`): `conv.0` is a 3x3 stride-2 `Conv2d(1, C)`, then each
//! further stage is a depthwise 3x3 stride-2 `Conv2d(C, C, groups=C)` (`conv.{2+3i}`) followed by a
//! pointwise `Conv2d(C, C, 1)` (`conv.{3+3i}`), with ReLUs in between; `out` is the linear layer
//! over the flattened (channel, frequency) axes.
//!
//! We keep activations channels-last, `(batch, time, freq, channels)`, so the pointwise
//! convolutions are plain matmuls and the 3x3 ones are nine broadcast multiply-adds.
//! Like NeMo 3's `MaskedConvSequential`, frames past each item's length are zeroed after every
//! convolution, which matters for the last real frames of every utterance.

use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};
use rayon::prelude::*;

use crate::nn::{FrameMask, to_host_f32};

const KERNEL: usize = 3;
const STRIDE: usize = 2;
const PADDING: usize = 1;

/// Output frames per slice of a long input (41 s of audio at 80 ms per frame).
pub const CHUNK_FRAMES: usize = 512;

/// Output length of one stride-2 stage: NeMo's `calc_length` for kernel 3, padding 1 each side.
/// An empty input stays empty (PyTorch's float floor gives `floor(-1/2) + 1 = 0`).
pub fn stage_len(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        (len + 2 * PADDING - KERNEL) / STRIDE + 1
    }
}

/// Output length of the whole subsampling for an input of `len` frames.
pub fn output_len(len: usize, stages: usize) -> usize {
    (0..stages).fold(len, |l, _| stage_len(l))
}

/// A 3x3, stride-2, padding-1 convolution whose every output channel reads one input channel:
/// either the first stage (one input channel) or a depthwise stage.
#[derive(Debug, Clone)]
struct TapConv {
    /// Per tap `(kt, kf)`: the weights of all output channels, shaped `(channels,)`.
    taps: Vec<Tensor>,
    bias: Tensor,
    /// The same weights on the host, `[tap][channel]`, for the CPU kernel.
    host_taps: Vec<f32>,
    host_bias: Vec<f32>,
}

impl TapConv {
    fn load(channels: usize, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get((channels, 1, KERNEL, KERNEL), "weight")?;
        let weight = weight
            .reshape((channels, KERNEL * KERNEL))?
            .t()?
            .contiguous()?;
        let taps = (0..KERNEL * KERNEL)
            .map(|k| weight.get(k))
            .collect::<Result<_>>()?;
        let bias = vb.get(channels, "bias")?;
        Ok(Self {
            taps,
            host_taps: to_host_f32(&weight)?,
            host_bias: to_host_f32(&bias)?,
            bias,
        })
    }

    /// `x`: `(batch, time, freq, c_in)` with `c_in` 1 or equal to the output channels.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() && x.dtype() == DType::F32 {
            self.forward_cpu(x)
        } else {
            self.forward_taps(x)
        }
    }

    /// The convolution as nine broadcast multiply-adds over shifted views: device-agnostic.
    fn forward_taps(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, f, c) = x.dims4()?;
        let (t_out, f_out) = (stage_len(t), stage_len(f));
        // Pad so that padded index `2 * o + k` exists for every output `o` and tap `k`,
        // and the padded length is even: then a reshape splits each axis into (block, phase).
        let x = x
            .pad_with_zeros(1, PADDING, 2 * t_out + 2 - t - PADDING)?
            .pad_with_zeros(2, PADDING, 2 * f_out + 2 - f - PADDING)?
            .reshape((b, t_out + 1, 2, f_out + 1, 2, c))?;
        let mut acc: Option<Tensor> = None;
        for kt in 0..KERNEL {
            let rows = x.narrow(1, kt / 2, t_out)?.narrow(2, kt % 2, 1)?;
            for kf in 0..KERNEL {
                let tap = rows
                    .narrow(3, kf / 2, f_out)?
                    .narrow(4, kf % 2, 1)?
                    .reshape((b, t_out, f_out, c))?;
                let term = tap.broadcast_mul(&self.taps[kt * KERNEL + kf])?;
                acc = Some(match acc {
                    None => term,
                    Some(a) => (a + term)?,
                });
            }
        }
        acc.expect("a 3x3 kernel has taps")
            .broadcast_add(&self.bias)
    }

    /// The same convolution on the CPU in one pass: every output frame accumulates its nine
    /// input cells straight from the input, channels innermost, so the nine full-size
    /// temporaries of [`Self::forward_taps`] (200 MB each for a minute of the 0.6B models'
    /// first stage) never exist.
    fn forward_cpu(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, f, c_in) = x.dims4()?;
        let c_out = self.host_bias.len();
        let (t_out, f_out) = (stage_len(t), stage_len(f));
        let mut out = vec![0f32; b * t_out * f_out * c_out];
        super::fused::with_slice(x, |input| {
            out.par_chunks_mut(f_out * c_out)
                .enumerate()
                .for_each(|(row, dst)| {
                    let (item, to) = (row / t_out, row % t_out);
                    for (fo, acc) in dst.chunks_exact_mut(c_out).enumerate() {
                        acc.copy_from_slice(&self.host_bias);
                        for kt in 0..KERNEL {
                            // Padded index `2 * o + k` is input index `2 * o + k - 1` when inside.
                            let Some(ti) = (2 * to + kt).checked_sub(PADDING).filter(|&i| i < t)
                            else {
                                continue;
                            };
                            for kf in 0..KERNEL {
                                let Some(fi) =
                                    (2 * fo + kf).checked_sub(PADDING).filter(|&i| i < f)
                                else {
                                    continue;
                                };
                                let w = &self.host_taps[(kt * KERNEL + kf) * c_out..][..c_out];
                                let cell = &input[((item * t + ti) * f + fi) * c_in..][..c_in];
                                if c_in == 1 {
                                    acc.iter_mut().zip(w).for_each(|(a, w)| *a += cell[0] * w);
                                } else {
                                    acc.iter_mut()
                                        .zip(w)
                                        .zip(cell)
                                        .for_each(|((a, w), v)| *a += v * w);
                                }
                            }
                        }
                    }
                });
        })?;
        Tensor::from_vec(out, (b, t_out, f_out, c_out), x.device())
    }
}

/// One stage after the first: depthwise stride-2 convolution, then pointwise convolution.
#[derive(Debug, Clone)]
struct Stage {
    depthwise: TapConv,
    pointwise: Linear,
}

/// The `dw_striding` subsampling module.
#[derive(Debug, Clone)]
pub struct Subsampling {
    first: TapConv,
    stages: Vec<Stage>,
    out: Linear,
}

impl Subsampling {
    /// Loads `encoder.pre_encode` for `factor`x subsampling of `feat_in` mel bins into `d_model`.
    pub fn load(
        feat_in: usize,
        d_model: usize,
        channels: usize,
        factor: usize,
        vb: VarBuilder,
    ) -> Result<Self> {
        if !factor.is_power_of_two() || factor < 2 {
            candle_core::bail!("subsampling factor {factor} is not a power of two");
        }
        let n_stages = factor.trailing_zeros() as usize;
        let conv = vb.pp("conv");
        let first = TapConv::load(channels, conv.pp("0"))?;
        let stages = (1..n_stages)
            .map(|i| {
                let depthwise = TapConv::load(channels, conv.pp(2 + 3 * (i - 1)))?;
                let pw = conv.pp(3 + 3 * (i - 1));
                let weight = pw
                    .get((channels, channels, 1, 1), "weight")?
                    .reshape((channels, channels))?;
                let pointwise = Linear::new(weight, Some(pw.get(channels, "bias")?));
                Ok(Stage {
                    depthwise,
                    pointwise,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // NeMo flattens (channel, freq) channel-major; we flatten freq-major, so permute the
        // columns of the output projection once here.
        let f_out = output_len(feat_in, n_stages);
        let out_vb = vb.pp("out");
        let weight = out_vb
            .get((d_model, channels * f_out), "weight")?
            .reshape((d_model, channels, f_out))?
            .transpose(1, 2)?
            .reshape((d_model, f_out * channels))?;
        let out = Linear::new(weight, Some(out_vb.get(d_model, "bias")?));
        Ok(Self { first, stages, out })
    }

    /// Number of stride-2 stages.
    pub fn n_stages(&self) -> usize {
        self.stages.len() + 1
    }

    /// `mel`: `(batch, n_mels, frames)` with `lengths` valid frames per item.
    /// Returns `(batch, frames / factor, d_model)` and the subsampled lengths.
    ///
    /// Long inputs go through in slices of [`CHUNK_FRAMES`] output frames, so that the
    /// first stage's activations (`channels x freq/2` per frame: 64 MB a minute for the 0.6B
    /// models) never exist for the whole hour at once. Each slice starts one output frame early
    /// and ends one late, covering the receptive field, and drops those frames again: the result
    /// is what one pass would give, up to the rounding of differently blocked matrix products.
    pub fn forward(&self, mel: &Tensor, lengths: &[usize]) -> Result<(Tensor, Vec<usize>)> {
        let stages = self.n_stages();
        let factor = 1 << stages;
        let frames = mel.dim(2)?;
        let total = output_len(frames, stages);
        let out_lengths = lengths.iter().map(|&l| output_len(l, stages)).collect();
        if total <= CHUNK_FRAMES {
            return Ok((self.forward_slice(mel, lengths)?, out_lengths));
        }
        let mut pieces = Vec::with_capacity(total.div_ceil(CHUNK_FRAMES));
        for first in (0..total).step_by(CHUNK_FRAMES) {
            let count = CHUNK_FRAMES.min(total - first);
            let start = first.saturating_sub(1) * factor;
            let end = ((first + count + 1) * factor).min(frames);
            let local: Vec<usize> = lengths.iter().map(|&l| l.saturating_sub(start)).collect();
            let x = self.forward_slice(&mel.narrow(2, start, end - start)?, &local)?;
            pieces.push(x.narrow(1, first - start / factor, count)?);
        }
        Ok((Tensor::cat(&pieces, 1)?, out_lengths))
    }

    /// The convolution stack and output projection over one stretch of mel frames.
    fn forward_slice(&self, mel: &Tensor, lengths: &[usize]) -> Result<Tensor> {
        let device = mel.device();
        let mut lengths = lengths.to_vec();
        let x = mel.transpose(1, 2)?.unsqueeze(3)?; // (b, t, f, 1)
        let mut x = FrameMask::new(&lengths, x.dim(1)?, device)?.apply(&x)?;

        x = self.first.forward(&x)?;
        lengths.iter_mut().for_each(|l| *l = stage_len(*l));
        let mut mask = FrameMask::new(&lengths, x.dim(1)?, device)?;
        x = mask.apply(&x)?.relu()?;
        for stage in &self.stages {
            x = stage.depthwise.forward(&x)?;
            lengths.iter_mut().for_each(|l| *l = stage_len(*l));
            mask = FrameMask::new(&lengths, x.dim(1)?, device)?;
            x = mask.apply(&x)?;
            x = mask.apply(&stage.pointwise.forward(&x)?)?.relu()?;
        }
        let (b, t, f, c) = x.dims4()?;
        self.out.forward(&x.reshape((b, t, f * c))?)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use candle_core::{DType, Device, Tensor};

    use super::*;

    /// A subsampling module with random weights: 80 mels, 8 channels, 8x, into 16 features.
    fn random_module() -> Subsampling {
        let dev = Device::Cpu;
        let mut t = HashMap::new();
        let mut put = |name: &str, shape: &[usize]| {
            t.insert(
                name.to_string(),
                Tensor::randn(0f32, 0.3, shape, &dev).unwrap(),
            );
        };
        put("conv.0.weight", &[8, 1, 3, 3]);
        put("conv.0.bias", &[8]);
        for (dw, pw) in [(2, 3), (5, 6)] {
            put(&format!("conv.{dw}.weight"), &[8, 1, 3, 3]);
            put(&format!("conv.{dw}.bias"), &[8]);
            put(&format!("conv.{pw}.weight"), &[8, 8, 1, 1]);
            put(&format!("conv.{pw}.bias"), &[8]);
        }
        put("out.weight", &[16, 8 * 10]);
        put("out.bias", &[16]);
        Subsampling::load(80, 16, 8, 8, VarBuilder::from_tensors(t, DType::F32, &dev)).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        let diff = (a - b).unwrap().abs().unwrap().flatten_all().unwrap();
        diff.max(0).unwrap().to_scalar::<f32>().unwrap()
    }

    #[test]
    fn the_cpu_kernel_matches_the_tap_formulation() {
        let module = random_module();
        for (c, conv) in [(1, &module.first), (8, &module.stages[0].depthwise)] {
            for (t, f) in [(37, 80), (38, 41), (1, 3)] {
                let x = Tensor::randn(0f32, 1.0, (2, t, f, c), &Device::Cpu).unwrap();
                let fast = conv.forward_cpu(&x).unwrap();
                let taps = conv.forward_taps(&x).unwrap();
                assert_eq!(fast.dims(), taps.dims());
                assert!(max_abs_diff(&fast, &taps) < 1e-5, "c_in {c}, {t}x{f}");
            }
        }
    }

    #[test]
    fn lengths_follow_nemo() {
        assert_eq!(
            [0, 1, 2, 3, 343, 344].map(|l| output_len(l, 3)),
            [0, 1, 1, 1, 43, 43]
        );
    }

    /// Long inputs are processed in slices; the seams must not show.
    #[test]
    fn slices_give_exactly_the_single_pass_result() {
        let module = random_module();
        let frames = 8 * CHUNK_FRAMES * 2 + 37;
        let mel = Tensor::randn(0f32, 1.0, (2, 80, frames), &Device::Cpu).unwrap();
        let lengths = [frames - 5, frames - 3000];
        let (sliced, out_lengths) = module.forward(&mel, &lengths).unwrap();
        let whole = module.forward_slice(&mel, &lengths).unwrap();
        assert_eq!(sliced.dims(), whole.dims());
        assert_eq!(out_lengths, lengths.map(|l| output_len(l, 3)));
        assert!(max_abs_diff(&sliced, &whole) < 1e-5);
    }
}
