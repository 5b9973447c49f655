//! Dense layers evaluated on the host.
//!
//! Greedy transducer decoding is a loop of one-token steps whose every step depends on the last:
//! a few small matrix-vector products each. Launching tensor ops for them costs more than the
//! arithmetic, on a GPU as on a CPU, so the prediction and joint networks run here on plain
//! slices while the encoder stays on the device.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::nn::to_host_f32;

/// A linear layer `y = W x + b` with `W` stored row-major as `(out, in)`.
#[derive(Debug, Clone)]
pub struct HostLinear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    in_dim: usize,
    out_dim: usize,
}

impl HostLinear {
    /// Loads `weight` (and `bias` if present) from `vb`.
    pub fn load(in_dim: usize, out_dim: usize, vb: &VarBuilder) -> Result<Self> {
        let bias = if vb.contains_tensor("bias") {
            Some(vb.get(out_dim, "bias")?)
        } else {
            None
        };
        Self::from_tensors(&vb.get((out_dim, in_dim), "weight")?, bias.as_ref())
    }

    /// Builds the layer from a `(out, in)` weight and an optional bias.
    pub fn from_tensors(weight: &Tensor, bias: Option<&Tensor>) -> Result<Self> {
        let (out_dim, in_dim) = weight.dims2()?;
        let bias = match bias {
            Some(b) => to_host_f32(b)?,
            None => vec![0.0; out_dim],
        };
        Ok(Self {
            weight: to_host_f32(weight)?,
            bias,
            in_dim,
            out_dim,
        })
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.out_dim
    }

    /// `out = W x + b`.
    pub fn forward_into(&self, x: &[f32], out: &mut [f32]) {
        debug_assert_eq!(x.len(), self.in_dim);
        for ((row, b), o) in self
            .weight
            .chunks_exact(self.in_dim)
            .zip(&self.bias)
            .zip(out.iter_mut())
        {
            *o = dot(row, x) + b;
        }
    }

    /// `out += W x` (no bias), for summing two projections into one buffer.
    pub fn accumulate_into(&self, x: &[f32], out: &mut [f32]) {
        for (row, o) in self.weight.chunks_exact(self.in_dim).zip(out.iter_mut()) {
            *o += dot(row, x);
        }
    }
}

/// Dot product with eight independent accumulators, which the compiler turns into SIMD.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Index and value of the largest element; the first one wins ties, like `torch.max`.
pub fn argmax(x: &[f32]) -> (usize, f32) {
    x.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
}
