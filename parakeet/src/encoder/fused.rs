//! CPU kernels for the element-wise work between the encoder's matrix products.
//!
//! On the CPU, candle runs every element-wise operation as its own pass over memory, most of
//! them on one thread, and a conformer layer chains a dozen of them: the residual adds and
//! layer norms, Swish, GLU, the nine taps of the depthwise convolution, batch norm, the
//! relative-position shift (three copies of a `(heads, t, 2t-1)` matrix) and the softmax.
//! Measured on 60 s of audio with the 0.6B model, those passes took about as long as the
//! matrix products themselves and kept only one of two cores busy.
//!
//! Each kernel here does one chain in a single pass over its input, split across the rayon
//! pool by rows. They compute exactly what the device-generic tensor code in `layer.rs` and
//! `attention.rs` computes (the same formulas in f32, in the same order where it changes
//! rounding), and run only for f32 tensors on the CPU; every other device and dtype keeps the
//! generic path, which the tests compare these kernels against.

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

/// Whether the fused kernels apply to `x`: f32 on the CPU.
pub fn applies(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// Calls `f` with the contents of `x`, an f32 tensor on the CPU, made contiguous if it is not.
pub(super) fn with_slice<R>(x: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
    let x = x.contiguous()?;
    let (storage, layout) = x.storage_and_layout();
    let candle_core::Storage::Cpu(cpu) = &*storage else {
        candle_core::bail!("fused kernel called on a tensor outside the CPU")
    };
    let (start, end) = layout.contiguous_offsets().expect("made contiguous above");
    Ok(f(&cpu.as_slice::<f32>()?[start..end]))
}

/// A layer norm's parameters on the host, applied as candle's CPU kernel does (one pass for
/// the sum and the sum of squares, in f32), so that the fused and the generic paths agree.
#[derive(Debug, Clone)]
pub struct HostNorm {
    weight: Vec<f32>,
    bias: Vec<f32>,
    eps: f32,
}

impl HostNorm {
    /// Copies `norm`'s weight and bias (zero when it has none) to the host.
    pub fn new(norm: &candle_nn::LayerNorm, eps: f64) -> Result<Self> {
        let weight = crate::nn::to_host_f32(norm.weight())?;
        let bias = match norm.bias() {
            Some(b) => crate::nn::to_host_f32(b)?,
            None => vec![0.0; weight.len()],
        };
        Ok(Self {
            weight,
            bias,
            eps: eps as f32,
        })
    }

    fn apply(&self, src: &[f32], dst: &mut [f32]) {
        let n = src.len() as f32;
        let (sum, sum2) = src
            .iter()
            .fold((0f32, 0f32), |(s, s2), &v| (s + v, s2 + v * v));
        let mean = sum / n;
        let inv_std = (sum2 / n - mean * mean + self.eps).sqrt().recip();
        for (((d, &v), &w), &b) in dst.iter_mut().zip(src).zip(&self.weight).zip(&self.bias) {
            *d = (v - mean) * inv_std * w + b;
        }
    }

    /// `x + y` and its layer norm, in one pass: `(sum, norm(sum))`, both shaped like `x`.
    pub fn add_norm(&self, x: &Tensor, y: &Tensor) -> Result<(Tensor, Tensor)> {
        let d = self.weight.len();
        let mut sum = with_slice(x, <[f32]>::to_vec)?;
        let mut normed = vec![0f32; sum.len()];
        with_slice(y, |y| {
            sum.par_chunks_mut(d)
                .zip(normed.par_chunks_mut(d))
                .zip(y.par_chunks(d))
                .for_each(|((s, n), y)| {
                    s.iter_mut().zip(y).for_each(|(s, y)| *s += y);
                    self.apply(s, n);
                });
        })?;
        let shape = x.shape().clone();
        Ok((
            Tensor::from_vec(sum, shape.clone(), x.device())?,
            Tensor::from_vec(normed, shape, x.device())?,
        ))
    }
}

/// `e^x` without a library call, so that loops over it vectorise (the C library's `expf`
/// is one call per element, and the encoder takes about 300 million of them per minute of
/// audio in its softmaxes, Swishes and GLUs).
///
/// Cody–Waite reduction `x = n ln 2 + r` with `|r| <= ln 2 / 2` and Cephes' degree-6
/// polynomial for `e^r`, as in Cephes `expf.c`: within 2 ulp of `expf` over the range that
/// matters. Inputs are clamped to `[-87.3, 88.0]`, so the result is always a finite normal
/// number: below that, where `expf` underflows, it returns about `1e-38` instead of a
/// subnormal or zero, which no softmax, sigmoid or Swish here can tell apart.
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split in two so that `n * LN2_HI` is exact for every `n` in range.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a branch.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 5e-1;
    let e_r = p * r * r + r + 1.0;
    e_r * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

/// `x * sigmoid(x)` (Swish, SiLU), as candle computes it: `x / (1 + e^-x)`.
#[inline(always)]
fn swish(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// Swish over every element, across threads.
pub fn swish_all(x: &Tensor) -> Result<Tensor> {
    let out = with_slice(x, |src| {
        let mut out = vec![0f32; src.len()];
        out.par_chunks_mut(1 << 14)
            .zip(src.par_chunks(1 << 14))
            .for_each(|(d, s)| d.iter_mut().zip(s).for_each(|(d, &s)| *d = swish(s)));
        out
    })?;
    Tensor::from_vec(out, x.shape().clone(), x.device())
}

/// The convolution module between its two pointwise convolutions: GLU over the channel
/// halves of `x` `(batch, time, 2 channels)`, padded frames zeroed, the depthwise
/// convolution over time ("same" zero padding), batch norm and Swish.
///
/// `taps` is `(kernel, channels)` row-major with the batch norm's scale folded in, `shift`
/// the batch norm's shift plus its scale times the convolution's bias; `lengths` are the
/// valid frames per item. Returns `(batch, time, channels)`.
pub fn conv_module(x: &Tensor, lengths: &[usize], taps: &[f32], shift: &[f32]) -> Result<Tensor> {
    let (b, t, two_c) = x.dims3()?;
    let c = two_c / 2;
    let kernel = taps.len() / c;
    let half = kernel / 2;
    // GLU first, into its own buffer: each of its values feeds `kernel` outputs, and the
    // sigmoid is the expensive part.
    let mut glu = vec![0f32; b * t * c];
    with_slice(x, |src| {
        glu.par_chunks_mut(c)
            .zip(src.par_chunks(two_c))
            .enumerate()
            .for_each(|(row, (g, s))| {
                if row % t < lengths[row / t] {
                    let (a, gate) = s.split_at(c);
                    for ((g, &a), &gate) in g.iter_mut().zip(a).zip(gate) {
                        *g = a * (1.0 / (1.0 + exp(-gate)));
                    }
                }
            });
    })?;
    let mut out = vec![0f32; b * t * c];
    out.par_chunks_mut(c).enumerate().for_each(|(row, dst)| {
        let (item, frame) = (row / t, row % t);
        dst.copy_from_slice(shift);
        for k in 0..kernel {
            // Output frame `frame` reads input frame `frame + k - half`.
            let Some(src) = (frame + k).checked_sub(half).filter(|&f| f < t) else {
                continue;
            };
            let g = &glu[(item * t + src) * c..][..c];
            let w = &taps[k * c..][..c];
            dst.iter_mut()
                .zip(g)
                .zip(w)
                .for_each(|((d, &g), &w)| *d += g * w);
        }
        dst.iter_mut().for_each(|d| *d = swish(*d));
    });
    Tensor::from_vec(out, (b, t, c), x.device())
}

/// Queries, keys and values in heads from the stacked projection `qkv` `(batch, time,
/// 3 d_model)`: `(q + u, q + v, k, v)`, each `(batch, heads, time, d_k)`, in one pass.
/// `bias_u` and `bias_v` are the position biases `(heads, d_k)` row-major.
pub fn split_heads(
    qkv: &Tensor,
    heads: usize,
    bias_u: &[f32],
    bias_v: &[f32],
) -> Result<[Tensor; 4]> {
    let (b, t, three_d) = qkv.dims3()?;
    let d = three_d / 3;
    let d_k = d / heads;
    let mut outs: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0f32; b * t * d]);
    with_slice(qkv, |src| {
        let [q_u, q_v, k, v] = &mut outs;
        // One task per (item, head): its rows are contiguous in every output.
        q_u.par_chunks_mut(t * d_k)
            .zip(q_v.par_chunks_mut(t * d_k))
            .zip(k.par_chunks_mut(t * d_k))
            .zip(v.par_chunks_mut(t * d_k))
            .enumerate()
            .for_each(|(bh, (((q_u, q_v), k), v))| {
                let (item, head) = (bh / heads, bh % heads);
                let u = &bias_u[head * d_k..][..d_k];
                let pv = &bias_v[head * d_k..][..d_k];
                for frame in 0..t {
                    let row = &src[(item * t + frame) * three_d + head * d_k..];
                    let dst = frame * d_k..(frame + 1) * d_k;
                    let q = &row[..d_k];
                    for (i, &q) in q.iter().enumerate() {
                        q_u[dst.start + i] = q + u[i];
                        q_v[dst.start + i] = q + pv[i];
                    }
                    k[dst.clone()].copy_from_slice(&row[d..d + d_k]);
                    v[dst].copy_from_slice(&row[2 * d..2 * d + d_k]);
                }
            });
    })?;
    let shape = (b, heads, t, d_k);
    let [a, b_, c, d_] = outs;
    Ok([
        Tensor::from_vec(a, shape, qkv.device())?,
        Tensor::from_vec(b_, shape, qkv.device())?,
        Tensor::from_vec(c, shape, qkv.device())?,
        Tensor::from_vec(d_, shape, qkv.device())?,
    ])
}

