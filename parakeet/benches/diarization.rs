//! Diarization benchmark: [`Sortformer::diarize`] against NeMo's `SortformerEncLabelModel.forward`
//! on the same model file and audio, same number of threads, fp32, in one run; what it costs next
//! to transcribing the same audio; and the peak memory of diarizing long recordings.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo bench -p warble-parakeet --bench diarization -- \
//!     --model /work/bench-work/sortformer-v2.1-random.nemo \
//!     --audio /work/bench-work/speech60.wav --runs 3 \
//!     --nemo-python /work/venv/nemo/bin/python \
//!     --asr-model /work/bench-work/parakeet-tdt-0.6b-v2-random.nemo \
//!     --memory-minutes 5,10,20,60 --write docs/benchmarks.md
//! ```
//!
//! Times are medians over `--runs` runs after one warm-up. Each `--memory-minutes` length runs in
//! a fresh copy of this program (peak RSS is a process's high-water mark, `VmHWM`), on the audio
//! repeated to that length.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use serde::{Deserialize, Serialize};
use warble_parakeet::sortformer::Sortformer;
use warble_parakeet::{LoadOptions, Parakeet, TranscribeOptions};

#[path = "../../tools/bench/host.rs"]
mod host;
#[path = "../../tools/bench/section.rs"]
mod section;

#[derive(Debug, Parser)]
struct Args {
    /// Sortformer model (`.nemo`).
    #[arg(long)]
    model: PathBuf,
    /// 16 kHz mono WAV to diarize.
    #[arg(long)]
    audio: PathBuf,
    /// Timed runs after the warm-up.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Python with NeMo installed; runs `tools/bench/nemo_diarize_bench.py` for the comparison.
    #[arg(long)]
    nemo_python: Option<PathBuf>,
    /// Parakeet model whose mel frontend and encoder are timed on the same audio, for the cost of
    /// diarization relative to transcription.
    #[arg(long)]
    asr_model: Option<PathBuf>,
    /// Without `--asr-model`: seconds its mel frontend and encoder took on the same audio, taken
    /// from an earlier measurement (the engine benchmark).
    #[arg(long, conflicts_with = "asr_model")]
    asr_seconds: Option<f64>,
    /// Lengths in minutes (the audio repeated) whose peak memory is measured.
    #[arg(long, value_delimiter = ',')]
    memory_minutes: Vec<f64>,
    /// Markdown file whose diarization section is replaced with the results.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Internal: measure one length in this process and print its [`Memory`] as JSON.
    #[arg(long, hide = true)]
    memory_child: Option<f64>,
    /// cargo passes `--bench` to bench targets.
    #[arg(long, hide = true)]
    bench: bool,
}

/// What `nemo_diarize_bench.py` prints on its last line.
#[derive(Debug, Deserialize)]
struct NemoResult {
    median_s: f64,
    frames: usize,
    speakers: usize,
    peak_rss_mib: f64,
    torch: String,
    nemo: String,
}

/// One long recording diarized by a fresh process.
#[derive(Debug, Serialize, Deserialize)]
struct Memory {
    audio_secs: f64,
    diarize_secs: f64,
    /// Resident memory with the model loaded and the audio in memory, before diarizing.
    before: u64,
    /// `VmHWM` after diarizing.
    peak: u64,
    /// The samples (4 bytes each) and their log-mel features (128 x 4 bytes per 10 ms).
    audio_and_features: u64,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn load(args: &Args) -> (Sortformer, Vec<f32>) {
    let model = Sortformer::load(args.model.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let audio = warble_parakeet::audio::decode_file(&args.audio).unwrap();
    (model, audio.samples)
}

/// Median seconds of `f` over `runs` runs after a warm-up, and its last result.
fn timed<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut last = f();
    let mut times = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        last = f();
        times.push(start.elapsed().as_secs_f64());
    }
    (median(times), last)
}

