//! Log-mel features, number for number as NeMo's `AudioToMelSpectrogramPreprocessor`.
//!
//! This mirrors `FilterbankFeatures.forward` (nemo/collections/asr/parts/preprocessing/features.py)
//! in eval mode, which is what a NeMo model sees at transcription time:
//!
//! 1. pre-emphasis `y[0] = x[0]`, `y[t] = x[t] - preemph * x[t-1]` (in f32, like torch);
//! 2. `torch.stft(center=True, pad_mode="constant")`: the signal is zero-padded by `n_fft / 2`
//!    on both sides and cut into frames every `hop` samples, each multiplied by a *symmetric*
//!    Hann window of `win_length` samples centred in `n_fft`;
//! 3. `|X|^mag_power`, then the Slaney mel filterbank of `librosa.filters.mel`;
//! 4. `log(x + guard)` (or `log(max(x, guard))`);
//! 5. normalisation over the valid frames only (`normalize_batch`);
//! 6. frames at or beyond the valid length set to `pad_value`, and the frame count padded to a
//!    multiple of `pad_to`.
//!
//! The FFT, power spectrum, filterbank and log run in f64: torch computes them in f32, and the
//! exact result is closer to torch's than an independent f32 computation would be.
//! Dither is ignored: NeMo only applies it in training mode.

use std::sync::Arc;

use candle_core::{Device, Tensor};
use realfft::{RealFftPlanner, RealToComplex};
use serde::Deserialize;

/// `CONSTANT` of NeMo's features.py, added to the standard deviation so silent bins don't divide by zero.
const STD_GUARD: f64 = 1e-5;

/// The `preprocessor` section of a NeMo model config.
///
/// Deserialises from the model's YAML/JSON; unknown keys (`_target_`, `nb_max_freq`, ...) are
/// ignored and missing keys take NeMo's defaults. Note that NeMo's `transcribe()` forces
/// `dither = 0` and `pad_to = 0` whatever the config says; [`MelFrontend`] ignores `dither` but
/// honours `pad_to`, so set it to 0 to get what `transcribe()` feeds the encoder.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MelConfig {
    /// Sample rate the features are computed at, in Hz.
    pub sample_rate: u32,
    /// Window length in seconds; NeMo truncates `window_size * sample_rate` to whole samples.
    pub window_size: f64,
    /// Hop length in seconds; truncated to whole samples like `window_size`.
    pub window_stride: f64,
    /// Window function; only `hann` (symmetric, as NeMo builds it) is supported.
    pub window: String,
    /// FFT size; `None` (or 0) means the next power of two at or above the window length.
    pub n_fft: Option<usize>,
    /// Number of mel bins.
    pub features: usize,
    /// `per_feature`, `all_features`, or `None`/`"none"` for no normalisation.
    pub normalize: Option<String>,
    /// Whether to take the log of the mel energies.
    pub log: bool,
    /// Pre-emphasis coefficient; `None` disables pre-emphasis.
    pub preemph: Option<f64>,
    /// Exponent applied to the STFT magnitude (2 = power spectrum).
    pub mag_power: f64,
    /// `add` (log(x + guard)) or `clamp` (log(max(x, guard))).
    pub log_zero_guard_type: String,
    /// The guard of `log_zero_guard_type`.
    pub log_zero_guard_value: f64,
    /// Lowest mel filter edge in Hz.
    pub lowfreq: f64,
    /// Highest mel filter edge in Hz; `None` (or 0) means `sample_rate / 2`.
    pub highfreq: Option<f64>,
    /// Pad the frame count up to a multiple of this (0 = no padding).
    pub pad_to: usize,
    /// Value of padded frames and of frames beyond the valid length.
    pub pad_value: f64,
    /// Frame stacking; only 1 (none) is supported.
    pub frame_splicing: usize,
    /// Training-time noise; ignored, as in NeMo's eval mode.
    pub dither: f64,
    /// NeMo's alternative framing without centre padding; unsupported (no Parakeet model uses it).
    pub exact_pad: bool,
    /// Filterbank normalisation: `slaney` (area) or `None`.
    pub mel_norm: Option<String>,
}

