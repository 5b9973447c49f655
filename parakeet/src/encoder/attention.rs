//! Relative-position multi-head self-attention (Transformer-XL style), NeMo's
//! `RelPositionMultiHeadAttention` and its local-window variant
//! `RelPositionMultiHeadAttentionLongformer`.
//!
//! The score of query `i` and key `j` is
//! `((q_i + u) · k_j + (q_i + v) · p_{i-j}) / sqrt(d_k)`, where `p_r` is the projected sinusoidal
//! embedding of the relative position `r` and `u`, `v` are learned per-head biases.
//! Full attention builds the whole `time x time` matrix; local attention only lets `|i - j| <= w`
//! and works through blocks of queries, so memory grows linearly with the length of the audio.

use candle_core::{D, DType, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::fused;
use crate::nn::{Dense, FrameMask, Quantization, linear, masked_score, scaled, to_host_f32};

/// Which keys each query may attend to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttentionWindow {
    /// Every frame sees every frame (`rel_pos`).
    Full,
    /// Frames see `w` frames to each side (`rel_pos_local_attn` with `att_context_size [w, w]`).
    Local(usize),
}

/// One layer's `self_attn` module.
///
/// Two rearrangements happen at load time, neither of which changes what is computed:
/// `linear_q`, `linear_k` and `linear_v` become one projection (one matrix product instead of
/// three), and the score scale `1 / sqrt(d_k)` is folded into the query projection and the
/// position biases, since `((q + u) · k + (q + v) · p) * s = (s q + s u) · k + (s q + s v) · p`.
#[derive(Debug, Clone)]
pub struct RelPositionAttention {
    /// `linear_q`, `linear_k`, `linear_v` stacked: `(3 d_model, d_model)`, queries pre-scaled.
    linear_qkv: Dense,
    linear_out: Dense,
    linear_pos: Dense,
    /// `(heads, 1, d_k)`, broadcast over time, pre-scaled.
    pos_bias_u: Tensor,
    pos_bias_v: Tensor,
    /// `pos_bias_u` and `pos_bias_v` on the host, for [`fused`] (f32 CPU models only).
    host_biases: Option<(Vec<f32>, Vec<f32>)>,
    heads: usize,
    d_k: usize,
}

impl RelPositionAttention {
    /// Loads `encoder.layers.N.self_attn` in `vb`'s dtype. The score scale is folded in f32 and
    /// rounded to that dtype once, so reduced precision does not round the weights twice.
    pub fn load(
        d_model: usize,
        heads: usize,
        bias: bool,
        quantization: Option<Quantization>,
        vb: VarBuilder,
    ) -> Result<Self> {
        let d_k = d_model / heads;
        let scale = 1.0 / (d_k as f64).sqrt();
        let dtype = vb.dtype();
        let exact = vb.clone().set_dtype(DType::F32);
        let q = scaled(
            &linear(d_model, d_model, bias, exact.pp("linear_q"))?,
            scale,
        )?;
        let q = Linear::new(
            q.weight().to_dtype(dtype)?,
            q.bias().map(|b| b.to_dtype(dtype)).transpose()?,
        );
        let k = linear(d_model, d_model, bias, vb.pp("linear_k"))?;
        let v = linear(d_model, d_model, bias, vb.pp("linear_v"))?;
        let weight = Tensor::cat(&[q.weight(), k.weight(), v.weight()], 0)?;
        let qkv_bias = match (q.bias(), k.bias(), v.bias()) {
            (Some(q), Some(k), Some(v)) => Some(Tensor::cat(&[q, k, v], 0)?),
            _ => None,
        };
        let pos_bias = |name| {
            (exact.get((heads, d_k), name)? * scale)?
                .to_dtype(dtype)?
                .unsqueeze(1)
        };
        let pos_bias_u = pos_bias("pos_bias_u")?;
        let pos_bias_v = pos_bias("pos_bias_v")?;
        let host_biases = if vb.device().is_cpu() && dtype == DType::F32 {
            Some((to_host_f32(&pos_bias_u)?, to_host_f32(&pos_bias_v)?))
        } else {
            None
        };
        Ok(Self {
            linear_qkv: Dense::new(Linear::new(weight, qkv_bias), quantization)?,
            linear_out: Dense::new(
                linear(d_model, d_model, bias, vb.pp("linear_out"))?,
                quantization,
            )?,
            linear_pos: Dense::new(
                linear(d_model, d_model, false, vb.pp("linear_pos"))?,
                quantization,
            )?,
            pos_bias_u,
            pos_bias_v,
            host_biases,
            heads,
            d_k,
        })
    }

