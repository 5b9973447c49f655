//! `api`: the warble HTTP API server.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use warble_api::audit;
use warble_api::keys::{self, Role};
use warble_jobs::config::{AudioArgs, DatabaseArgs, PlatformArgs};
use warble_jobs::db::Database;
use warble_jobs::queue::Queue;
use warble_jobs::quota::{MAX_QUOTA, QuotaArgs, Quotas};

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
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a key and print its secret (shown only this once).
    Create {
        /// For people.
        #[arg(long)]
        name: String,
        /// What it may do.
        #[arg(long, value_enum)]
        role: Role,
        /// The tenant its jobs belong to (default: a new one of its own).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Set a key's quotas; a quota not given is no limit.
    Quotas {
        /// The key's id.
        id: String,
        /// Jobs queued or running at once.
        #[arg(long)]
        concurrent_jobs: Option<u32>,
        /// Seconds of audio per UTC day.
        #[arg(long, value_parser = clap::value_parser!(u64).range(..=MAX_QUOTA))]
        audio_seconds_per_day: Option<u64>,
        /// Largest upload, bytes.
        #[arg(long, value_parser = clap::value_parser!(u64).range(..=MAX_QUOTA))]
        upload_bytes: Option<u64>,
    },
    /// List the keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key's id.
        id: String,
    },
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
    #[command(flatten)]
    quotas: QuotaArgs,
    #[command(flatten)]
    webhooks: warble_api::dispatcher::WebhookArgs,
    #[command(flatten)]
    metrics: warble_jobs::metrics::MetricsArgs,
    /// Seconds a job's audio may take to fetch from its `audio_url` (each request, body
    /// included; redirects are followed up to 5 times).
    #[arg(long, env = "WARBLE_AUDIO_URL_TIMEOUT_SECS", default_value_t = 60.0)]
    audio_url_timeout_secs: f64,
    /// Let `audio_url` reach loopback, private and link-local addresses (local development and
    /// files on your own network only).
    #[arg(long, env = "WARBLE_AUDIO_URL_ALLOW_PRIVATE", default_value_t = false)]
    audio_url_allow_private: bool,
    /// Seconds after a job ends that its audio is kept (0: deleted at the next sweep); unset:
    /// kept until deleted. Tenants may have their own (`PUT /v1/tenants/{tenant}/retention`).
    #[arg(long, env = "WARBLE_RETAIN_AUDIO_SECS",
          value_parser = clap::value_parser!(u32).range(..=warble_jobs::retention::MAX_SECS as i64))]
    retain_audio_secs: Option<u32>,
    /// Seconds after a job ends that its transcript is kept; unset: kept until deleted.
    #[arg(long, env = "WARBLE_RETAIN_TRANSCRIPT_SECS",
          value_parser = clap::value_parser!(u32).range(..=warble_jobs::retention::MAX_SECS as i64))]
    retain_transcript_secs: Option<u32>,
    /// How often the sweeper runs (jobs not yet queued, batches to resume, retention), ms.
    #[arg(long, env = "WARBLE_SWEEP_INTERVAL_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..))]
    sweep_interval_ms: u64,
    /// Most requests (JSON lines, or files) in one batch.
    #[arg(long, env = "WARBLE_BATCH_MAX_REQUESTS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    batch_max_requests: u64,
    /// Most bytes of one batch's JSON Lines.
    #[arg(long, env = "WARBLE_BATCH_MAX_BYTES", default_value_t = 16 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..=1024 * 1024 * 1024))]
    batch_max_bytes: u64,
    /// Browser origins allowed to call the API (CORS), comma-separated, e.g.
    /// `https://app.example.com`; default: pages served from localhost only.
    #[arg(long, env = "WARBLE_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
    /// Secret that signs tokens (32+ characters); API replicas must share it. Without it each
    /// process makes its own, and its tokens die with it.
    #[arg(long, env = "WARBLE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Lifetime of a token, seconds.
    #[arg(long, env = "WARBLE_JWT_TTL_SECS", default_value_t = 900)]
    jwt_ttl_secs: u64,
    /// Seconds `POST /v1/audio/transcriptions` (the OpenAI-compatible route) waits for its job
    /// before answering `transcription_timeout`; the job goes on. Keep it under the clients'
    /// own timeout (the OpenAI SDKs': 600 s), or they retry.
    #[arg(long, env = "WARBLE_OPENAI_WAIT_SECS", default_value_t = 300)]
    openai_wait_secs: u64,
    /// Requests per minute per key (a token counts as its key).
    #[arg(long, env = "WARBLE_RATE_LIMIT_PER_MINUTE", default_value_t = 1200)]
    rate_limit_per_minute: u32,
    /// Requests a key may send at once before the per-minute rate applies.
    #[arg(long, env = "WARBLE_RATE_LIMIT_BURST", default_value_t = 120)]
    rate_limit_burst: u32,
    /// Requests per minute per client IP to the docs, and failed authentications.
    #[arg(long, env = "WARBLE_IP_RATE_LIMIT_PER_MINUTE", default_value_t = 60)]
    ip_rate_limit_per_minute: u32,
    /// Burst of the per-IP limit.
    #[arg(long, env = "WARBLE_IP_RATE_LIMIT_BURST", default_value_t = 20)]
    ip_rate_limit_burst: u32,
    /// Proxies whose `X-Forwarded-For` names the client (comma-separated IPs); from anyone
    /// else the header is ignored.
    #[arg(long, env = "WARBLE_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<std::net::IpAddr>,
    /// An admin key to install at start-up (at least 32 characters); without it, a fresh
    /// install makes one and prints it once.
    #[arg(long, env = "WARBLE_ADMIN_KEY", hide_env_values = true)]
    admin_key: Option<String>,
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
            print!("{}", warble_api::openapi_json());
            Ok(())
        }
        Command::Migrate => {
            let db = Database::connect(&cli.serve.platform.database).await?;
            db.migrate().await.context("migrating")?;
            tracing::info!(database = db.kind(), "migrations applied");
            Ok(())
        }
        Command::Keys(command) => {
            let defaults = cli.serve.quotas.defaults();
            manage_keys(&cli.serve.platform.database, defaults, command).await
        }
        Command::Serve => serve(cli.serve).await,
    }
}