/// Diarizes the audio repeated to `minutes` and reports the memory it took.
fn memory_child(args: &Args, minutes: f64) -> Memory {
    let (model, samples) = load(args);
    let n = (minutes * 60.0 * f64::from(model.sample_rate())) as usize;
    let long: Vec<f32> = samples.iter().copied().cycle().take(n).collect();
    drop(samples);
    let before = host::status_bytes("self", "VmRSS:");
    let start = Instant::now();
    model.diarize(&long).unwrap();
    let mel_frames = (n / 160 + 1) as u64;
    Memory {
        audio_secs: n as f64 / f64::from(model.sample_rate()),
        diarize_secs: start.elapsed().as_secs_f64(),
        before,
        peak: host::status_bytes("self", "VmHWM:"),
        audio_and_features: 4 * n as u64 + mel_frames * 128 * 4,
    }
}

fn run_memory_child(args: &Args, minutes: f64) -> Memory {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--model", args.model.to_str().unwrap()])
        .args(["--audio", args.audio.to_str().unwrap()])
        .args(["--memory-child", &minutes.to_string()])
        .output()
        .expect("running the memory measurement");
    assert!(
        output.status.success(),
        "memory measurement failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap()).expect("memory JSON")
}

fn nemo(python: &Path, args: &Args, threads: usize, probs: &Path) -> NemoResult {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/bench/nemo_diarize_bench.py");
    let output = Command::new(python)
        .arg(script)
        .arg(&args.model)
        .arg(&args.audio)
        .args(["--threads", &threads.to_string()])
        .args(["--runs", &args.runs.to_string()])
        .arg("--probs")
        .arg(probs)
        .output()
        .expect("running the NeMo benchmark");
    assert!(
        output.status.success(),
        "NeMo benchmark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap();
    serde_json::from_str(last).expect("NeMo benchmark JSON")
}

/// Seconds of the Parakeet mel frontend and encoder on `samples` (median), as the engine
/// benchmark times them.
fn asr_encoder_secs(path: &Path, samples: &[f32], runs: usize) -> f64 {
    let model = Parakeet::load(path.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let window = model.window_for(samples.len(), &TranscribeOptions::default());
    timed(runs, || {
        let (mel, valid) = model.features(samples).unwrap();
        model.encode(&mel, &[valid], window).unwrap();
    })
    .0
}

fn main() {
    // As the worker does, so that the numbers are the product's.
    warble_parakeet::memory::retain_freed_memory();
    let args = Args::parse();
    if let Some(minutes) = args.memory_child {
        println!(
            "{}",
            serde_json::to_string(&memory_child(&args, minutes)).unwrap()
        );
        return;
    }
    let threads = candle_core::utils::get_num_threads();
    let (model, samples) = load(&args);
    let duration = samples.len() as f64 / f64::from(model.sample_rate());
    let (ours, diarization) = timed(args.runs, || model.diarize(&samples).unwrap());
    println!(
        "warble: {ours:.3} s for {duration:.1} s, {} frames",
        diarization.frames()
    );

    let reference = args.nemo_python.as_ref().map(|python| {
        let probs = tempfile::NamedTempFile::new().unwrap();
        let result = nemo(python, &args, threads, probs.path());
        let theirs: Vec<f32> = std::fs::read(probs.path())
            .unwrap()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let shared = theirs.len().min(diarization.probabilities.len());
        let diff = diarization.probabilities[..shared]
            .iter()
            .zip(&theirs[..shared])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        println!(
            "nemo:   {:.3} s, {} frames, max |diff| {diff:.2e}",
            result.median_s, result.frames
        );
        (result, diff)
    });
    let asr = match (&args.asr_model, args.asr_seconds) {
        (Some(path), _) => Some((asr_encoder_secs(path, &samples, args.runs), true)),
        (None, Some(secs)) => Some((secs, false)),
        (None, None) => None,
    };
    let memory: Vec<Memory> = args
        .memory_minutes
        .iter()
        .map(|&minutes| {
            let m = run_memory_child(&args, minutes);
            println!(
                "{:.0} s: {:.1} s, peak RSS {} MB",
                m.audio_secs,
                m.diarize_secs,
                m.peak >> 20
            );
            m
        })
        .collect();
    if let Some(path) = &args.write {
        let results = Results {
            threads,
            duration,
            ours,
            frames: diarization.frames(),
            nemo: reference.as_ref(),
            asr,
            memory: &memory,
        };
        section::write_section(
            path,
            "diarization-bench",
            &markdown(&args, &model, &results),
        );
    }
}

/// Everything the section reports.
struct Results<'a> {
    threads: usize,
    duration: f64,
    ours: f64,
    frames: usize,
    nemo: Option<&'a (NemoResult, f32)>,
    /// Parakeet's mel + encoder seconds, and whether this run measured them.
    asr: Option<(f64, bool)>,
    memory: &'a [Memory],
}

fn markdown(args: &Args, model: &Sortformer, r: &Results) -> String {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
    let m = &model.config().sortformer_modules;
    let (cpu, _) = host::cpu();
    let mut s = format!(
        "Model `{}` ({:.0} MB), audio `{}` ({:.1} s), {} threads, fp32, {} timed runs after a \
         warm-up (medians), on {cpu}. Streaming: chunks of {} frames of 80 ms with {} left and {} \
         right, FIFO {}, speaker cache {}, cache update every {}.\n\n",
        name(&args.model),
        mb(std::fs::metadata(&args.model).map_or(0, |m| m.len())),
        name(&args.audio),
        r.duration,
        r.threads,
        args.runs,
        m.chunk_len,
        m.chunk_left_context,
        m.chunk_right_context,
        m.fifo_len,
        m.spkcache_len,
        m.spkcache_update_period,
    );
    s.push_str("| | warble (candle) | NeMo (PyTorch) | NeMo / warble |\n|---|---|---|---|\n");
    let nemo = r.nemo.map(|(n, _)| n);
    s.push_str(&format!(
        "| diarize {:.0} s (mel + every streaming step) | {:.3} s | {} | {} |\n",
        r.duration,
        r.ours,
        nemo.map_or("–".into(), |n| format!("{:.3} s", n.median_s)),
        nemo.map_or("–".into(), |n| format!("{:.2}x", n.median_s / r.ours)),
    ));
    s.push_str(&format!(
        "| real-time factor (audio s / compute s) | {:.1} | {} | |\n",
        r.duration / r.ours,
        nemo.map_or("–".into(), |n| format!("{:.1}", r.duration / n.median_s)),
    ));
    s.push_str(&format!(
        "| frames x speakers | {} x {} | {} | |\n",
        r.frames,
        model.speakers(),
        nemo.map_or("–".into(), |n| format!("{} x {}", n.frames, n.speakers)),
    ));
    if let Some(n) = nemo {
        s.push_str(&format!(
            "| NeMo's peak RSS | | {:.0} MB | |\n",
            n.peak_rss_mib
        ));
    }
    if let Some((n, diff)) = r.nemo {
        s.push_str(&format!(
            "\nLargest difference between the two engines' frame probabilities: {diff:.1e}. \
             NeMo {} on PyTorch {}.\n",
            n.nemo, n.torch
        ));
    }
    if let Some((asr, measured)) = r.asr {
        s.push_str(&format!(
            "\nAgainst transcription: Parakeet's mel frontend and encoder (0.6B architecture) take \
             {asr:.3} s for the same audio ({}), so diarizing costs {:.0} % of that on top.\n",
            if measured {
                "measured in this run"
            } else {
                "from the engine table above"
            },
            100.0 * r.ours / asr,
        ));
    }
    if !r.memory.is_empty() {
        s.push_str(
            "\n| audio | diarize | peak RSS | before diarizing (model + audio) | audio + features | \
             peak − audio − features |\n|---|---|---|---|---|---|\n",
        );
        for m in r.memory {
            s.push_str(&format!(
                "| {:.0} min | {:.1} s | {:.0} MB | {:.0} MB | {:.0} MB | {:.0} MB |\n",
                m.audio_secs / 60.0,
                m.diarize_secs,
                mb(m.peak),
                mb(m.before),
                mb(m.audio_and_features),
                mb(m.peak.saturating_sub(m.audio_and_features)),
            ));
        }
    }
    s
}
