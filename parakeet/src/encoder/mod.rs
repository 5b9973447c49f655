//! The FastConformer encoder (NeMo's `ConformerEncoder`): `dw_striding` subsampling, scaled
//! input, then conformer layers with relative-position attention.

mod attention;
mod fused;
mod layer;
mod position;
mod subsampling;

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;
use rayon::prelude::*;

pub use attention::AttentionWindow;
use layer::ConformerLayer;
use subsampling::Subsampling;

use crate::config::EncoderConfig;
use crate::error::Error;
use crate::nn::{FrameMask, Quantization};

/// The encoder, `encoder.*` in the checkpoint.
#[derive(Debug, Clone)]
pub struct ConformerEncoder {
    pre_encode: Subsampling,
    layers: Vec<ConformerLayer>,
    xscale: Option<f64>,
    window: AttentionWindow,
    d_model: usize,
    /// What the weights and activations are held in; see [`Self::dtype`].
    dtype: DType,
}

impl ConformerEncoder {
    /// Loads the encoder, refusing configurations whose behaviour we do not reproduce.
    ///
    /// The weights are held in `vb`'s dtype, and so is the computation (see [`Self::forward`]).
    /// Constants folded into weights at load time (the attention score scale, the batch norm)
    /// are folded in f32 first and rounded once.
    ///
    /// With `quantization`, every dense layer of the conformer layers (feed-forward, attention
    /// projections, pointwise convolutions) holds quantized weights; the subsampling, the
    /// attention scores and the depthwise convolution stay in float.
    pub fn load(
        cfg: &EncoderConfig,
        quantization: Option<Quantization>,
        vb: VarBuilder,
    ) -> std::result::Result<Self, Error> {
        let dtype = vb.dtype();
        let window = check_supported(cfg)?;
        let channels = if cfg.subsampling_conv_channels <= 0 {
            cfg.d_model
        } else {
            cfg.subsampling_conv_channels as usize
        };
        let pre_encode = Subsampling::load(
            cfg.feat_in,
            cfg.d_model,
            channels,
            cfg.subsampling_factor,
            vb.pp("pre_encode"),
        )?;
        // Layers load in parallel: folding and quantizing the weights is most of the work
        // once they are read, and each layer's is its own.
        let layers = (0..cfg.n_layers)
            .into_par_iter()
            .map(|i| ConformerLayer::load(cfg, quantization, vb.pp("layers").pp(i)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            pre_encode,
            layers,
            xscale: cfg.xscaling.then(|| (cfg.d_model as f64).sqrt()),
            window,
            d_model: cfg.d_model,
            dtype,
        })
    }

    /// The precision the encoder computes in: f32, or f16/bf16 when loaded that way
    /// ([`crate::LoadOptions::dtype`]).
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The attention window the checkpoint was configured with.
    pub fn configured_window(&self) -> AttentionWindow {
        self.window
    }

    /// `mel`: `(batch, n_mels, frames)` with `lengths` valid frames per item.
    /// Returns `(batch, encoder_frames, d_model)` and the valid encoder frames per item.
    ///
    /// Whatever the encoder's [`Self::dtype`], input and output are f32: the features are cast
    /// to the encoder's dtype on entry and the output back to f32, so the mel frontend and the
    /// heads never see reduced precision. In f16/bf16 every tensor made along the way (masks,
    /// positional table, attention bias) follows the activations' dtype; layer norm accumulates
    /// in f32 (candle's kernel), the softmax runs in the reduced dtype.
    ///
    /// `window` may differ from the configured one: switching a full-attention model to local
    /// attention is NeMo's `change_attention_model`, which the model cards recommend for long
    /// audio; the weights are the same, only which frames see which changes.
    pub fn forward(
        &self,
        mel: &Tensor,
        lengths: &[usize],
        window: AttentionWindow,
    ) -> Result<(Tensor, Vec<usize>)> {
        let (x, lengths) = self.pre_encode(mel, lengths)?;
        let x = self.forward_pre_encoded(&x, &lengths, window)?;
        Ok((x, lengths))
    }