/// Attention weights of full relative-position attention: `softmax(ac + rel_shift(bd))` with
/// padded keys removed, without building the shifted matrix.
///
/// `ac` is `(batch, heads, t, t)` (content scores), `bd` `(batch or 1, heads, t, 2t-1)` (scores
/// against relative positions `t-1 ..= -(t-1)`), so the score of query `i` and key `j` is
/// `ac[i, j] + bd[i, t-1-i+j]` (NeMo's `rel_shift`). Keys at or past an item's length get
/// weight zero; so does every key of a padded query, whose output the caller zeroes anyway.
pub fn rel_softmax(ac: &Tensor, bd: &Tensor, lengths: &[usize]) -> Result<Tensor> {
    let (b, h, t, _) = ac.dims4()?;
    let p = 2 * t - 1;
    let bd_items = bd.dim(0)?;
    let mut out = with_slice(ac, <[f32]>::to_vec)?;
    with_slice(bd, |bd| {
        out.par_chunks_mut(t).enumerate().for_each(|(row, dst)| {
            let (bh, i) = (row / t, row % t);
            let item = bh / h;
            let len = lengths[item].min(t);
            if i >= len {
                dst.fill(0.0);
                return;
            }
            let bd_row = (if bd_items == 1 { bh % h } else { bh }) * t + i;
            let shifted = &bd[bd_row * p + (t - 1 - i)..][..len];
            let (real, padded) = dst.split_at_mut(len);
            let mut max = f32::NEG_INFINITY;
            for (s, &r) in real.iter_mut().zip(shifted) {
                *s += r;
                max = max.max(*s);
            }
            let mut sum = 0f32;
            for s in real.iter_mut() {
                *s = exp(*s - max);
                sum += *s;
            }
            real.iter_mut().for_each(|s| *s /= sum);
            padded.fill(0.0);
        });
    })?;
    Tensor::from_vec(out, (b, h, t, t), ac.device())
}