/// `api keys ...`: straight on the database, for operators.
async fn manage_keys(
    database: &DatabaseArgs,
    defaults: Quotas,
    command: KeysCommand,
) -> anyhow::Result<()> {
    let db = Database::connect(database).await?;
    db.migrate().await.context("migrating")?;
    match command {
        KeysCommand::Create { name, role, tenant } => {
            let quotas = match role {
                Role::Admin => Quotas::default(),
                Role::User => defaults,
            };
            let (key, secret) = keys::create(&db, &name, role, tenant.as_deref(), quotas).await?;
            let detail = serde_json::json!({
                "name": key.name, "role": key.role, "tenant": key.tenant, "quotas": key.quotas,
            });
            audit::record(&db, "cli", "key.create", &key.id, detail).await?;
            println!("{}", serde_json::json!({ "key": key, "secret": secret }));
        }
        KeysCommand::List => {
            for key in keys::list(&db).await? {
                println!("{}", serde_json::to_string(&key)?);
            }
        }
        KeysCommand::Quotas {
            id,
            concurrent_jobs,
            audio_seconds_per_day,
            upload_bytes,
        } => {
            let quotas = Quotas {
                concurrent_jobs,
                audio_seconds_per_day,
                upload_bytes,
            };
            let Some(before) = warble_jobs::quota::set(&db, &id, quotas).await? else {
                anyhow::bail!("no key {id}");
            };
            let detail = serde_json::json!({ "before": before, "after": quotas });
            audit::record(&db, "cli", "quota.update", &id, detail).await?;
            let key = keys::get(&db, &id).await?.context("the key disappeared")?;
            println!("{}", serde_json::to_string(&key)?);
        }
        KeysCommand::Revoke { id } => match keys::revoke(&db, &id).await? {
            Some(key) => {
                let detail = serde_json::json!({ "name": key.name, "tenant": key.tenant });
                audit::record(&db, "cli", "key.revoke", &key.id, detail).await?;
                println!("{}", serde_json::to_string(&key)?);
            }
            None => anyhow::bail!("no key {id}"),
        },
    }
    Ok(())
}