    /// Splits `(b, t, d_model)` into heads: `(b, heads, t, d_k)`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        x.reshape((b, t, self.heads, self.d_k))?
            .transpose(1, 2)?
            .contiguous()
    }

    /// Projects the positional table `(positions, d_model)` into heads: `(1, heads, positions, d_k)`.
    fn project_positions(&self, pos: &Tensor) -> Result<Tensor> {
        self.split_heads(&self.linear_pos.forward(&pos.unsqueeze(0)?)?)
    }

    /// `x`: `(batch, time, d_model)`, already layer-normed; `positions` is the sinusoidal table
    /// from [`super::position::relative_positions`] for this window and length.
    pub fn forward(
        &self,
        x: &Tensor,
        mask: &FrameMask,
        positions: &Tensor,
        window: AttentionWindow,
    ) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        let qkv = self.linear_qkv.forward(x)?;
        let fused = self.host_biases.as_ref().filter(|_| fused::applies(&qkv));
        let [q_u, q_v, k, v] = match fused {
            Some((u, v)) => fused::split_heads(&qkv, self.heads, u, v)?,
            None => {
                let d = self.heads * self.d_k;
                let [q, k, v] = [0, 1, 2].map(|i| self.split_heads(&qkv.narrow(2, i * d, d)?));
                let (q, k, v) = (q?, k?, v?);
                let q_u = q.broadcast_add(&self.pos_bias_u)?;
                let q_v = q.broadcast_add(&self.pos_bias_v)?;
                [q_u, q_v, k, v]
            }
        };
        let context = match window {
            AttentionWindow::Full if fused.is_some() => {
                let p = self.project_positions(positions)?;
                let ac = q_u.matmul(&k.t()?)?;
                let bd = q_v.broadcast_matmul(&p.t()?)?;
                fused::rel_softmax(&ac, &bd, mask.lengths())?.matmul(&v)?
            }
            AttentionWindow::Full => self.full(&q_u, &q_v, &k, &v, mask, positions)?,
            AttentionWindow::Local(w) => self.local(&q_u, &q_v, &k, &v, mask, positions, w)?,
        };
        // Padded queries attend to nothing (NeMo zeroes their attention weights).
        let context = mask.apply(&context.transpose(1, 2)?.reshape((
            b,
            t,
            self.heads * self.d_k,
        ))?)?;
        self.linear_out.forward(&context)
    }

    fn full(
        &self,
        q_u: &Tensor,
        q_v: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &FrameMask,
        positions: &Tensor,
    ) -> Result<Tensor> {
        let p = self.project_positions(positions)?; // (1, h, 2t-1, d_k)
        let ac = q_u.matmul(&k.t()?)?;
        let bd = rel_shift(&q_v.broadcast_matmul(&p.t()?)?)?;
        let mut scores = (ac + bd)?;
        if let Some(bias) = mask.attention_bias(scores.dtype())? {
            scores = scores.broadcast_add(&bias)?;
        }
        candle_nn::ops::softmax_last_dim(&scores)?.matmul(v)
    }

    #[allow(clippy::too_many_arguments)]
    fn local(
        &self,
        q_u: &Tensor,
        q_v: &Tensor,
        k: &Tensor,
        v: &Tensor,
        mask: &FrameMask,
        positions: &Tensor,
        w: usize,
    ) -> Result<Tensor> {
        let (b, h, t, _) = k.dims4()?;
        let block = 2 * w;
        let n_blocks = t.div_ceil(block);
        let padded = n_blocks * block;
        // Keys and values get `w` frames of zeros before and enough after, so that the keys of
        // block `n`, frames `[n*block - w, (n+1)*block + w)`, are one contiguous slice.
        let k = k.pad_with_zeros(2, w, padded - t + w)?;
        let v = v.pad_with_zeros(2, w, padded - t + w)?;
        let q_u = q_u.pad_with_zeros(2, 0, padded - t)?;
        let q_v = q_v.pad_with_zeros(2, 0, padded - t)?;
        let p = self.project_positions(positions)?; // (1, h, 2w+1, d_k)
        let mut out = Vec::with_capacity(n_blocks);
        for n in 0..n_blocks {
            let start = n * block;
            let keys = k.narrow(2, start, block + 2 * w)?;
            let ac = q_u.narrow(2, start, block)?.matmul(&keys.t()?)?; // (b, h, block, block+2w)
            let bd = q_v.narrow(2, start, block)?.broadcast_matmul(&p.t()?)?; // (b, h, block, 2w+1)
            let scores = (ac + skew(&bd, block)?)?;
            let bias = local_bias(mask.lengths(), start, block, w, &scores)?;
            let probs = candle_nn::ops::softmax_last_dim(&scores.broadcast_add(&bias)?)?;
            out.push(probs.matmul(&v.narrow(2, start, block + 2 * w)?)?);
        }
        Tensor::cat(&out, 2)?
            .narrow(2, 0, t)?
            .reshape((b, h, t, self.d_k))
    }
}