#[cfg(test)]
mod tests {
    use candle_core::{D, Device, Module, Tensor};

    use super::*;
    use crate::nn::FrameMask;

    fn random(shape: &[usize], seed: u64) -> Tensor {
        // A small LCG: deterministic inputs in [-2, 2) without a random-number crate.
        let n: usize = shape.iter().product();
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let data: Vec<f32> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect();
        Tensor::from_vec(data, shape, &Device::Cpu).unwrap()
    }

    fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
        assert_eq!(a.dims(), b.dims());
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn exp_is_within_a_few_ulp_of_the_library_exp() {
        let mut worst = 0f32;
        for i in 0..=200_000 {
            let x = -87.0 + 175.0 * i as f32 / 200_000.0;
            let (ours, libm) = (exp(x), x.exp());
            worst = worst.max(((ours - libm) / libm).abs());
        }
        assert!(worst < 3.0 * f32::EPSILON, "worst relative error {worst:e}");
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-37);
        assert!(exp(1000.0).is_finite());
        assert!(swish(-1000.0).abs() < 1e-30 && swish(1000.0) == 1000.0);
    }

    /// Two items, the second padded: the kernels must treat padded frames as the generic
    /// tensor code does.
    const LENGTHS: [usize; 2] = [13, 9];
    const T: usize = 13;

    #[test]
    fn rel_softmax_matches_shift_add_mask_softmax() {
        let (b, h) = (2, 3);
        let ac = random(&[b, h, T, T], 1);
        let bd = random(&[b, h, T, 2 * T - 1], 2);
        let mask = FrameMask::new(&LENGTHS, T, &Device::Cpu).unwrap();
        let scores = (&ac + super::super::attention::rel_shift(&bd).unwrap()).unwrap();
        let scores = scores
            .broadcast_add(&mask.attention_bias(DType::F32).unwrap().unwrap())
            .unwrap();
        let expected = candle_nn::ops::softmax_last_dim(&scores).unwrap();
        let ours = rel_softmax(&ac, &bd, &LENGTHS).unwrap();
        // Padded queries: the generic path spreads them uniformly, ours zeroes them; both are
        // zeroed by the caller, so compare real queries only.
        for (item, &len) in LENGTHS.iter().enumerate() {
            let real = |x: &Tensor| x.get(item).unwrap().narrow(1, 0, len).unwrap();
            assert!(max_abs_diff(&real(&ours), &real(&expected)) < 1e-6);
        }
        let padded_query = ours.get(1).unwrap().narrow(1, 9, 4).unwrap();
        assert_eq!(
            padded_query
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap(),
            0.0
        );
    }

    #[test]
    fn conv_module_matches_glu_mask_depthwise_batch_norm_swish() {
        let (b, c, kernel) = (2, 8, 9);
        let x = random(&[b, T, 2 * c], 3);
        let taps = random(&[kernel, c], 4);
        let shift = random(&[c], 5);
        let mask = FrameMask::new(&LENGTHS, T, &Device::Cpu).unwrap();
        let halves = x.chunk(2, D::Minus1).unwrap();
        let glu = halves[0]
            .mul(&candle_nn::ops::sigmoid(&halves[1]).unwrap())
            .unwrap();
        let padded = mask.apply(&glu).unwrap().pad_with_zeros(1, 4, 4).unwrap();
        let mut acc = shift
            .reshape((1, 1, c))
            .unwrap()
            .broadcast_as((b, T, c))
            .unwrap();
        for k in 0..kernel {
            let term = padded
                .narrow(1, k, T)
                .unwrap()
                .broadcast_mul(&taps.get(k).unwrap())
                .unwrap();
            acc = (acc + term).unwrap();
        }
        let expected = candle_nn::ops::silu(&acc).unwrap();
        let host = |t: &Tensor| crate::nn::to_host_f32(t).unwrap();
        let ours = conv_module(&x, &LENGTHS, &host(&taps), &host(&shift)).unwrap();
        assert!(max_abs_diff(&ours, &expected) < 1e-5);
    }

    #[test]
    fn split_heads_matches_reshape_transpose_and_bias() {
        let (b, heads, d_k) = (2, 3, 4);
        let d = heads * d_k;
        let qkv = random(&[b, T, 3 * d], 6);
        let (u, v) = (random(&[heads, d_k], 7), random(&[heads, d_k], 8));
        let host = |t: &Tensor| crate::nn::to_host_f32(t).unwrap();
        let ours = split_heads(&qkv, heads, &host(&u), &host(&v)).unwrap();
        let part = |i: usize| {
            qkv.narrow(2, i * d, d)
                .unwrap()
                .reshape((b, T, heads, d_k))
                .unwrap()
                .transpose(1, 2)
                .unwrap()
        };
        let bias = |x: &Tensor| x.unsqueeze(1).unwrap();
        let expected = [
            part(0).broadcast_add(&bias(&u)).unwrap(),
            part(0).broadcast_add(&bias(&v)).unwrap(),
            part(1),
            part(2),
        ];
        for (ours, expected) in ours.iter().zip(&expected) {
            assert_eq!(max_abs_diff(ours, expected), 0.0);
        }
    }

    #[test]
    fn add_norm_matches_add_then_layer_norm() {
        let d = 16;
        let (x, y) = (random(&[2, T, d], 9), random(&[2, T, d], 10));
        let norm = candle_nn::LayerNorm::new(random(&[d], 11), random(&[d], 12), 1e-5);
        let (sum, normed) = HostNorm::new(&norm, 1e-5)
            .unwrap()
            .add_norm(&x, &y)
            .unwrap();
        let expected_sum = (&x + &y).unwrap();
        assert_eq!(max_abs_diff(&sum, &expected_sum), 0.0);
        assert!(max_abs_diff(&normed, &norm.forward(&expected_sum).unwrap()) < 1e-5);
        let silu = candle_nn::ops::silu(&x).unwrap();
        assert!(max_abs_diff(&swish_all(&x).unwrap(), &silu) < 1e-6);
    }
}
