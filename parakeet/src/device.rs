//! Device strings: `cpu`, `cuda[:N]`, `metal[:N]`.

use candle_core::Device;

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

#[cfg(test)]
mod tests {
    use super::*;

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
