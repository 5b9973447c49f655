//! MLX-converted checkpoints: `config.json` + `model.safetensors` as the MLX community publishes
//! them (converted with senstella's script, read by `parakeet-mlx`), mapped back to NeMo's names
//! and layouts so that the rest of the engine sees one format.
//!
//! The conversion keeps NeMo's names except for the LSTM, whose layer `i` becomes
//! `lstm.{i}.Wx` / `Wh` / `bias` (the two PyTorch biases summed), and stores convolution weights
//! channels-last: `(O, H, W, I)` for `Conv2d`, `(O, K, I)` for `Conv1d`. The `config.json` is the
//! NeMo YAML config dumped as JSON.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Tensor};

use crate::checkpoint::Checkpoint;
use crate::config::ModelConfig;
use crate::error::{Error, Result};

/// Reads `model.safetensors` and the `config.json` beside it.
pub fn read(weights: &Path) -> Result<Checkpoint> {
    let fail = |message: String| Error::ModelFile {
        path: weights.to_path_buf(),
        message,
    };
    let config_path = weights.with_file_name("config.json");
    let text =
        std::fs::read_to_string(&config_path).map_err(|e| fail(format!("config.json: {e}")))?;
    let value: serde_json::Value = serde_json::from_str(&finite_json(&text))
        .map_err(|e| Error::Config(format!("config.json: {e}")))?;
    if value.get("quantization").is_some() || value.get("quantization_config").is_some() {
        return Err(Error::Unsupported(
            "quantized MLX weights (use an unquantized conversion or the .nemo file)".into(),
        ));
    }
    let config: ModelConfig =
        serde_json::from_value(value).map_err(|e| Error::Config(format!("config.json: {e}")))?;
    // Read in place, each tensor into its own buffer: no copy of the whole file in memory.
    let file = std::fs::File::open(weights).map_err(|e| fail(e.to_string()))?;
    let layout = crate::weights::safetensors_layout(weights, &file)?;
    let tensors = crate::weights::read_tensors(weights, &file, layout)?
        .into_iter()
        .map(|(name, tensor)| to_nemo(name, tensor))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect::<HashMap<_, _>>();
    Ok(Checkpoint {
        config,
        tensors,
        weights_file: weights.to_path_buf(),
        stored: None,
    })
}

/// One MLX tensor as the NeMo tensors it stands for (two for an LSTM bias, which MLX keeps
/// summed: it becomes `bias_ih` and a zero `bias_hh`).
fn to_nemo(name: String, tensor: Tensor) -> Result<Vec<(String, Tensor)>> {
    let tensor = tensor.to_dtype(DType::F32)?;
    if let Some((prefix, layer, kind)) = lstm_parts(&name) {
        let nemo = |suffix: &str| format!("{prefix}.{suffix}_l{layer}");
        return Ok(match kind {
            "Wx" => vec![(nemo("weight_ih"), tensor)],
            "Wh" => vec![(nemo("weight_hh"), tensor)],
            _ => vec![
                (nemo("bias_hh"), tensor.zeros_like()?),
                (nemo("bias_ih"), tensor),
            ],
        });
    }
    let is_conv_weight = name.ends_with(".weight")
        && (name.contains(".conv.")
            || name.contains("pre_encode.conv")
            || name.contains("decoder_layers"));
    let tensor = match (is_conv_weight, tensor.rank()) {
        (true, 4) => tensor.permute((0, 3, 1, 2))?.contiguous()?,
        (true, 3) => tensor.permute((0, 2, 1))?.contiguous()?,
        _ => tensor,
    };
    Ok(vec![(name, tensor)])
}

/// Splits `decoder.prediction.dec_rnn.lstm.{i}.{Wx|Wh|bias}` into its prefix, layer and part.
fn lstm_parts(name: &str) -> Option<(&str, usize, &str)> {
    let (rest, kind) = name.rsplit_once('.')?;
    let (prefix, layer) = rest.rsplit_once('.')?;
    (prefix.ends_with("lstm") && matches!(kind, "Wx" | "Wh" | "bias")).then_some(())?;
    Some((prefix, layer.parse().ok()?, kind))
}

/// Python's `json.dump` writes bare `NaN` and `Infinity` for non-finite floats, which JSON does
/// not allow; some exported NeMo configs contain them. They become `null` outside strings.
fn finite_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            (in_string, escaped) = (escaped || c != '"', !escaped && c == '\\');
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push_str("null");
            rest = &rest[token.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_become_null_outside_strings() {
        let text = r#"{"a": NaN, "b": -Infinity, "c": "NaN \" Infinity", "d": [Infinity]}"#;
        let value: serde_json::Value = serde_json::from_str(&finite_json(text)).unwrap();
        assert_eq!(value["a"], serde_json::Value::Null);
        assert_eq!(value["b"], serde_json::Value::Null);
        assert_eq!(value["c"], "NaN \" Infinity");
        assert_eq!(value["d"][0], serde_json::Value::Null);
    }

    #[test]
    fn lstm_names_split_into_layer_and_part() {
        assert_eq!(
            lstm_parts("decoder.prediction.dec_rnn.lstm.1.Wx"),
            Some(("decoder.prediction.dec_rnn.lstm", 1, "Wx"))
        );
        assert_eq!(lstm_parts("encoder.layers.1.conv.bias"), None);
    }
}