    /// The subsampling stage alone (NeMo's `encoder.pre_encode`): `mel` `(batch, n_mels,
    /// frames)` in, `(batch, encoder_frames, d_model)` in the encoder's dtype out, with the
    /// valid encoder frames per item. Each output frame depends only on its own stretch of mel
    /// frames, which is why Sortformer's speaker cache keeps these embeddings.
    pub fn pre_encode(&self, mel: &Tensor, lengths: &[usize]) -> Result<(Tensor, Vec<usize>)> {
        self.pre_encode.forward(&mel.to_dtype(self.dtype)?, lengths)
    }

    /// The conformer layers over embeddings [`Self::pre_encode`] made (NeMo's
    /// `bypass_pre_encode=True`): input scaling, positions and the layers. `x` is `(batch,
    /// frames, d_model)`; the output, the same shape, is f32.
    pub fn forward_pre_encoded(
        &self,
        x: &Tensor,
        lengths: &[usize],
        window: AttentionWindow,
    ) -> Result<Tensor> {
        let device: &Device = x.device();
        let x = x.to_dtype(self.dtype)?;
        let mut x = match self.xscale {
            Some(scale) => (x * scale)?,
            None => x,
        };
        let t = x.dim(1)?;
        let mask = FrameMask::new(lengths, t, device)?;
        let positions =
            position::relative_positions(window, t, self.d_model, device)?.to_dtype(x.dtype())?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask, &positions, window)?;
        }
        x.to_dtype(DType::F32)
    }
}

/// Maps the config to an attention window, or says which setting we cannot honour.
fn check_supported(cfg: &EncoderConfig) -> std::result::Result<AttentionWindow, Error> {
    let unsupported = |what: String| Err(Error::Unsupported(what));
    if cfg.subsampling != "dw_striding" {
        return unsupported(format!(
            "subsampling {:?} (only dw_striding)",
            cfg.subsampling
        ));
    }
    if cfg.causal_downsampling {
        return unsupported("causal downsampling (streaming models)".into());
    }
    if cfg.att_context_style != "regular" {
        return unsupported(format!(
            "att_context_style {:?} (streaming models)",
            cfg.att_context_style
        ));
    }
    if cfg.conv_norm_type != "batch_norm" {
        return unsupported(format!(
            "conv_norm_type {:?} (only batch_norm)",
            cfg.conv_norm_type
        ));
    }
    if cfg.feat_out.is_some_and(|f| f > 0) {
        return unsupported("an encoder output projection (feat_out)".into());
    }
    if !cfg.d_model.is_multiple_of(cfg.n_heads) {
        return Err(Error::Config(format!(
            "d_model {} is not divisible by n_heads {}",
            cfg.d_model, cfg.n_heads
        )));
    }
    if cfg.conv_kernel_size.is_multiple_of(2) {
        return Err(Error::Config(format!(
            "conv_kernel_size {} is even",
            cfg.conv_kernel_size
        )));
    }
    let context = cfg.att_context_size.as_slice();
    match cfg.self_attention_model.as_str() {
        "rel_pos" if context.iter().all(|&c| c < 0) => Ok(AttentionWindow::Full),
        "rel_pos" => unsupported(format!(
            "limited attention context {context:?} with rel_pos"
        )),
        "rel_pos_local_attn" => local_window(context).ok_or_else(|| {
            Error::Unsupported(format!(
                "local attention context {context:?} (needs [w, w] with w > 0)"
            ))
        }),
        other => unsupported(format!("self_attention_model {other:?}")),
    }
}

/// `[w, w]` with `w > 0` as a local window.
pub fn local_window(context: &[i64]) -> Option<AttentionWindow> {
    match context {
        [left, right] if left == right && *left > 0 => Some(AttentionWindow::Local(*left as usize)),
        _ => None,
    }
}
