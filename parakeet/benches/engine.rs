//! Engine benchmark: warble (fp32 and int8) against ONNX Runtime through onnx-asr (fp32 and
//! int8) and NeMo/PyTorch, on the same model, audio and number of threads, in one run.
//!
//! ```sh
//! RAYON_NUM_THREADS=2 cargo bench -p warble-parakeet --bench engine -- \
//!     --model /work/bench-work/parakeet-tdt-0.6b-v2-random.nemo \
//!     --onnx-dir /work/bench-work/onnx-asr-fp32 --python /work/venv/nemo/bin/python \
//!     --audio /work/bench-work/speech60.wav --rounds 3 --write docs/benchmarks.md
//! ```
//!
//! Every engine runs in its own fresh process, started by this one: it loads the model (timed),
//! transcribes the file once (the first file of a process, timed), then once more (warm,
//! timed), and reports its peak RSS. warble transcribes audio longer than a chunk (120 s)
//! through its model service with the worker's defaults (one chunk per encoder pass on a CPU),
//! the others the whole file at once, as each is used. The engines take turns, round after round, so that a
//! change in the machine's speed during the run touches them all alike; the table gives the
//! median over the rounds. warble's processes are this binary with `--child`; onnx-asr's are
//! `tools/bench/onnx_asr_bench.py`, NeMo's `tools/bench/nemo_bench.py`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use clap::Parser;
use serde::{Deserialize, Serialize};
use warble_parakeet::service::{BatchLimits, ModelService};
use warble_parakeet::{LoadOptions, Parakeet, Quantization, TranscribeOptions};

#[path = "../../tools/bench/host.rs"]
mod host;
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
    /// Rounds: each engine loads and transcribes once per round, in turn.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Python with NeMo, onnxruntime and onnx-asr installed (`tools/bench/README.md`).
    #[arg(long)]
    python: Option<PathBuf>,
    /// The model exported by `tools/bench/export_onnx_asr.py --int8` (onnx-asr's layout).
    #[arg(long)]
    onnx_dir: Option<PathBuf>,
    /// onnx-asr is stopped and reported as failed past this resident memory (GB): on a long
    /// file ONNX Runtime's memory grows with the square of its length.
    #[arg(long, default_value_t = 16.0)]
    max_rss_gb: f64,
    /// Skip NeMo (it needs the most time and memory, past 20 GB on a 10-minute file).
    #[arg(long)]
    no_nemo: bool,
    /// Markdown file whose section for this audio file is replaced with the results.
    #[arg(long)]
    write: Option<PathBuf>,
    /// Internal: run warble once in this process and print its JSON line.
    #[arg(long, hide = true)]
    child: bool,
    /// Internal, with `--child`: `none` or `int8`.
    #[arg(long, hide = true, default_value = "none")]
    quantization: String,
    /// cargo passes `--bench` to bench targets.
    #[arg(long, hide = true)]
    bench: bool,
}

/// Seconds per stage of one transcription.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
struct Stages {
    mel: f64,
    encoder: f64,
    decode: f64,
    total: f64,
}

/// What one engine process reports: the JSON line of every child, warble's and the Python
/// scripts' alike (the scripts print more, which is ignored).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    load_s: f64,
    first_file: Stages,
    /// The warm run (`--runs 1` for the scripts: their median of one).
    encoder: Median,
    total: Median,
    tokens: usize,
    peak_rss_mib: f64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Median {
    median: f64,
}

/// One transcription, timed stage by stage; returns the token count too. Audio that fits one
/// chunk is timed stage by stage with the calls `transcribe` makes for it; longer audio goes
/// through the model service as the worker sends it (chunks, one encoder pass each on a CPU),
/// timed as a whole.
fn run_once(
    service: &ModelService,
    samples: &[f32],
    options: &TranscribeOptions,
) -> (Stages, usize) {
    let model = service.model();
    let chunked = options
        .chunking
        .is_some_and(|c| samples.len() as f64 > c.secs * model.sample_rate() as f64);
    if chunked {
        let start = Instant::now();
        let canceled = Arc::new(AtomicBool::new(false));
        let transcript = service
            .transcribe(samples, options, canceled, |_| {})
            .unwrap();
        let total = start.elapsed().as_secs_f64();
        let stages = Stages {
            total,
            ..Stages::default()
        };
        return (stages, transcript.tokens.len());
    }
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
        mel: (t1 - t0).as_secs_f64(),
        encoder: (t2 - t1).as_secs_f64(),
        decode: (t3 - t2).as_secs_f64(),
        total: (t3 - t0).as_secs_f64(),
    };
    (stages, emissions[0].len())
}