/// Refuses a configured secret too short to resist guessing.
fn check_secret(name: &str, secret: Option<&str>) -> anyhow::Result<()> {
    if let Some(secret) = secret {
        anyhow::ensure!(
            secret.len() >= keys::MIN_SECRET_LEN,
            "{name} must be at least {} characters",
            keys::MIN_SECRET_LEN
        );
    }
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    check_secret("WARBLE_ADMIN_KEY", args.admin_key.as_deref())?;
    check_secret("WARBLE_JWT_SECRET", args.jwt_secret.as_deref())?;
    let jwt_secret = match &args.jwt_secret {
        Some(secret) => secret.clone(),
        None => {
            tracing::warn!(
                "WARBLE_JWT_SECRET is not set: tokens are signed with a key of this process only"
            );
            keys::generate()
        }
    };
    let (db, storage) = args.platform.connect().await?;
    if let Some(secret) = keys::bootstrap_admin(&db, args.admin_key.as_deref()).await? {
        // Shown once, on the terminal, not in the structured log.
        println!(
            "\nNo admin key existed, so one was made. It is shown only now:\n\n    {secret}\n\n\
             Send it as `Authorization: Bearer <key>`; make user keys with POST /v1/keys or \
             `api keys create`.\n"
        );
    }
    let queue = Queue::new(&db, &args.platform.queue);
    let state = warble_api::AppState {
        db,
        storage,
        queue,
        max_upload_bytes: args.max_upload_bytes,
        max_audio_seconds: args.audio.max_audio_seconds as f64,
        default_quotas: args.quotas.defaults(),
        webhook_allow_private: args.webhooks.webhook_allow_private,
        webhook_rotation_grace: chrono::TimeDelta::seconds(
            args.webhooks.webhook_rotation_grace_secs.max(0),
        ),
        cors_origins: args.cors_origins.clone(),
        rate_limits: warble_api::rate_limit::RateLimits::new(
            args.rate_limit_per_minute,
            args.rate_limit_burst,
            args.ip_rate_limit_per_minute,
            args.ip_rate_limit_burst,
            args.trusted_proxies.clone(),
        ),
        tokens: warble_api::token::Tokens::new(
            jwt_secret.as_bytes(),
            std::time::Duration::from_secs(args.jwt_ttl_secs.max(1)),
        ),
        sandbox: args.audio.sandbox(args.audio.probe_timeout_secs)?,
        worker_timeout: chrono::TimeDelta::from_std(args.platform.queue.orphan_timeout())?,
        openai_wait: std::time::Duration::from_secs(args.openai_wait_secs),
        metrics: warble_api::metrics::Metrics::new(),
        audio_url: warble_api::state::AudioUrlSettings {
            allow_private: args.audio_url_allow_private,
            timeout: std::time::Duration::from_secs_f64(args.audio_url_timeout_secs.max(0.1)),
        },
        retention: warble_jobs::retention::Periods {
            audio_secs: args.retain_audio_secs,
            transcript_secs: args.retain_transcript_secs,
        },
        sweep_interval: std::time::Duration::from_millis(args.sweep_interval_ms),
        batch_limits: warble_api::routes::batches::BatchLimits {
            max_requests: args.batch_max_requests as usize,
            max_bytes: args.batch_max_bytes as usize,
        },
    };
    if args.audio_url_allow_private {
        tracing::warn!(
            "WARBLE_AUDIO_URL_ALLOW_PRIVATE is set: audio URLs may reach private networks"
        );
    }
    // Background tasks stop when the server does: the sweeper between sweeps, the dispatcher
    // once its attempts in flight are recorded.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let sweeper = warble_api::spawn_sweeper(state.clone(), shutdown.clone());
    if args.webhooks.webhook_allow_private {
        tracing::warn!("WARBLE_WEBHOOK_ALLOW_PRIVATE is set: webhooks may reach private networks");
    }
    let dispatcher = warble_api::dispatcher::Dispatcher::new(
        state.db.clone(),
        &args.webhooks,
        state.metrics.clone(),
    )
    .spawn(shutdown.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    // Tests and scripts read the bound address from this line (`--listen 127.0.0.1:0`).
    tracing::info!(address = %listener.local_addr()?, "listening");
    if let Some(listen) = args.metrics.metrics_listen {
        let (metrics, db, worker_timeout) = (
            state.metrics.clone(),
            state.db.clone(),
            state.worker_timeout,
        );
        let render = move || {
            let (metrics, db) = (metrics.clone(), db.clone());
            async move {
                metrics
                    .render(&db, worker_timeout)
                    .await
                    .inspect_err(
                        |err| tracing::warn!(error = %err, "metrics: reading the database"),
                    )
                    .ok()
            }
        };
        let listener = warble_jobs::metrics::bind(listen)
            .await
            .with_context(|| format!("binding the metrics address {listen}"))?;
        tokio::spawn(warble_jobs::metrics::serve(listener, render));
    }
    let app = warble_api::app(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    shutdown.cancel();
    for (name, task) in [("sweeper", sweeper), ("dispatcher", dispatcher)] {
        if let Err(err) = task.await {
            tracing::error!(task = name, error = %err, "background task ended abnormally");
        }
    }
    served?;
    Ok(())
}

/// Resolves when the process is asked to stop.
async fn shutdown_signal() {
    warble_jobs::signal::shutdown_requested()
        .await
        .expect("installing the signal handlers");
    tracing::info!("shutting down");
}
