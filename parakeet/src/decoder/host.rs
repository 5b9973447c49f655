//! Dense layers evaluated on the host.
//!
//! Greedy transducer decoding is a loop of one-token steps whose every step depends on the last:
//! a few matrix-vector products each. Launching tensor ops for them costs more than the
//! arithmetic, on a GPU as on a CPU, so the prediction and joint networks run here on plain
//! slices while the encoder stays on the device. The products use AVX2/FMA where the CPU has
//! it (checked at run time) and split large matrices across threads.

use candle_core::{Result, Tensor};
use rayon::prelude::*;

use crate::nn::to_host_f32;

/// Below this many multiply-adds a product runs on the calling thread; above, the rows are
/// shared among the threads (handing work to the pool costs a few microseconds).
const PARALLEL_MACS: usize = 1 << 18;

/// A linear layer `y = W x + b` with `W` stored row-major as `(out, in)`.
#[derive(Debug, Clone)]
pub struct HostLinear {
    weight: Vec<f32>,
    bias: Vec<f32>,
    in_dim: usize,
    out_dim: usize,
}

impl HostLinear {
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
        self.forward_batch_into(&[x], out);
    }

    /// `out[b] = W xs[b] + b` for every item, `out` holding `xs.len()` rows of
    /// [`Self::out_dim`]: a matrix-matrix product that reads each weight row once for the whole
    /// batch. Every element is the same [`dot`] as for the item alone, so a batch changes no
    /// bit of any item's result (the batched greedy search relies on it to give the tokens each
    /// file gets alone).
    pub fn forward_batch_into(&self, xs: &[&[f32]], out: &mut [f32]) {
        let batch = xs.len();
        debug_assert!(xs.iter().all(|x| x.len() == self.in_dim));
        debug_assert_eq!(out.len(), batch * self.out_dim);
        // Computed weight row by weight row, `(out, batch)`; transposed when there is a batch.
        let by_row = |rows: &mut [f32]| {
            let row = |(o, (w, b)): (&mut [f32], (&[f32], &f32))| {
                for (y, x) in o.iter_mut().zip(xs) {
                    *y = dot(w, x) + b;
                }
            };
            let weights = self.weight.chunks_exact(self.in_dim).zip(&self.bias);
            if self.in_dim * self.out_dim * batch >= PARALLEL_MACS {
                rows.par_chunks_mut(batch)
                    .zip(self.weight.par_chunks_exact(self.in_dim).zip(&self.bias))
                    .for_each(row);
            } else {
                rows.chunks_mut(batch).zip(weights).for_each(row);
            }
        };
        if batch == 1 {
            by_row(out);
            return;
        }
        let mut rows = vec![0.0; out.len()];
        by_row(&mut rows);
        for (o, row) in rows.chunks_exact(batch).enumerate() {
            for (b, y) in row.iter().enumerate() {
                out[b * self.out_dim + o] = *y;
            }
        }
    }
}

/// Dot product of two equally long slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        // SAFETY: the CPU supports the features `dot_avx2` is compiled for.
        return unsafe { dot_avx2(a, b) };
    }
    dot_portable(a, b)
}

/// Eight independent accumulators, which the compiler turns into SIMD on any target.
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
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

/// Two 8-lane fused multiply-add accumulators.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc0 = _mm256_setzero_ps();
    let mut acc1 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY: every load reads 8 floats at `i < n - 15` or `i < n - 7`, inside both slices.
    unsafe {
        while i + 16 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            acc1 = _mm256_fmadd_ps(
                _mm256_loadu_ps(pa.add(i + 8)),
                _mm256_loadu_ps(pb.add(i + 8)),
                acc1,
            );
            i += 16;
        }
        if i + 8 <= n {
            acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc0);
            i += 8;
        }
    }
    let mut lanes = [0f32; 8];
    // SAFETY: `lanes` holds exactly 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), _mm256_add_ps(acc0, acc1)) };
    lanes.iter().sum::<f32>()
        + a[i..n]
            .iter()
            .zip(&b[i..n])
            .map(|(x, y)| x * y)
            .sum::<f32>()
}

/// Index and value of the largest element; the first one wins ties, like `torch.max`.
pub fn argmax(x: &[f32]) -> (usize, f32) {
    x.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_agrees_with_a_plain_sum_for_every_length() {
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 33, 640] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            assert!((dot(&a, &b) as f64 - plain).abs() < 1e-4, "n = {n}");
            assert!(
                (dot_portable(&a, &b) as f64 - plain).abs() < 1e-4,
                "n = {n}"
            );
        }
    }

    #[test]
    fn large_layers_give_the_same_result_threaded() {
        let (rows, cols) = (700, 800);
        let w = Tensor::from_vec(
            (0..rows * cols)
                .map(|i| ((i % 97) as f32 - 48.0) / 97.0)
                .collect::<Vec<_>>(),
            (rows, cols),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let layer = HostLinear::from_tensors(&w, None).unwrap();
        let x: Vec<f32> = (0..cols).map(|i| (i as f32).cos()).collect();
        let mut out = vec![0.0; rows];
        layer.forward_into(&x, &mut out);
        let weight = to_host_f32(&w).unwrap();
        for (r, o) in out.iter().enumerate() {
            assert_eq!(*o, dot(&weight[r * cols..(r + 1) * cols], &x));
        }
    }

    #[test]
    fn a_batch_gives_every_item_the_bits_it_gets_alone() {
        for (rows, cols, batch) in [(3, 5, 4), (700, 800, 3), (640, 640, 1)] {
            let w = Tensor::from_vec(
                (0..rows * cols)
                    .map(|i| ((i % 89) as f32 - 44.0) / 89.0)
                    .collect::<Vec<_>>(),
                (rows, cols),
                &candle_core::Device::Cpu,
            )
            .unwrap();
            let b = Tensor::from_vec(
                (0..rows).map(|i| i as f32 / 7.0).collect::<Vec<_>>(),
                rows,
                &candle_core::Device::Cpu,
            )
            .unwrap();
            let layer = HostLinear::from_tensors(&w, Some(&b)).unwrap();
            let xs: Vec<Vec<f32>> = (0..batch)
                .map(|k| (0..cols).map(|i| ((i * (k + 2)) as f32).sin()).collect())
                .collect();
            let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
            let mut together = vec![0.0; batch * rows];
            layer.forward_batch_into(&refs, &mut together);
            for (k, x) in xs.iter().enumerate() {
                let mut alone = vec![0.0; rows];
                let single = HostLinear::from_tensors(&w, Some(&b)).unwrap();
                single.forward_into(x, &mut alone);
                assert_eq!(&together[k * rows..(k + 1) * rows], alone.as_slice());
            }
        }
    }
}