impl Default for MelConfig {
    /// NeMo's defaults (`AudioToMelSpectrogramPreprocessor.__init__`).
    fn default() -> Self {
        Self {
            sample_rate: 16_000,
            window_size: 0.02,
            window_stride: 0.01,
            window: "hann".into(),
            n_fft: None,
            features: 64,
            normalize: Some("per_feature".into()),
            log: true,
            preemph: Some(0.97),
            mag_power: 2.0,
            log_zero_guard_type: "add".into(),
            log_zero_guard_value: 2f64.powi(-24),
            lowfreq: 0.0,
            highfreq: None,
            pad_to: 16,
            pad_value: 0.0,
            frame_splicing: 1,
            dither: 1e-5,
            exact_pad: false,
            mel_norm: Some("slaney".into()),
        }
    }
}

/// A preprocessor config this front end cannot reproduce.
#[derive(Debug, thiserror::Error)]
pub enum MelError {
    /// A setting NeMo supports but we don't implement.
    #[error("unsupported preprocessor setting {key} = {value}: {reason}")]
    Unsupported {
        key: &'static str,
        value: String,
        reason: &'static str,
    },
    /// A setting that makes no sense (NeMo would fail too).
    #[error("invalid preprocessor setting {key} = {value}: {reason}")]
    Invalid {
        key: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// How the log-mel matrix is normalised (NeMo's `normalize_batch`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Normalize {
    /// Each mel bin to zero mean, unit (N-1) standard deviation over the valid frames.
    PerFeature,
    /// The whole valid matrix to zero mean, unit (N-1) standard deviation.
    AllFeatures,
    None,
}

/// How zeros are kept out of the log.
#[derive(Debug, Clone, Copy)]
enum LogGuard {
    Add(f64),
    Clamp(f64),
}

/// One row of the mel filterbank, stored from its first to its last non-zero weight.
#[derive(Debug, Clone)]
struct MelFilter {
    first_bin: usize,
    weights: Vec<f64>,
}

/// NeMo's mel front end, with everything that doesn't depend on the audio precomputed.
#[derive(Clone)]
pub struct MelFrontend {
    n_fft: usize,
    hop: usize,
    /// The Hann window, `win_length` samples, placed at `window_offset` inside the FFT frame.
    window: Vec<f64>,
    window_offset: usize,
    filters: Vec<MelFilter>,
    fft: Arc<dyn RealToComplex<f64>>,
    preemph: Option<f32>,
    mag_power: f64,
    log: Option<LogGuard>,
    normalize: Normalize,
    pad_to: usize,
    pad_value: f32,
}

impl std::fmt::Debug for MelFrontend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelFrontend")
            .field("n_fft", &self.n_fft)
            .field("hop", &self.hop)
            .field("win_length", &self.window.len())
            .field("n_mels", &self.filters.len())
            .finish_non_exhaustive()
    }
}

impl MelFrontend {
    /// Precomputes the window, filterbank and FFT plan, rejecting settings we can't match exactly.
    pub fn new(cfg: &MelConfig) -> Result<Self, MelError> {
        check_supported(cfg)?;
        let sample_rate = f64::from(cfg.sample_rate);
        // Python's int(): truncation, as in AudioToMelSpectrogramPreprocessor.__init__.
        let win_length = (cfg.window_size * sample_rate) as usize;
        let hop = (cfg.window_stride * sample_rate) as usize;
        if win_length == 0 || hop == 0 {
            return Err(invalid(
                "window_size/window_stride",
                format!("{}/{}", cfg.window_size, cfg.window_stride),
                "must be at least one sample",
            ));
        }
        let n_fft = match cfg.n_fft {
            Some(n) if n > 0 => n,
            _ => win_length.next_power_of_two(),
        };
        if n_fft < win_length {
            return Err(invalid(
                "n_fft",
                n_fft.to_string(),
                "shorter than the window",
            ));
        }
        let fmax = match cfg.highfreq {
            Some(f) if f != 0.0 => f,
            _ => sample_rate / 2.0,
        };
        if !(0.0 <= cfg.lowfreq && cfg.lowfreq < fmax) {
            return Err(invalid(
                "lowfreq/highfreq",
                format!("{}/{fmax}", cfg.lowfreq),
                "need 0 <= lowfreq < highfreq",
            ));
        }
        let slaney_norm = cfg.mel_norm.as_deref() == Some("slaney");
        let weights = librosa_mel(
            sample_rate,
            n_fft,
            cfg.features,
            cfg.lowfreq,
            fmax,
            slaney_norm,
        );
        Ok(Self {
            n_fft,
            hop,
            window: symmetric_hann(win_length),
            window_offset: (n_fft - win_length) / 2,
            filters: weights
                .iter()
                .map(|row| MelFilter::from_dense(row))
                .collect(),
            fft: RealFftPlanner::new().plan_fft_forward(n_fft),
            preemph: cfg.preemph.map(|p| p as f32),
            mag_power: cfg.mag_power,
            log: log_guard(cfg)?,
            normalize: normalize_kind(cfg.normalize.as_deref())?,
            pad_to: cfg.pad_to,
            pad_value: cfg.pad_value as f32,
        })
    }

