//! The warble worker: transcribes audio with a Parakeet model.
//!
//! `worker transcribe` runs the engine on local files without any queue, which is also how the
//! pipeline's results are checked against the engine.

mod transcribe;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// warble worker
#[derive(Debug, Parser)]
#[command(name = "worker", version, about = "warble transcription worker")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Transcribe local audio files and print the results.
    Transcribe(transcribe::Args),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_env("WARBLE_LOG").unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Transcribe(args) => transcribe::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