/// `--child`: warble in this process, as the worker runs it.
fn child(args: &Args) {
    // As the worker does, so that the numbers are the product's.
    warble_parakeet::memory::retain_freed_memory();
    let options = LoadOptions {
        quantization: Quantization::parse(&args.quantization).unwrap(),
        ..LoadOptions::default()
    };
    let start = Instant::now();
    let model = Parakeet::load(args.model.to_str().unwrap(), &options).unwrap();
    let load_s = start.elapsed().as_secs_f64();
    let audio = warble_parakeet::audio::decode_file(&args.audio).unwrap();
    let transcribe = TranscribeOptions::default();
    let limits = BatchLimits::for_device(model.device());
    let service = ModelService::start(model, limits);
    let (first_file, _) = run_once(&service, &audio.samples, &transcribe);
    let (warm, tokens) = run_once(&service, &audio.samples, &transcribe);
    let report = Report {
        load_s,
        first_file,
        encoder: Median {
            median: warm.encoder,
        },
        total: Median { median: warm.total },
        tokens,
        peak_rss_mib: host::status_bytes("self", "VmHWM:") as f64 / 1048576.0,
    };
    println!("{}", serde_json::to_string(&report).unwrap());
}

/// An engine the parent runs, and how.
struct Engine {
    name: &'static str,
    command: Command,
}

fn engines(args: &Args) -> Vec<Engine> {
    let me = std::env::current_exe().unwrap();
    let warble = |quantization: &str| {
        let mut c = Command::new(&me);
        c.arg("--child")
            .arg("--model")
            .arg(&args.model)
            .arg("--audio")
            .arg(&args.audio)
            .args(["--quantization", quantization]);
        c
    };
    let threads = candle_core::utils::get_num_threads().to_string();
    let script = |name: &str| {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tools/bench")
            .join(name)
    };
    let mut out = vec![
        Engine {
            name: "warble fp32",
            command: warble("none"),
        },
        Engine {
            name: "warble int8",
            command: warble("int8"),
        },
    ];
    if let (Some(python), Some(dir)) = (&args.python, &args.onnx_dir) {
        for (name, quantization) in [
            ("ONNX Runtime fp32", None),
            ("ONNX Runtime int8", Some("int8")),
        ] {
            let mut c = Command::new(python);
            c.arg(script("onnx_asr_bench.py"))
                .arg(dir)
                .arg(&args.audio)
                .args(["--threads", &threads, "--runs", "1"])
                .args(["--max-rss-gb", &args.max_rss_gb.to_string()]);
            if let Some(q) = quantization {
                c.args(["--quantization", q]);
            }
            out.push(Engine { name, command: c });
        }
    }
    if let (Some(python), false) = (&args.python, args.no_nemo) {
        let mut c = Command::new(python);
        c.arg(script("nemo_bench.py"))
            .arg(&args.model)
            .arg(&args.audio)
            .args(["--threads", &threads, "--runs", "1"]);
        out.push(Engine {
            name: "NeMo (PyTorch)",
            command: c,
        });
    }
    out
}