    /// Number of mel bins (rows of the feature matrix).
    pub fn n_mels(&self) -> usize {
        self.filters.len()
    }

    /// Samples per frame step (160 at 16 kHz / 10 ms).
    pub fn hop_length(&self) -> usize {
        self.hop
    }

    /// Features of one utterance: row-major `[n_mels][n_frames]` f32, `n_frames`, and the number
    /// of valid frames (NeMo's `seq_len`).
    ///
    /// Like NeMo, `n_frames` counts every STFT frame (one more than the valid frames, since the
    /// centred STFT also yields a frame starting in the right padding) rounded up to a multiple
    /// of `pad_to`; frames from `valid` on hold `pad_value`.
    pub fn compute(&self, samples: &[f32]) -> (Vec<f32>, usize, usize) {
        let (n_frames, valid) = self.frame_counts(samples.len());
        let mut features = vec![self.pad_value; self.n_mels() * n_frames];
        if valid == 0 {
            // NeMo's statistics are NaN here, but every frame ends up masked to `pad_value`.
            return (features, n_frames, valid);
        }
        self.log_mel_into(samples, valid, &mut features, n_frames);
        match self.normalize {
            Normalize::PerFeature => {
                for row in features.chunks_exact_mut(n_frames) {
                    standardize(&mut row[..valid]);
                }
            }
            Normalize::AllFeatures => standardize_all(&mut features, n_frames, valid),
            Normalize::None => {}
        }
        (features, n_frames, valid)
    }

    /// [`compute`](Self::compute) as a `(1, n_mels, n_frames)` f32 tensor on `device`, plus the
    /// number of valid frames.
    pub fn forward(
        &self,
        samples: &[f32],
        device: &Device,
    ) -> candle_core::Result<(Tensor, usize)> {
        let (features, n_frames, valid) = self.compute(samples);
        let tensor = Tensor::from_vec(features, (1, self.n_mels(), n_frames), device)?;
        Ok((tensor, valid))
    }

    /// `(n_frames, valid)` for a signal of `len` samples.
    ///
    /// `torch.stft(center=True)` yields `1 + (len + 2 * (n_fft / 2) - n_fft) / hop` frames, while
    /// NeMo's `get_seq_len` counts `(len + 2 * (n_fft / 2) - n_fft) / hop` of them as valid.
    fn frame_counts(&self, len: usize) -> (usize, usize) {
        let padded = len + 2 * (self.n_fft / 2);
        let (stft_frames, valid) = match padded.checked_sub(self.n_fft) {
            Some(span) => (1 + span / self.hop, span / self.hop),
            None => (0, 0),
        };
        let n_frames = match self.pad_to {
            0 => stft_frames,
            pad_to => stft_frames.next_multiple_of(pad_to),
        };
        (n_frames, valid)
    }

    /// Writes the (log-)mel energies of the first `valid` frames into `features`
    /// (`[n_mels][stride]`); the other frames are never used by NeMo, so they are not computed.
    fn log_mel_into(&self, samples: &[f32], valid: usize, features: &mut [f32], stride: usize) {
        let emphasized = Emphasized {
            samples,
            coeff: self.preemph,
        };
        let mut frame = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f64; spectrum.len()];
        // Signal index of the first windowed sample of frame 0 (negative: inside the left padding).
        let first = self.window_offset as isize - (self.n_fft / 2) as isize;
        for t in 0..valid {
            let start = first + (t * self.hop) as isize;
            frame.fill(0.0);
            for (j, (slot, w)) in frame[self.window_offset..]
                .iter_mut()
                .zip(&self.window)
                .enumerate()
            {
                *slot = w * f64::from(emphasized.at(start + j as isize));
            }
            self.fft
                .process_with_scratch(&mut frame, &mut spectrum, &mut scratch)
                .expect("FFT buffers come from the plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = self.magnitude_power(c.norm_sqr());
            }
            for (m, filter) in self.filters.iter().enumerate() {
                features[m * stride + t] = self.log_energy(filter.apply(&power)) as f32;
            }
        }
    }

    /// `sqrt(re² + im²) ^ mag_power` from `re² + im²`, skipping the round trip for the usual powers.
    fn magnitude_power(&self, norm_sqr: f64) -> f64 {
        match self.mag_power {
            2.0 => norm_sqr,
            1.0 => norm_sqr.sqrt(),
            p => norm_sqr.sqrt().powf(p),
        }
    }

    fn log_energy(&self, energy: f64) -> f64 {
        match self.log {
            Some(LogGuard::Add(guard)) => (energy + guard).ln(),
            Some(LogGuard::Clamp(guard)) => energy.max(guard).ln(),
            None => energy,
        }
    }
}

