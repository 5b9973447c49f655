//! Model load time, stage by stage, and the first-file penalty.
//!
//! ```sh
//! cargo run --release -p warble-parakeet --example load -- MODEL.nemo
//! cargo run --release -p warble-parakeet --example load -- MODEL.nemo --sha256 HEX
//! cargo run --release -p warble-parakeet --example load -- MODEL.nemo --audio speech60.wav
//! cargo run --release -p warble-parakeet --example load -- MODEL.nemo --audio speech60.wav --warm-up
//! ```
//!
//! Prints the load time and, with `--audio`, the time of two transcriptions of the file in a
//! row (the first one pays for whatever the process had not set up yet; `--warm-up` runs
//! [`Parakeet::warm_up`] first, as the worker does). `--legacy` times the old path stage by
//! stage: the archive's state dict copied to a temporary file, then read with candle's pickle
//! reader. The process keeps freed memory as the worker does
//! ([`warble_parakeet::memory::retain_freed_memory`]). Run it under `/usr/bin/time -v` for the peak RSS; `WARBLE_LOG=debug` shows the
//! loader's own stage times.

use std::io::Read;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use warble_parakeet::{LoadOptions, Parakeet, TranscribeOptions, audio};

#[derive(Debug, Parser)]
struct Args {
    /// Model: a `.nemo` file, an MLX directory or a Hugging Face repository id.
    model: String,
    /// Pin the model file's SHA-256.
    #[arg(long)]
    sha256: Option<String>,
    /// Transcribe this file twice after loading and time both.
    #[arg(long)]
    audio: Option<PathBuf>,
    /// Warm the model up before the transcriptions.
    #[arg(long)]
    warm_up: bool,
    /// Time the old load path's stages instead (tar copy, pickle read) for comparison.
    #[arg(long)]
    legacy: bool,
}

fn main() -> anyhow::Result<()> {
    // As the worker does.
    warble_parakeet::memory::retain_freed_memory();
    if let Ok(filter) = std::env::var("WARBLE_LOG") {
        tracing_subscriber_lite(&filter);
    }
    let args = Args::parse();
    if args.legacy {
        return legacy(&args.model);
    }
    let options = LoadOptions {
        sha256: args.sha256.clone(),
        ..LoadOptions::default()
    };
    let start = Instant::now();
    let model = Parakeet::load(&args.model, &options)?;
    println!("load: {:.3} s", start.elapsed().as_secs_f64());
    println!("rss after load: {:.0} MiB", rss_mib("VmRSS"));
    if args.warm_up {
        let start = Instant::now();
        model.warm_up(&TranscribeOptions::default())?;
        println!("warm-up: {:.3} s", start.elapsed().as_secs_f64());
    }
    if let Some(path) = &args.audio {
        let samples = audio::decode_file(path)?.samples;
        for run in ["first", "second"] {
            let start = Instant::now();
            let transcript = model.transcribe(&samples, &TranscribeOptions::default())?;
            println!(
                "{run} transcription: {:.3} s ({} words)",
                start.elapsed().as_secs_f64(),
                transcript.words.len()
            );
        }
    }
    println!("peak rss: {:.0} MiB", rss_mib("VmHWM"));
    Ok(())
}

/// The old path, stage by stage.
fn legacy(model: &str) -> anyhow::Result<()> {
    let total = Instant::now();
    let start = Instant::now();
    let mut archive = tar::Archive::new(std::io::BufReader::new(std::fs::File::open(model)?));
    let mut tmp = tempfile::NamedTempFile::new()?;
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry
            .path()?
            .to_string_lossy()
            .ends_with("model_weights.ckpt")
        {
            std::io::copy(&mut entry, &mut tmp)?;
        } else {
            std::io::copy(&mut entry.by_ref(), &mut std::io::sink())?;
        }
    }
    println!(
        "tar copy to temp file: {:.3} s",
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let infos = candle_core::pickle::read_pth_tensor_info(tmp.path(), false, None)?;
    println!(
        "pickle parse ({} tensors): {:.3} s",
        infos.len(),
        start.elapsed().as_secs_f64()
    );
    let start = Instant::now();
    let tensors = candle_core::pickle::read_all(tmp.path())?;
    let bytes: usize = tensors
        .iter()
        .map(|(_, t)| t.elem_count() * t.dtype().size_in_bytes())
        .sum();
    println!(
        "pickle read_all ({:.0} MiB): {:.3} s",
        bytes as f64 / (1 << 20) as f64,
        start.elapsed().as_secs_f64()
    );
    println!("legacy read total: {:.3} s", total.elapsed().as_secs_f64());
    println!("peak rss: {:.0} MiB", rss_mib("VmHWM"));
    Ok(())
}

/// A field of `/proc/self/status`, in MiB.
fn rss_mib(field: &str) -> f64 {
    let mut status = String::new();
    if let Ok(mut f) = std::fs::File::open("/proc/self/status") {
        let _ = f.read_to_string(&mut status);
    }
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Prints the library's `tracing` events to stderr (without a subscriber crate).
fn tracing_subscriber_lite(filter: &str) {
    struct Stderr(tracing::Level);
    impl tracing::Subscriber for Stderr {
        fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
            *meta.level() <= self.0
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            struct Fields(String);
            impl tracing::field::Visit for Fields {
                fn record_debug(&mut self, field: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!(" {}={v:?}", field.name()));
                }
            }
            let mut fields = Fields(String::new());
            event.record(&mut fields);
            eprintln!(
                "{} {}:{}",
                event.metadata().level(),
                event.metadata().target(),
                fields.0
            );
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    let level = match filter {
        "trace" => tracing::Level::TRACE,
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        _ => tracing::Level::INFO,
    };
    let _ = tracing::subscriber::set_global_default(Stderr(level));
}
