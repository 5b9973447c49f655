//! The prediction network of a transducer (NeMo's `RNNTDecoder`): an embedding of the last
//! emitted token followed by a stack of LSTM layers, `decoder.prediction.*` in the checkpoint.

use candle_core::{D, Module, Result, Tensor};
use candle_nn::{Linear, VarBuilder};

use super::host::HostLinear;
use crate::nn::to_host_f32;

/// The recurrent state: `h` and `c` of every layer.
#[derive(Debug, Clone)]
pub struct PredictionState {
    h: Vec<Vec<f32>>,
    c: Vec<Vec<f32>>,
}

/// One LSTM layer with PyTorch's gate order (input, forget, cell, output). The input and
/// hidden weights sit side by side, `[W_ih | W_hh]`, so a step is one product with `[x; h]`:
/// on the host, and as a tensor on the model's device for decoding there.
#[derive(Debug, Clone)]
struct LstmLayer {
    gates: HostLinear,
    on_device: Linear,
}

/// Embedding plus LSTM stack.
#[derive(Debug, Clone)]
pub struct PredictionNetwork {
    /// `(vocab + 1, hidden)` row-major; with `blank_as_pad` the blank row is the zero vector.
    embedding: Vec<f32>,
    /// The same on the model's device.
    embedding_on_device: Tensor,
    layers: Vec<LstmLayer>,
    hidden: usize,
}

impl PredictionNetwork {
    /// Loads `decoder.prediction` for `vocab_size` tokens plus blank.
    pub fn load(vocab_size: usize, hidden: usize, n_layers: usize, vb: VarBuilder) -> Result<Self> {
        let embedding_on_device = vb.pp("embed").get((vocab_size + 1, hidden), "weight")?;
        let embedding = to_host_f32(&embedding_on_device)?;
        let lstm = vb.pp("dec_rnn").pp("lstm");
        let layers = (0..n_layers)
            .map(|l| {
                let w_ih = lstm.get((4 * hidden, hidden), &format!("weight_ih_l{l}"))?;
                let w_hh = lstm.get((4 * hidden, hidden), &format!("weight_hh_l{l}"))?;
                let b_ih = lstm.get(4 * hidden, &format!("bias_ih_l{l}"))?;
                let b_hh = lstm.get(4 * hidden, &format!("bias_hh_l{l}"))?;
                let weight = Tensor::cat(&[w_ih, w_hh], 1)?;
                let bias = (b_ih + b_hh)?;
                Ok(LstmLayer {
                    gates: HostLinear::from_tensors(&weight, Some(&bias))?,
                    on_device: Linear::new(weight, Some(bias)),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embedding,
            embedding_on_device,
            layers,
            hidden,
        })
    }

    /// The state before any token: zeros.
    pub fn initial_state(&self) -> PredictionState {
        let zeros = vec![vec![0.0; self.hidden]; self.layers.len()];
        PredictionState {
            h: zeros.clone(),
            c: zeros,
        }
    }

    /// Runs one step for each `(token, state)` (the blank id stands for "start"), all items
    /// through each layer's gates in one matrix-matrix product, returning each item's output
    /// and new state. The states are left untouched so that a caller can keep one on a blank.
    /// Each item gets exactly the numbers a step of it alone would.
    pub fn step_batch(
        &self,
        items: &[(usize, &PredictionState)],
    ) -> Vec<(Vec<f32>, PredictionState)> {
        let h = self.hidden;
        let batch = items.len();
        let mut xs: Vec<Vec<f32>> = items
            .iter()
            .map(|&(token, _)| self.embedding[token * h..(token + 1) * h].to_vec())
            .collect();
        let mut next: Vec<PredictionState> = items.iter().map(|&(_, s)| s.clone()).collect();
        let mut gates = vec![0.0; batch * 4 * h];
        for (l, layer) in self.layers.iter().enumerate() {
            let inputs: Vec<Vec<f32>> = xs
                .iter()
                .zip(items)
                .map(|(x, (_, state))| [x.as_slice(), &state.h[l]].concat())
                .collect();
            let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
            layer.gates.forward_batch_into(&refs, &mut gates);
            for (b, ((x, state), out)) in xs.iter_mut().zip(items).zip(&mut next).enumerate() {
                let gates = &gates[b * 4 * h..(b + 1) * 4 * h];
                let (c, h_out) = (&mut out.c[l], &mut out.h[l]);
                for j in 0..h {
                    let i_gate = sigmoid(gates[j]);
                    let f_gate = sigmoid(gates[h + j]);
                    let g_gate = gates[2 * h + j].tanh();
                    let o_gate = sigmoid(gates[3 * h + j]);
                    c[j] = f_gate * state.1.c[l][j] + i_gate * g_gate;
                    h_out[j] = o_gate * c[j].tanh();
                }
                x.copy_from_slice(h_out);
            }
        }
        xs.into_iter().zip(next).collect()
    }
}

/// The recurrent state of a batch on the device: `h` and `c` of every layer, `(batch, hidden)`.
#[derive(Debug, Clone)]
pub struct DeviceState {
    h: Vec<Tensor>,
    c: Vec<Tensor>,
}

impl PredictionNetwork {
    /// Zeros for `batch` items, on `device`.
    pub fn initial_device_state(
        &self,
        batch: usize,
        device: &candle_core::Device,
    ) -> Result<DeviceState> {
        let zeros = Tensor::zeros((batch, self.hidden), candle_core::DType::F32, device)?;
        Ok(DeviceState {
            h: vec![zeros.clone(); self.layers.len()],
            c: vec![zeros; self.layers.len()],
        })
    }

    /// One step for every item of a batch on the device: `tokens` `(batch,)` u32, returning
    /// the output `(batch, hidden)` and the new state (the caller keeps the old one where an
    /// item emitted nothing).
    pub fn step_on_device(
        &self,
        tokens: &Tensor,
        state: &DeviceState,
    ) -> Result<(Tensor, DeviceState)> {
        let mut x = self.embedding_on_device.index_select(tokens, 0)?;
        let mut next = DeviceState {
            h: Vec::with_capacity(self.layers.len()),
            c: Vec::with_capacity(self.layers.len()),
        };
        for (l, layer) in self.layers.iter().enumerate() {
            let gates = layer
                .on_device
                .forward(&Tensor::cat(&[&x, &state.h[l]], D::Minus1)?)?;
            let chunks = gates.chunk(4, D::Minus1)?;
            let (i, f, g, o) = (
                candle_nn::ops::sigmoid(&chunks[0])?,
                candle_nn::ops::sigmoid(&chunks[1])?,
                chunks[2].tanh()?,
                candle_nn::ops::sigmoid(&chunks[3])?,
            );
            let c = ((f * &state.c[l])? + (i * g)?)?;
            let h = (o * c.tanh()?)?;
            x = h.clone();
            next.h.push(h);
            next.c.push(c);
        }
        Ok((x, next))
    }
}

impl DeviceState {
    /// This state where `mask` `(batch, 1)` u8 is 1, `other` where it is 0.
    pub fn select(&self, mask: &Tensor, other: &DeviceState) -> Result<DeviceState> {
        let pick = |a: &Tensor, b: &Tensor| mask.broadcast_as(a.shape())?.where_cond(a, b);
        Ok(DeviceState {
            h: self
                .h
                .iter()
                .zip(&other.h)
                .map(|(a, b)| pick(a, b))
                .collect::<Result<_>>()?,
            c: self
                .c
                .iter()
                .zip(&other.c)
                .map(|(a, b)| pick(a, b))
                .collect::<Result<_>>()?,
        })
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
