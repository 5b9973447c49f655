//! Device strings: `cpu`, `cuda[:N]`, `metal[:N]`; encoder precisions: `f32`, `f16`, `bf16`.

use candle_core::{DType, Device};

use crate::error::{Error, Result};

/// Opens the device named by `spec`. CUDA and Metal need the crate's `cuda` / `metal` features.
pub fn parse_device(spec: &str) -> Result<Device> {
    let fail = |message: String| Error::Device {
        spec: spec.to_string(),
        message,
    };
    let (kind, ordinal) = match spec.split_once(':') {
        Some((kind, n)) => (
            kind,
            n.parse::<usize>()
                .map_err(|_| fail(format!("{n:?} is not a device number")))?,
        ),
        None => (spec, 0),
    };
    match kind {
        "cpu" if ordinal == 0 => Ok(Device::Cpu),
        "cuda" => Device::new_cuda(ordinal).map_err(|e| fail(e.to_string())),
        "metal" => Device::new_metal(ordinal).map_err(|e| fail(e.to_string())),
        _ => Err(fail("expected cpu, cuda[:N] or metal[:N]".into())),
    }
}

/// The encoder precision named by `spec`: `f32`, `f16` or `bf16` (see
/// [`crate::LoadOptions::dtype`]).
pub fn parse_dtype(spec: &str) -> Result<DType> {
    match spec {
        "f32" => Ok(DType::F32),
        "f16" => Ok(DType::F16),
        "bf16" => Ok(DType::BF16),
        _ => Err(Error::Dtype {
            spec: spec.to_string(),
            message: "expected f32, f16 or bf16".into(),
        }),
    }
}

/// Whether the encoder may run in `dtype` on `device`: f32 everywhere; f16 and bf16 on CUDA and
/// Metal, which they are for, and on the CPU, where they work but run slower than f32 (that is
/// where `tests/precision.rs` measures them). Anything else is refused, naming both.
pub fn check_dtype(dtype: DType, device: &Device) -> Result<()> {
    match dtype {
        DType::F32 | DType::F16 | DType::BF16 => Ok(()),
        other => Err(Error::Dtype {
            spec: other.as_str().to_string(),
            message: format!(
                "the encoder does not run in {} on {}; use f32, f16 or bf16",
                other.as_str(),
                device_name(device)
            ),
        }),
    }
}

/// `cpu`, `cuda:N` or `metal:N`, for messages.
fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".into(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtypes_parse_and_others_are_refused_clearly() {
        assert_eq!(parse_dtype("f32").unwrap(), DType::F32);
        assert_eq!(parse_dtype("f16").unwrap(), DType::F16);
        assert_eq!(parse_dtype("bf16").unwrap(), DType::BF16);
        for spec in ["fp16", "F16", "f64", "int8", ""] {
            let err = parse_dtype(spec).unwrap_err().to_string();
            assert!(err.starts_with(&format!("dtype {spec:?}")), "{err}");
        }
        for dtype in [DType::F32, DType::F16, DType::BF16] {
            check_dtype(dtype, &Device::Cpu).unwrap();
        }
        let err = check_dtype(DType::F64, &Device::Cpu)
            .unwrap_err()
            .to_string();
        assert!(err.contains("f64") && err.contains("cpu"), "{err}");
    }

    #[test]
    fn cpu_is_always_there() {
        assert!(parse_device("cpu").unwrap().is_cpu());
    }

    #[test]
    fn nonsense_is_refused_clearly() {
        for spec in ["gpu", "cuda:x", "cpu:1", ""] {
            let err = parse_device(spec).unwrap_err().to_string();
            assert!(err.starts_with(&format!("device {spec:?}")), "{err}");
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_so() {
        assert!(parse_device("cuda:0").is_err());
    }
}