/// Runs one engine process and reads its last JSON line; an engine that fails (out of memory
/// on a long file, say) is reported with the end of its error output instead.
fn run_engine(engine: &mut Engine) -> Result<Report, String> {
    let output = engine.command.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'));
    match (output.status.success(), last) {
        (true, Some(line)) => serde_json::from_str(line).map_err(|e| format!("{e}: {line}")),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
            Err(format!("{}: {}", output.status, tail.join(" / ")))
        }
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// One engine's rounds, reduced to medians.
struct Row {
    name: &'static str,
    load: f64,
    first: f64,
    warm: f64,
    encoder: f64,
    tokens: usize,
    rss: f64,
}

fn main() {
    let args = Args::parse();
    if args.child {
        return child(&args);
    }
    let mut engines = engines(&args);
    let mut reports: Vec<Vec<Report>> = engines.iter().map(|_| Vec::new()).collect();
    let mut failures: Vec<Option<String>> = engines.iter().map(|_| None).collect();
    for round in 1..=args.rounds {
        for (i, engine) in engines.iter_mut().enumerate() {
            if failures[i].is_some() {
                continue;
            }
            match run_engine(engine) {
                Ok(r) => {
                    println!(
                        "round {round} {}: load {:.2} s, first file {:.2} s, warm {:.2} s (encoder {:.2} s), {} tokens, peak RSS {:.0} MiB",
                        engine.name,
                        r.load_s,
                        r.first_file.total,
                        r.total.median,
                        r.encoder.median,
                        r.tokens,
                        r.peak_rss_mib
                    );
                    reports[i].push(r);
                }
                Err(e) => {
                    println!("round {round} {}: failed: {e}", engine.name);
                    failures[i] = Some(e);
                }
            }
        }
    }
    let rows: Vec<Row> = engines
        .iter()
        .zip(&reports)
        .filter(|(_, r)| !r.is_empty())
        .map(|(e, r)| Row {
            name: e.name,
            load: median(r.iter().map(|r| r.load_s).collect()),
            first: median(r.iter().map(|r| r.first_file.total).collect()),
            warm: median(r.iter().map(|r| r.total.median).collect()),
            encoder: median(r.iter().map(|r| r.encoder.median).collect()),
            tokens: r[0].tokens,
            rss: median(r.iter().map(|r| r.peak_rss_mib).collect()),
        })
        .collect();
    let failed: Vec<(&str, String)> = engines
        .iter()
        .zip(failures)
        .filter_map(|(e, f)| f.map(|f| (e.name, f)))
        .collect();
    let table = markdown(&args, &rows, &failed);
    println!("{table}");
    if let Some(path) = &args.write {
        let stem = args.audio.file_stem().unwrap().to_string_lossy();
        section::write_section(path, &format!("engine-bench-{stem}"), &table);
    }
}

fn markdown(args: &Args, rows: &[Row], failed: &[(&str, String)]) -> String {
    let weights_mib = std::fs::metadata(&args.model).map_or(0.0, |m| m.len() as f64) / 1048576.0;
    let audio = warble_parakeet::audio::decode_file(&args.audio).unwrap();
    let duration = audio.duration_secs();
    let (cpu, _) = host::cpu();
    let mut s = format!(
        "Model `{}` ({weights_mib:.0} MiB), audio `{}` ({duration:.1} s), {} threads, {} rounds (medians), on {cpu}.\n\n",
        args.model.file_name().unwrap().to_string_lossy(),
        args.audio.file_name().unwrap().to_string_lossy(),
        candle_core::utils::get_num_threads(),
        args.rounds,
    );
    s.push_str(
        "| engine | load | first file | warm | encoder (warm) | speed vs ONNX Runtime fp32 | real-time factor | peak RSS | tokens |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    let reference = rows
        .iter()
        .find(|r| r.name == "ONNX Runtime fp32")
        .map(|r| r.warm);
    for r in rows {
        let encoder = if r.encoder > 0.0 {
            format!("{:.2} s", r.encoder)
        } else {
            "(chunked)".into()
        };
        s.push_str(&format!(
            "| {} | {:.2} s | {:.2} s | {:.2} s | {encoder} | {} | {:.1}x | {:.0} MiB ({:.2}x the weights) | {} |\n",
            r.name,
            r.load,
            r.first,
            r.warm,
            reference.map_or("–".into(), |t| format!("{:.2}x", t / r.warm)),
            duration / r.warm,
            r.rss,
            r.rss / weights_mib.max(1.0),
            r.tokens,
        ));
    }
    for (name, why) in failed {
        s.push_str(&format!(
            "| {name} | failed: {} | | | | | | | |\n",
            why.replace('|', "/")
        ));
    }
    s
}
