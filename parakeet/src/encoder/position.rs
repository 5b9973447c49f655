//! Sinusoidal embeddings of relative positions, as NeMo's `RelPositionalEncoding` and
//! `LocalAttRelPositionalEncoding` build them.

use candle_core::{Device, Result, Tensor};

use super::attention::AttentionWindow;

/// The table of embeddings for the relative positions a layer needs, largest first:
/// `t-1 ..= -(t-1)` for full attention over `t` frames, `w ..= -w` for a local window of `w`.
///
/// Computed in f32 with the same operations as PyTorch (`exp` of the scaled even indices, then
/// `sin`/`cos` of `position * div_term`), so the table agrees with NeMo's to the last bits.
pub fn relative_positions(
    window: AttentionWindow,
    t: usize,
    d_model: usize,
    device: &Device,
) -> Result<Tensor> {
    let reach = match window {
        AttentionWindow::Full => t.saturating_sub(1),
        AttentionWindow::Local(w) => w,
    } as i64;
    let scale = -(10000f64.ln() / d_model as f64) as f32;
    let div_term: Vec<f32> = (0..d_model)
        .step_by(2)
        .map(|i| (i as f32 * scale).exp())
        .collect();
    let mut data = Vec::with_capacity((2 * reach as usize + 1) * d_model);
    for pos in (-reach..=reach).rev() {
        for &div in &div_term {
            let angle = pos as f32 * div;
            data.push(angle.sin());
            data.push(angle.cos());
        }
    }
    Tensor::from_vec(data, (2 * reach as usize + 1, d_model), device)
}
