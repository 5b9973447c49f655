//! Engine benchmark: this crate against NeMo/PyTorch on the same model file and audio, on the
//! same machine, with the same number of threads, fp32, in one run.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo bench -p warble-parakeet --bench engine -- \
//!     --model /work/bench-work/parakeet-tdt-0.6b-v2-random.nemo \
//!     --audio /work/bench-work/speech60.wav \
//!     --nemo-python /work/venv/nemo/bin/python --write docs/benchmarks.md
//! ```
//!
//! Times are medians over `--runs` runs after one warm-up; peak RSS is the process high-water
//! mark (`VmHWM`), which includes loading the model.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Deserialize;
use warble_parakeet::{LoadOptions, Parakeet, TranscribeOptions};

#[path = "../../tools/bench/section.rs"]
mod section;

#[derive(Debug, Parser)]
struct Args {
    /// Model file (`.nemo`) or directory.
    #[arg(long)]
    model: PathBuf,
    /// 16 kHz mono WAV to transcribe.
    #[arg(long)]
    audio: PathBuf,
    /// Timed runs after the warm-up.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Python with NeMo installed; runs `tools/bench/nemo_bench.py` for the comparison.
    #[arg(long)]
    nemo_python: Option<PathBuf>,
    /// Markdown file whose engine section is replaced with the results.
    #[arg(long)]
    write: Option<PathBuf>,
    /// cargo passes `--bench` to bench targets.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Seconds per stage for one run.
#[derive(Debug, Clone, Copy, Default)]
struct Stages {
    mel: f64,
    encoder: f64,
    decode: f64,
}

impl Stages {
    fn total(&self) -> f64 {
        self.mel + self.encoder + self.decode
    }
}

/// What `nemo_bench.py` prints on its last line (seconds, medians).
#[derive(Debug, Deserialize)]
struct NemoResult {
    mel: StageStats,
    encoder: StageStats,
    decode: StageStats,
    total: StageStats,
    tokens: usize,
    peak_rss_mib: f64,
    torch: String,
    nemo: String,
}

#[derive(Debug, Deserialize)]
struct StageStats {
    median: f64,
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// One transcription, timed stage by stage; returns the token count too.
fn run_once(model: &Parakeet, samples: &[f32], options: &TranscribeOptions) -> (Stages, usize) {
    let t0 = Instant::now();
    let (mel, valid) = model.features(samples).unwrap();
    let t1 = Instant::now();
    let window = model.window_for(samples.len(), options);
    let (encoded, lengths) = model.encode(&mel, &[valid], window).unwrap();
    let t2 = Instant::now();
    let kind = model.decoders()[0];
    let emissions = model.decode(kind, &encoded, &lengths).unwrap();
    let t3 = Instant::now();
    let stages = Stages {
        mel: secs(t1 - t0),
        encoder: secs(t2 - t1),
        decode: secs(t3 - t2),
    };
    (stages, emissions[0].len())
}

fn weights_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn nemo(python: &Path, args: &Args, threads: usize) -> NemoResult {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/bench/nemo_bench.py");
    let output = Command::new(python)
        .arg(script)
        .arg(&args.model)
        .arg(&args.audio)
        .args([
            "--threads",
            &threads.to_string(),
            "--runs",
            &args.runs.to_string(),
        ])
        .output()
        .expect("running the NeMo benchmark");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "NeMo benchmark failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .expect("a JSON line from NeMo");
    serde_json::from_str(last).expect("NeMo benchmark JSON")
}

fn main() {
    // As the worker does, so that the numbers are the product's.
    warble_parakeet::memory::retain_freed_memory();
    let args = Args::parse();
    let threads = candle_core::utils::get_num_threads();
    let load_start = Instant::now();
    let model = Parakeet::load(args.model.to_str().unwrap(), &LoadOptions::default()).unwrap();
    let load_secs = load_start.elapsed().as_secs_f64();
    let audio = warble_parakeet::audio::decode_file(&args.audio).unwrap();
    let duration = audio.duration_secs();
    let options = TranscribeOptions::default();

    run_once(&model, &audio.samples, &options);
    let mut runs = Vec::new();
    let mut tokens = 0;
    for _ in 0..args.runs {
        let (stages, n) = run_once(&model, &audio.samples, &options);
        runs.push(stages);
        tokens = n;
    }
    let ours = Stages {
        mel: median(runs.iter().map(|s| s.mel).collect()),
        encoder: median(runs.iter().map(|s| s.encoder).collect()),
        decode: median(runs.iter().map(|s| s.decode).collect()),
    };
    let total = median(runs.iter().map(Stages::total).collect());
    let rss = peak_rss();
    let weights = weights_bytes(&args.model);
    println!(
        "candle: mel {:.3}s encoder {:.3}s decode {:.3}s total {total:.3}s RTFx {:.2} tokens {tokens} peak RSS {} MB (weights {} MB, load {load_secs:.1}s)",
        ours.mel,
        ours.encoder,
        ours.decode,
        duration / total,
        rss >> 20,
        weights >> 20
    );
    let reference = args
        .nemo_python
        .as_ref()
        .map(|python| nemo(python, &args, threads));
    if let Some(n) = &reference {
        println!(
            "nemo:   mel {:.3}s encoder {:.3}s decode {:.3}s total {:.3}s RTFx {:.2} tokens {} peak RSS {} MB",
            n.mel.median,
            n.encoder.median,
            n.decode.median,
            n.total.median,
            duration / n.total.median,
            n.tokens,
            n.peak_rss_mib as u64
        );
    }
    if let Some(path) = &args.write {
        let section = markdown(
            &args,
            threads,
            duration,
            ours,
            total,
            tokens,
            rss,
            weights,
            reference.as_ref(),
        );
        section::write_section(path, "engine-bench", &section);
    }
}

#[allow(clippy::too_many_arguments)]
fn markdown(
    args: &Args,
    threads: usize,
    duration: f64,
    ours: Stages,
    total: f64,
    tokens: usize,
    rss: u64,
    weights: u64,
    nemo: Option<&NemoResult>,
) -> String {
    let mb = |b: u64| b as f64 / (1024.0 * 1024.0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mut s = String::new();
    s.push_str(&format!(
        "Model `{}` ({:.0} MB), audio `{}` ({duration:.1} s), {threads} threads, fp32, {} timed runs after a warm-up (medians), on {cpu}.\n\n",
        args.model.file_name().unwrap().to_string_lossy(),
        mb(weights),
        args.audio.file_name().unwrap().to_string_lossy(),
        args.runs,
    ));
    s.push_str("| stage | warble (candle) | NeMo (PyTorch) | NeMo / warble |\n|---|---|---|---|\n");
    let ratio = |ours: f64, theirs: Option<f64>| {
        theirs.map_or("–".into(), |t| format!("{:.2}x", t / ours))
    };
    let cell = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.3} s"));
    for (name, ours_s, theirs) in [
        ("mel features", ours.mel, nemo.map(|n| n.mel.median)),
        ("encoder", ours.encoder, nemo.map(|n| n.encoder.median)),
        (
            "greedy TDT decoding",
            ours.decode,
            nemo.map(|n| n.decode.median),
        ),
        ("total", total, nemo.map(|n| n.total.median)),
    ] {
        s.push_str(&format!(
            "| {name} | {ours_s:.3} s | {} | {} |\n",
            cell(theirs),
            ratio(ours_s, theirs)
        ));
    }
    s.push_str(&format!(
        "| real-time factor (audio s / compute s) | {:.2} | {} | |\n",
        duration / total,
        nemo.map_or("–".into(), |n| format!(
            "{:.2}",
            duration / n.total.median
        ))
    ));
    s.push_str(&format!(
        "| peak RSS | {:.0} MB ({:.2}x the weights) | {} | |\n",
        mb(rss),
        rss as f64 / weights.max(1) as f64,
        nemo.map_or("–".into(), |n| format!("{:.0} MB", n.peak_rss_mib))
    ));
    s.push_str(&format!(
        "| tokens decoded | {tokens} | {} | |\n",
        nemo.map_or("–".into(), |n| n.tokens.to_string())
    ));
    if let Some(n) = nemo {
        s.push_str(&format!("\nNeMo {} on PyTorch {}.\n", n.nemo, n.torch));
    }
    s
}