/// The pre-emphasised signal, computed on the fly so long files need no second copy.
struct Emphasized<'a> {
    samples: &'a [f32],
    coeff: Option<f32>,
}

impl Emphasized<'_> {
    /// Sample `i` of the pre-emphasised signal, zero outside it (the STFT's constant padding).
    ///
    /// Computed in f32 like torch: `x[t] - f32(preemph) * x[t-1]`.
    fn at(&self, i: isize) -> f32 {
        let Ok(i) = usize::try_from(i) else {
            return 0.0;
        };
        let Some(&x) = self.samples.get(i) else {
            return 0.0;
        };
        match (self.coeff, i) {
            (Some(coeff), 1..) => x - coeff * self.samples[i - 1],
            _ => x,
        }
    }
}

impl MelFilter {
    fn from_dense(row: &[f64]) -> Self {
        let first_bin = row.iter().position(|&w| w != 0.0).unwrap_or(0);
        let end = row
            .iter()
            .rposition(|&w| w != 0.0)
            .map_or(first_bin, |last| last + 1);
        Self {
            first_bin,
            weights: row[first_bin..end].to_vec(),
        }
    }

    fn apply(&self, power: &[f64]) -> f64 {
        self.weights
            .iter()
            .zip(&power[self.first_bin..])
            .map(|(w, p)| w * p)
            .sum()
    }
}

/// Standardises `values` in place: `(x - mean) / (std + 1e-5)` with the N-1 standard deviation,
/// as NeMo's `normalize_batch`; a single value has std 0 (NeMo replaces the NaN by 0).
fn standardize(values: &mut [f32]) {
    let Some((mean, std)) = mean_std(values.iter().copied()) else {
        return;
    };
    for x in values {
        *x = ((f64::from(*x) - mean) / (std + STD_GUARD)) as f32;
    }
}

/// `all_features` normalisation: one mean and std over the first `valid` frames of every row.
fn standardize_all(features: &mut [f32], stride: usize, valid: usize) {
    let valid_values = || {
        features
            .chunks_exact(stride)
            .flat_map(|row| row[..valid].iter().copied())
    };
    let Some((mean, std)) = mean_std(valid_values()) else {
        return;
    };
    for row in features.chunks_exact_mut(stride) {
        for x in &mut row[..valid] {
            *x = ((f64::from(*x) - mean) / (std + STD_GUARD)) as f32;
        }
    }
}

