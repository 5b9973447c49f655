//! `worker transcribe`: local files in, text or JSON lines out.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use warble_parakeet::{DecoderKind, TranscribeOptions, Transcript, audio};

use crate::chunking::ChunkArgs;
use crate::model::ModelArgs;

/// Arguments of `worker transcribe`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Decoder head: tdt, rnnt or ctc (default: the model's main head).
    #[arg(long)]
    decoder: Option<DecoderKind>,
    #[command(flatten)]
    chunks: ChunkArgs,
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
    words: &'a [warble_parakeet::TimedWord],
}

/// Loads the model once and transcribes every file; a file that fails is reported on stderr
/// and the others still run. Exit code 1 if any file failed.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let model = args.model.load()?;
    let transcribe = TranscribeOptions {
        decoder: args.decoder,
        chunking: args.chunks.chunking(),
        ..TranscribeOptions::default()
    };
    let mut stdout = std::io::stdout().lock();
    let mut failed = false;
    for file in &args.files {
        let result = audio::decode_file(file)
            .map_err(warble_parakeet::Error::from)
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
