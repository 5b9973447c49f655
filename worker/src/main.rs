//! The warble worker: transcribes audio with a Parakeet model.
//!
//! `worker run` takes jobs from the queue the API fills; `worker transcribe` runs the engine on
//! local files without any queue, which is also how the pipeline's results are checked.

mod chunking;
mod enrich;
mod metrics;
mod model;
mod run;
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
    /// Take jobs from the queue until stopped.
    Run(Box<run::Args>),
}

fn main() -> std::process::ExitCode {
    // A copy of this executable decodes each job's audio in a limited child process.
    if let Some(code) = warble_audio::sandbox::serve_child() {
        std::process::exit(code);
    }
    warble_parakeet::memory::retain_freed_memory();
    let cli = Cli::parse();
    // A queue worker is a service and reports what it does; `transcribe` prints results only.
    // hf-hub logs an error when its retries run out, naming the URL that the model-loading error
    // then names again, with the cause.
    let default_filter = match cli.command {
        Command::Run(_) => "info,hf_hub::retry=off",
        Command::Transcribe(_) => "warn,hf_hub::retry=off",
    };
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_env("WARBLE_LOG")
                .unwrap_or_else(|_| EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Transcribe(args) => transcribe::run(args),
        Command::Run(args) => run::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}
