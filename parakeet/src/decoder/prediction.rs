//! The prediction network of a transducer (NeMo's `RNNTDecoder`): an embedding of the last
//! emitted token followed by a stack of LSTM layers, `decoder.prediction.*` in the checkpoint.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::host::HostLinear;
use crate::nn::to_host_f32;

/// The recurrent state: `h` and `c` of every layer.
#[derive(Debug, Clone)]
pub struct PredictionState {
    h: Vec<Vec<f32>>,
    c: Vec<Vec<f32>>,
}

/// One LSTM layer with PyTorch's gate order (input, forget, cell, output). The input and
/// hidden weights sit side by side, `[W_ih | W_hh]`, so a step is one product with `[x; h]`.
#[derive(Debug, Clone)]
struct LstmLayer {
    gates: HostLinear,
}

/// Embedding plus LSTM stack.
#[derive(Debug, Clone)]
pub struct PredictionNetwork {
    /// `(vocab + 1, hidden)` row-major; with `blank_as_pad` the blank row is the zero vector.
    embedding: Vec<f32>,
    layers: Vec<LstmLayer>,
    hidden: usize,
}

impl PredictionNetwork {
    /// Loads `decoder.prediction` for `vocab_size` tokens plus blank.
    pub fn load(vocab_size: usize, hidden: usize, n_layers: usize, vb: VarBuilder) -> Result<Self> {
        let embedding = to_host_f32(&vb.pp("embed").get((vocab_size + 1, hidden), "weight")?)?;
        let lstm = vb.pp("dec_rnn").pp("lstm");
        let layers = (0..n_layers)
            .map(|l| {
                let w_ih = lstm.get((4 * hidden, hidden), &format!("weight_ih_l{l}"))?;
                let w_hh = lstm.get((4 * hidden, hidden), &format!("weight_hh_l{l}"))?;
                let b_ih = lstm.get(4 * hidden, &format!("bias_ih_l{l}"))?;
                let b_hh = lstm.get(4 * hidden, &format!("bias_hh_l{l}"))?;
                let weight = Tensor::cat(&[w_ih, w_hh], 1)?;
                Ok(LstmLayer {
                    gates: HostLinear::from_tensors(&weight, Some(&(b_ih + b_hh)?))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embedding,
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

    /// Runs one step on `token` (the blank id stands for "start"), returning the output and
    /// the new state; `state` is left untouched so that a caller can keep it on a blank.
    pub fn step(&self, token: usize, state: &PredictionState) -> (Vec<f32>, PredictionState) {
        let h = self.hidden;
        let mut x = self.embedding[token * h..(token + 1) * h].to_vec();
        let mut next = state.clone();
        let mut gates = vec![0.0; 4 * h];
        let mut input = Vec::with_capacity(2 * h);
        for (l, layer) in self.layers.iter().enumerate() {
            input.clear();
            input.extend_from_slice(&x);
            input.extend_from_slice(&state.h[l]);
            layer.gates.forward_into(&input, &mut gates);
            let (c, h_out) = (&mut next.c[l], &mut next.h[l]);
            for j in 0..h {
                let i_gate = sigmoid(gates[j]);
                let f_gate = sigmoid(gates[h + j]);
                let g_gate = gates[2 * h + j].tanh();
                let o_gate = sigmoid(gates[3 * h + j]);
                c[j] = f_gate * state.c[l][j] + i_gate * g_gate;
                h_out[j] = o_gate * c[j].tanh();
            }
            x.copy_from_slice(h_out);
        }
        (x, next)
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}
