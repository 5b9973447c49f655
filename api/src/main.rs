//! `api`: the warble HTTP API server.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use warble_common::config::{AudioArgs, PlatformArgs};
use warble_common::db::Database;
use warble_common::queue::Queue;

/// warble API server
#[derive(Debug, Parser)]
#[command(name = "api", version, about = "warble HTTP API")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "WARBLE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Largest accepted upload, bytes (default 100 MB).
    #[arg(long, env = "WARBLE_MAX_UPLOAD_BYTES", default_value_t = 100_000_000)]
    max_upload_bytes: u64,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    audio: AudioArgs,
}

fn main() -> anyhow::Result<()> {
    // A copy of this executable probes each upload in a limited child process.
    if let Some(code) = warble_audio::sandbox::serve_child() {
        std::process::exit(code);
    }
    tokio::runtime::Runtime::new()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            EnvFilter::try_from_env("WARBLE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Openapi => {
            print!("{}", api::openapi_json());
            Ok(())
        }
        Command::Migrate => {
            let db = Database::connect(&cli.serve.platform.database).await?;
            db.migrate().await.context("migrating")?;
            tracing::info!(database = db.kind(), "migrations applied");
            Ok(())
        }
        Command::Serve => serve(cli.serve).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (db, storage) = args.platform.connect().await?;
    let queue = Queue::new(&db, &args.platform.queue);
    let state = api::AppState {
        db,
        storage,
        queue,
        max_upload_bytes: args.max_upload_bytes,
        max_audio_seconds: args.audio.max_audio_seconds as f64,
        sandbox: args.audio.sandbox(args.audio.probe_timeout_secs)?,
        worker_timeout: chrono::TimeDelta::from_std(args.platform.queue.orphan_timeout())?,
    };
    api::spawn_sweeper(state.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    // Tests and scripts read the bound address from this line (`--listen 127.0.0.1:0`).
    tracing::info!(address = %listener.local_addr()?, "listening");
    axum::serve(listener, api::app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

/// Resolves when the process is asked to stop.
async fn shutdown_signal() {
    warble_common::signal::shutdown_requested()
        .await
        .expect("installing the signal handlers");
    tracing::info!("shutting down");
}