/// NeMo's `rel_shift`: turns scores against positions `t-1 ..= -(t-1)` into scores against keys,
/// so that entry `(i, j)` holds the score for relative position `i - j`.
pub(super) fn rel_shift(x: &Tensor) -> Result<Tensor> {
    let (b, h, t, p) = x.dims4()?; // p = 2t - 1
    x.pad_with_zeros(D::Minus1, 1, 0)?
        .reshape((b, h, p + 1, t))?
        .narrow(2, 1, p)?
        .reshape((b, h, t, p))?
        .narrow(3, 0, t)
}

/// Moves row `r` of `(.., rows, 2w+1)` right by `r` columns, into `(.., rows, rows + 2w)`:
/// column `c` of row `r` then holds relative-window slot `c - r`, zero outside the window.
fn skew(x: &Tensor, rows: usize) -> Result<Tensor> {
    let (b, h, r, width) = x.dims4()?;
    debug_assert_eq!(r, rows);
    x.pad_with_zeros(D::Minus1, 0, rows)?
        .reshape((b, h, rows * (width + rows)))?
        .narrow(2, 0, rows * (width + rows - 1))?
        .reshape((b, h, rows, width + rows - 1))
}

/// Additive bias `(batch, 1, block, block + 2w)` for one block of local attention, in the
/// dtype and on the device of `scores`: keys outside `[i - w, i + w]`, before the start or past
/// the item's length are removed.
fn local_bias(
    lengths: &[usize],
    start: usize,
    block: usize,
    w: usize,
    scores: &Tensor,
) -> Result<Tensor> {
    let masked = -masked_score(scores.dtype()) as f32;
    let width = block + 2 * w;
    let mut data = Vec::with_capacity(lengths.len() * block * width);
    for &len in lengths {
        for r in 0..block {
            for c in 0..width {
                // Key frame `start - w + c`; in the window when `0 <= c - r <= 2w`.
                let key = (start + c).checked_sub(w);
                let visible = c >= r && c - r <= 2 * w && key.is_some_and(|j| j < len);
                data.push(if visible { 0.0f32 } else { masked });
            }
        }
    }
    Tensor::from_vec(data, (lengths.len(), 1, block, width), scores.device())?
        .to_dtype(scores.dtype())
}
