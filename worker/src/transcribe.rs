//! `worker transcribe`: local files in, text or JSON lines out.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use parakeet::{
    DecoderKind, LoadOptions, Parakeet, TranscribeOptions, Transcript, audio, parse_device,
};
use serde::Serialize;

/// Arguments of `worker transcribe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model: a `.nemo` file, an MLX directory, or a Hugging Face repository id.
    #[arg(long, env = "WARBLE_MODEL", default_value = parakeet::DEFAULT_MODEL)]
    model: String,
    /// Expected SHA-256 of the model file; a mismatch refuses to load.
    #[arg(long, env = "WARBLE_MODEL_SHA256")]
    model_sha256: Option<String>,
    /// Device: cpu, cuda[:N] or metal[:N].
    #[arg(long, env = "WARBLE_DEVICE", default_value = "cpu")]
    device: String,
    /// Decoder head: tdt, rnnt or ctc (default: the model's main head).
    #[arg(long)]
    decoder: Option<DecoderKind>,
    /// Print one JSON object per file and line.
    #[arg(long)]
    json: bool,
    /// Audio files (WAV, FLAC, MP3).
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// One line of `--json` output.
#[derive(Serialize)]
struct JsonLine<'a> {
    file: String,
    duration: f64,
    text: &'a str,
    tokens: Vec<u32>,
    words: &'a [parakeet::TimedWord],
}

/// Loads the model once and transcribes every file; a file that fails is reported on stderr
/// and the others still run. Exit code 1 if any file failed.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let device = parse_device(&args.device)?;
    let options = LoadOptions {
        device,
        sha256: args.model_sha256.clone(),
    };
    let model = Parakeet::load(&args.model, &options)
        .with_context(|| format!("loading model {}", args.model))?;
    let transcribe = TranscribeOptions {
        decoder: args.decoder,
        ..TranscribeOptions::default()
    };
    let mut stdout = std::io::stdout().lock();
    let mut failed = false;
    for file in &args.files {
        let result = audio::decode_file(file)
            .map_err(parakeet::Error::from)
            .and_then(|a| model.transcribe(&a.samples, &transcribe));
        match result {
            Ok(transcript) => print(&mut stdout, file, &transcript, args.json)?,
            Err(err) => {
                failed = true;
                eprintln!("{}: {err}", file.display());
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print(
    out: &mut impl Write,
    file: &std::path::Path,
    transcript: &Transcript,
    json: bool,
) -> anyhow::Result<()> {
    if json {
        let line = JsonLine {
            file: file.display().to_string(),
            duration: transcript.duration,
            text: &transcript.text,
            tokens: transcript.token_ids(),
            words: &transcript.words,
        };
        writeln!(out, "{}", serde_json::to_string(&line)?)?;
    } else {
        writeln!(out, "{}\t{}", file.display(), transcript.text)?;
    }
    Ok(())
}
