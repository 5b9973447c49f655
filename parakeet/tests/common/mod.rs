//! Helpers shared by the integration tests: fixture paths and numeric comparison.

#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::Tensor;

/// `parakeet/tests/fixtures/<rel>`.
pub fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(rel)
}

/// Relative error `|a - b| / |b|` (Frobenius norms) and the largest absolute difference.
pub fn relative_error(actual: &Tensor, expected: &Tensor) -> (f64, f64) {
    let a = actual.flatten_all().unwrap().to_dtype(candle_core::DType::F64).unwrap();
    let b = expected.flatten_all().unwrap().to_dtype(candle_core::DType::F64).unwrap();
    assert_eq!(a.dims(), b.dims(), "shape mismatch");
    let diff = (&a - &b).unwrap();
    let norm = |t: &Tensor| t.sqr().unwrap().sum_all().unwrap().to_scalar::<f64>().unwrap().sqrt();
    let max_abs = diff.abs().unwrap().max(0).unwrap().to_scalar::<f64>().unwrap();
    (norm(&diff) / norm(&b).max(f64::MIN_POSITIVE), max_abs)
}