/// Mean and N-1 standard deviation (two passes, in f64); `None` for no values.
fn mean_std(values: impl Iterator<Item = f32> + Clone) -> Option<(f64, f64)> {
    let n = values.clone().count();
    if n == 0 {
        return None;
    }
    let mean = values.clone().map(f64::from).sum::<f64>() / n as f64;
    let squares: f64 = values.map(|x| (f64::from(x) - mean).powi(2)).sum();
    let std = if n > 1 {
        (squares / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    Some((mean, std))
}

/// `torch.hann_window(len, periodic=False)`: `0.5 - 0.5 cos(2πn / (len - 1))`, computed in f32
/// the way torch does (`arange(len) * step`, `cos`, `* -0.5`, `+ 0.5`) so it lands within an ulp
/// of torch's window instead of up to three ulps away.
fn symmetric_hann(len: usize) -> Vec<f64> {
    if len == 1 {
        return vec![1.0];
    }
    let step = (2.0 * std::f64::consts::PI / (len - 1) as f64) as f32;
    (0..len)
        .map(|n| f64::from((n as f32 * step).cos() * -0.5 + 0.5))
        .collect()
}

/// `librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax, htk=False, norm="slaney" or None)`,
/// reproducing its float64 arithmetic and float32 storage step by step (so the weights are
/// bit-identical to NeMo's `fb` buffer); returns `[n_mels][n_fft/2 + 1]`.
fn librosa_mel(
    sr: f64,
    n_fft: usize,
    n_mels: usize,
    fmin: f64,
    fmax: f64,
    slaney_norm: bool,
) -> Vec<Vec<f64>> {
    // np.fft.rfftfreq(n_fft, d=1/sr)
    let bin_hz = 1.0 / (n_fft as f64 * (1.0 / sr));
    let fft_freqs: Vec<f64> = (0..=n_fft / 2).map(|k| k as f64 * bin_hz).collect();
    let mel_f = mel_frequencies(n_mels + 2, fmin, fmax);
    (0..n_mels)
        .map(|i| {
            let (left, centre, right) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
            let enorm = 2.0 / (right - left);
            fft_freqs
                .iter()
                .map(|&f| {
                    let lower = -(left - f) / (centre - left);
                    let upper = (right - f) / (right - centre);
                    // librosa stores the triangle in a float32 array, then scales it in place.
                    let weight = f64::from(lower.min(upper).max(0.0) as f32);
                    if slaney_norm {
                        f64::from((weight * enorm) as f32)
                    } else {
                        weight
                    }
                })
                .collect()
        })
        .collect()
}

/// `librosa.mel_frequencies(n, fmin, fmax, htk=False)`: `n` points evenly spaced on the Slaney
/// mel scale, computed like `np.linspace` (start + i * step, exact end point).
fn mel_frequencies(n: usize, fmin: f64, fmax: f64) -> Vec<f64> {
    let (min_mel, max_mel) = (hz_to_mel(fmin), hz_to_mel(fmax));
    let step = (max_mel - min_mel) / (n - 1) as f64;
    (0..n)
        .map(|i| {
            if i == n - 1 {
                max_mel
            } else {
                i as f64 * step + min_mel
            }
        })
        .map(mel_to_hz)
        .collect()
}

/// Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
const MEL_F_SP: f64 = 200.0 / 3.0;
const MEL_MIN_LOG_HZ: f64 = 1000.0;
const MEL_MIN_LOG_MEL: f64 = MEL_MIN_LOG_HZ / MEL_F_SP;

fn mel_log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MEL_MIN_LOG_HZ {
        MEL_MIN_LOG_MEL + (hz / MEL_MIN_LOG_HZ).ln() / mel_log_step()
    } else {
        hz / MEL_F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MEL_MIN_LOG_MEL {
        MEL_MIN_LOG_HZ * (mel_log_step() * (mel - MEL_MIN_LOG_MEL)).exp()
    } else {
        MEL_F_SP * mel
    }
}

fn check_supported(cfg: &MelConfig) -> Result<(), MelError> {
    if cfg.window != "hann" {
        return Err(unsupported(
            "window",
            cfg.window.clone(),
            "only hann is implemented",
        ));
    }
    if cfg.frame_splicing != 1 {
        return Err(unsupported(
            "frame_splicing",
            cfg.frame_splicing.to_string(),
            "only 1 is implemented",
        ));
    }
    if cfg.exact_pad {
        return Err(unsupported(
            "exact_pad",
            "true".into(),
            "only centred STFT framing is implemented",
        ));
    }
    if !matches!(cfg.mel_norm.as_deref(), Some("slaney") | None) {
        return Err(unsupported(
            "mel_norm",
            format!("{:?}", cfg.mel_norm),
            "only slaney or null is implemented",
        ));
    }
    if cfg.features == 0 || cfg.sample_rate == 0 {
        return Err(invalid(
            "features/sample_rate",
            format!("{}/{}", cfg.features, cfg.sample_rate),
            "must be positive",
        ));
    }
    Ok(())
}

fn log_guard(cfg: &MelConfig) -> Result<Option<LogGuard>, MelError> {
    if !cfg.log {
        return Ok(None);
    }
    let guard = cfg.log_zero_guard_value;
    match cfg.log_zero_guard_type.as_str() {
        "add" => Ok(Some(LogGuard::Add(guard))),
        "clamp" => Ok(Some(LogGuard::Clamp(guard))),
        other => Err(invalid(
            "log_zero_guard_type",
            other.into(),
            "must be add or clamp",
        )),
    }
}

fn normalize_kind(normalize: Option<&str>) -> Result<Normalize, MelError> {
    match normalize {
        Some("per_feature") => Ok(Normalize::PerFeature),
        Some("all_features") => Ok(Normalize::AllFeatures),
        // NeMo applies no normalisation for any other name; Sortformer configs say "NA".
        None | Some("none" | "NA" | "") => Ok(Normalize::None),
        Some(other) => Err(unsupported(
            "normalize",
            other.into(),
            "use per_feature, all_features or none",
        )),
    }
}

fn unsupported(key: &'static str, value: String, reason: &'static str) -> MelError {
    MelError::Unsupported { key, value, reason }
}

fn invalid(key: &'static str, value: String, reason: &'static str) -> MelError {
    MelError::Invalid { key, value, reason }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::audio::decode_file;

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/mel")
            .join(name)
    }

    fn load(name: &str) -> HashMap<String, Tensor> {
        candle_core::safetensors::load(fixture(name), &Device::Cpu).expect("fixture loads")
    }

    /// The preprocessor as in parakeet-tdt-0.6b-v2 (128 mels) / parakeet-tdt_ctc-110m (80 mels),
    /// with transcription settings.
    fn parakeet_config(features: usize) -> MelConfig {
        MelConfig {
            window_size: 0.025,
            n_fft: Some(512),
            features,
            pad_to: 0,
            dither: 0.0,
            ..MelConfig::default()
        }
    }

    /// Max abs error and relative Frobenius error ‖a−b‖/‖b‖.
    fn errors(actual: &[f32], expected: &[f32]) -> (f64, f64) {
        assert_eq!(actual.len(), expected.len());
        let (mut max_abs, mut diff, mut norm) = (0f64, 0f64, 0f64);
        for (&a, &b) in actual.iter().zip(expected) {
            let d = f64::from(a) - f64::from(b);
            max_abs = max_abs.max(d.abs());
            diff += d * d;
            norm += f64::from(b).powi(2);
        }
        (max_abs, (diff / norm).sqrt())
    }

    /// Compares with NeMo's features of the whole file (`mel`) and of its first 1000 samples
    /// (`short_mel`), as written by tools/fixtures/mel_reference.py.
    fn check_against_nemo(wav: &str, reference: &str, cfg: &MelConfig) {
        let samples = decode_file(&fixture(wav)).expect("fixture decodes").samples;
        let frontend = MelFrontend::new(cfg).expect("supported config");
        let tensors = load(reference);
        for (key, input) in [("mel", &samples[..]), ("short_mel", &samples[..1000])] {
            let expected = &tensors[key];
            let expected_len = tensors[&format!("{key}_len")].to_vec1::<i64>().unwrap()[0] as usize;
            let (n_mels, n_frames) = expected.dims2().unwrap();
            let (actual, actual_frames, valid) = frontend.compute(input);
            assert_eq!(
                (frontend.n_mels(), actual_frames, valid),
                (n_mels, n_frames, expected_len),
                "{reference} {key}"
            );
            let expected: Vec<f32> = expected.flatten_all().unwrap().to_vec1().unwrap();
            let (max_abs, relative) = errors(&actual, &expected);
            println!(
                "{wav} vs {key} of {reference}: max abs {max_abs:.3e}, relative {relative:.3e}"
            );
            assert!(
                relative < 1e-4,
                "{wav} {key}: relative error {relative:.3e} (max abs {max_abs:.3e})"
            );
        }
    }

    #[test]
    fn matches_nemo_128_mels() {
        check_against_nemo(
            "speech16k.wav",
            "speech16k.mel128.safetensors",
            &parakeet_config(128),
        );
        check_against_nemo(
            "alsa16k.wav",
            "alsa16k.mel128.safetensors",
            &parakeet_config(128),
        );
    }

    #[test]
    fn matches_nemo_80_mels() {
        check_against_nemo(
            "speech16k.wav",
            "speech16k.mel80.safetensors",
            &parakeet_config(80),
        );
        check_against_nemo(
            "alsa16k.wav",
            "alsa16k.mel80.safetensors",
            &parakeet_config(80),
        );
    }

    #[test]
    fn matches_nemo_without_normalization() {
        let cfg = MelConfig {
            normalize: None,
            ..parakeet_config(80)
        };
        check_against_nemo("speech16k.wav", "speech16k.mel80_nonorm.safetensors", &cfg);
    }

    #[test]
    fn matches_nemo_all_features_padded_to_16() {
        let cfg = MelConfig {
            normalize: Some("all_features".into()),
            pad_to: 16,
            ..parakeet_config(128)
        };
        check_against_nemo(
            "speech16k.wav",
            "speech16k.mel128_allfeat_pad16.safetensors",
            &cfg,
        );
    }

    #[test]
    fn filterbank_and_window_match_nemo() {
        for n_mels in [80, 128] {
            let frontend = MelFrontend::new(&parakeet_config(n_mels)).unwrap();
            let reference = load(&format!("filterbank_{n_mels}.safetensors"));
            let fb = reference["fb"].to_vec2::<f32>().unwrap();
            assert_eq!(fb.len(), n_mels);
            for (filter, expected) in frontend.filters.iter().zip(&fb) {
                for (bin, &weight) in expected.iter().enumerate() {
                    let ours = bin
                        .checked_sub(filter.first_bin)
                        .and_then(|i| filter.weights.get(i))
                        .copied()
                        .unwrap_or(0.0);
                    assert_eq!(ours as f32, weight, "{n_mels} mels, bin {bin}");
                }
            }
            let window = reference["window"].to_vec1::<f32>().unwrap();
            let (max_abs, _) = errors(
                &frontend
                    .window
                    .iter()
                    .map(|&w| w as f32)
                    .collect::<Vec<_>>(),
                &window,
            );
            assert!(
                max_abs <= 6e-8,
                "window differs from torch's by {max_abs:e}"
            );
        }
    }

    #[test]
    fn frame_counts_follow_nemo() {
        let frontend = MelFrontend::new(&parakeet_config(80)).unwrap();
        assert_eq!(frontend.hop_length(), 160);
        // No valid frame: everything is padding.
        let (features, n_frames, valid) = frontend.compute(&[]);
        assert_eq!((n_frames, valid), (1, 0));
        assert!(features.iter().all(|&x| x == 0.0));
        let (_, n_frames, valid) = frontend.compute(&vec![0.1; 16_000]);
        assert_eq!((n_frames, valid), (101, 100));
        let (_, n_frames, valid) = frontend.compute(&vec![0.1; 16_159]);
        assert_eq!((n_frames, valid), (101, 100));
    }

    #[test]
    fn forward_gives_a_batch_of_one() {
        let frontend = MelFrontend::new(&parakeet_config(128)).unwrap();
        let samples: Vec<f32> = (0..8000).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
        let (tensor, valid) = frontend.forward(&samples, &Device::Cpu).unwrap();
        assert_eq!(tensor.dims(), &[1, 128, 51]);
        assert_eq!(valid, 50);
    }

    #[test]
    fn parses_a_nemo_preprocessor_section() {
        let yaml = "
_target_: nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor
sample_rate: 16000
normalize: per_feature
window_size: 0.025
window_stride: 0.01
window: hann
features: 128
n_fft: 512
log: true
frame_splicing: 1
dither: 1.0e-05
pad_to: 0
pad_value: 0.0
";
        let cfg: MelConfig = serde_yaml_ng::from_str(yaml).unwrap();
        let frontend = MelFrontend::new(&cfg).unwrap();
        assert_eq!(
            (
                frontend.n_mels(),
                frontend.hop_length(),
                frontend.n_fft,
                frontend.window.len()
            ),
            (128, 160, 512, 400)
        );
        assert_eq!(cfg.preemph, Some(0.97));
        assert_eq!(cfg.log_zero_guard_value, 2f64.powi(-24));
    }

    #[test]
    fn rejects_what_it_cannot_reproduce() {
        for cfg in [
            MelConfig {
                window: "hamming".into(),
                ..MelConfig::default()
            },
            MelConfig {
                frame_splicing: 3,
                ..MelConfig::default()
            },
            MelConfig {
                exact_pad: true,
                ..MelConfig::default()
            },
            MelConfig {
                normalize: Some("fixed_mean".into()),
                ..MelConfig::default()
            },
            MelConfig {
                log_zero_guard_type: "max".into(),
                ..MelConfig::default()
            },
            MelConfig {
                n_fft: Some(256),
                window_size: 0.025,
                ..MelConfig::default()
            },
        ] {
            let error = MelFrontend::new(&cfg).unwrap_err();
            println!("{error}");
        }
    }
}
