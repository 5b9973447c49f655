//! `worker run`: takes jobs from the queue, transcribes them and stores the results.
//!
//! Delivery is at least once (a job whose worker dies is handed to another after the orphan
//! timeout), results are stored exactly once: see `warble_jobs::job`. A job is failed for
//! good when its audio cannot be decoded or when it has used up its attempts; errors of the
//! database or the store are retried after a growing pause.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use apalis::prelude::{BackendExt, BoxDynError, Data, Monitor, WorkerBuilder, WorkerBuilderExt};
use chrono::Utc;
use tokio::sync::watch;
use warble_audio::{AudioError, Sandbox};
use warble_jobs::config::{AudioArgs, PlatformArgs};
use warble_jobs::db::{Database, DbError};
use warble_jobs::error_code::ErrorCode;
use warble_jobs::filename;
use warble_jobs::job::{self, JobError};
use warble_jobs::queue::{Queue, TranscribeTask};
use warble_jobs::storage::{self, Storage, StorageError};
use warble_jobs::transcript::{Segment, Transcript, Word};
use warble_jobs::workers::{self, DeviceMemory, WorkerInfo};
use warble_parakeet::service::{BatchLimits, ModelService, Progress};
use warble_parakeet::{Chunking, DecoderKind, Error as EngineError, TranscribeOptions};

use crate::chunking::ChunkArgs;
use crate::enrich::{self, DiarizationArgs, Diarizer, EnrichError};
use crate::metrics::{Finished, Metrics};
use crate::model::ModelArgs;

/// How long apalis may take to stop once the worker's own jobs are done or abandoned.
const APALIS_SHUTDOWN: Duration = Duration::from_secs(1);

/// How often an idle worker looks for new jobs.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Arguments of `worker run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Jobs in hand at once: their audio is decoded side by side and their chunks share the
    /// model's encoder passes. Default: 4 on a CPU, 128 on a GPU.
    #[arg(long, env = "WARBLE_CONCURRENCY")]
    concurrency: Option<usize>,
    /// Padded audio per encoder pass, seconds (items x the longest): bounds the device memory a
    /// pass takes, whatever the jobs. Default: 0 on a CPU (one chunk per pass: batching gains
    /// nothing there), 16384 on a GPU.
    #[arg(long, env = "WARBLE_MAX_BATCH_SECONDS")]
    max_batch_seconds: Option<f64>,
    /// Milliseconds the oldest waiting chunk waits for others to share its pass. Default: 0 on
    /// a CPU, 20 on a GPU.
    #[arg(long, env = "WARBLE_MAX_BATCH_WAIT_MS")]
    max_batch_wait_ms: Option<u64>,
    #[command(flatten)]
    chunks: ChunkArgs,
    /// Seconds of synthetic audio transcribed once at start, before the worker registers and
    /// takes jobs, so that the first job finds the thread pools started, the weights in memory
    /// and int8 weights repacked instead of paying for them. Default: 10 (or one chunk, if
    /// shorter); 0 skips it.
    #[arg(long, env = "WARBLE_WARM_UP_SECONDS")]
    warm_up_seconds: Option<f64>,
    #[command(flatten)]
    diarization: DiarizationArgs,
    /// Seconds a stopping worker (SIGTERM, Ctrl-C) waits for its jobs to finish; a job still
    /// running then is taken again by another worker after the orphan timeout.
    #[arg(long, env = "WARBLE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    shutdown_timeout_secs: u64,
    /// Milliseconds between writes of a running job's progress (made only when it moved); each
    /// time also notices whether the job was canceled, which frees its place in the model's
    /// batches.
    #[arg(long, env = "WARBLE_PROGRESS_INTERVAL_MS", default_value_t = 1000)]
    progress_interval_ms: u64,
    #[command(flatten)]
    platform: PlatformArgs,
    #[command(flatten)]
    audio: AudioArgs,
    #[command(flatten)]
    metrics: warble_jobs::metrics::MetricsArgs,
}

/// What every job handler needs.
struct Shared {
    /// The model, behind the queue that batches every job's chunks.
    service: ModelService,
    /// The diarization model for `speaker_labels`, when one is configured.
    diarizer: Option<Arc<Diarizer>>,
    /// How long audio is cut.
    chunking: Option<Chunking>,
    /// Decodes each job's audio in a limited child process.
    sandbox: Sandbox,
    max_audio_seconds: f64,
    db: Database,
    storage: Storage,
    worker_id: String,
    max_attempts: i64,
    /// Jobs in hand (see [`InHand`]), for the heartbeat and for a stopping worker to wait on.
    current: Mutex<Vec<String>>,
    /// Set when the worker was asked to stop: jobs delivered from then on are handed back.
    draining: AtomicBool,
    /// Consecutive failures to start a job (the database), for the pause before the next.
    start_failures: AtomicU32,
    /// How often a running job's progress is written and its cancel looked for.
    progress_interval: Duration,
    /// Prometheus metrics, served on `WARBLE_METRICS_LISTEN`.
    metrics: Arc<Metrics>,
}

/// Holds a job in [`Shared::current`] from the start of its delivery to the end.
struct InHand<'a> {
    ctx: &'a Shared,
    id: String,
}

impl<'a> InHand<'a> {
    fn new(ctx: &'a Shared, id: &str) -> Self {
        ctx.current
            .lock()
            .expect("not poisoned")
            .push(id.to_string());
        Self {
            ctx,
            id: id.to_string(),
        }
    }
}

impl Drop for InHand<'_> {
    fn drop(&mut self) {
        self.ctx
            .current
            .lock()
            .expect("not poisoned")
            .retain(|j| j != &self.id);
    }
}

type Ctx = Arc<Shared>;

/// Runs the worker until SIGTERM or Ctrl-C.
pub fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(serve(args));
    // A transcription still running after the shutdown timeout is abandoned, not awaited:
    // its job goes to another worker after the orphan timeout.
    runtime.shutdown_background();
    result?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let (db, storage) = args.platform.connect().await?;
    let model_args = args.model.clone();
    let model = tokio::task::spawn_blocking(move || model_args.load()).await??;
    let (diarization, device) = (args.diarization.clone(), args.model.device.clone());
    let diarizer = tokio::task::spawn_blocking(move || diarization.load(&device))
        .await??
        .map(Arc::new);
    let defaults = BatchLimits::for_device(model.device());
    let limits = BatchLimits {
        max_batch_secs: args.max_batch_seconds.unwrap_or(defaults.max_batch_secs),
        max_wait: args
            .max_batch_wait_ms
            .map_or(defaults.max_wait, Duration::from_millis),
    };
    let concurrency = args
        .concurrency
        .unwrap_or(if model.device().is_cpu() { 4 } else { 128 })
        .max(1);
    let service = ModelService::start(model, limits);
    let service = warm_up(service, args.chunks.chunking(), args.warm_up_seconds).await?;
    let host = hostname();
    let worker_id = format!(
        "{host}-{}-{}",
        std::process::id(),
        &ulid::Ulid::generate().to_string()[20..]
    );
    let now = Utc::now();
    let info = WorkerInfo {
        id: worker_id.clone(),
        hostname: host,
        device: args.model.device.clone(),
        model: args.model.model.clone(),
        current_jobs: Vec::new(),
        current_job: None,
        started_at: now,
        last_seen: now,
        device_memory: None,
    };
    let metrics = Arc::new(Metrics::new(
        &worker_id,
        &args.model.device,
        &workers::model_id(&args.model.model),
    ));
    if let Some(listen) = args.metrics.metrics_listen {
        let listener = warble_jobs::metrics::bind(listen).await?;
        let metrics = metrics.clone();
        tokio::spawn(warble_jobs::metrics::serve(listener, move || {
            let metrics = metrics.clone();
            async move { Some(metrics.render()) }
        }));
    }
    workers::register(&db, &info).await?;
    let ctx: Ctx = Arc::new(Shared {
        service,
        diarizer,
        chunking: args.chunks.chunking(),
        sandbox: args.audio.sandbox(args.audio.decode_timeout_secs)?,
        max_audio_seconds: args.audio.max_audio_seconds as f64,
        db: db.clone(),
        storage,
        worker_id: worker_id.clone(),
        max_attempts: i64::from(args.platform.queue.max_attempts.max(1)),
        current: Mutex::new(Vec::new()),
        draining: AtomicBool::new(false),
        start_failures: AtomicU32::new(0),
        progress_interval: Duration::from_millis(args.progress_interval_ms.max(10)),
        metrics,
    });
    let heartbeat = tokio::spawn(beat(ctx.clone(), args.platform.queue.heartbeat()));
    let diarization = ctx.diarizer.as_ref().map_or("none", |d| d.describe());
    tracing::info!(worker = %worker_id, device = %args.model.device, model = %args.model.model,
        diarization, diarization_model = args.diarization.diarization_model.as_deref().unwrap_or(""),
        database = db.kind(), concurrency, max_batch_seconds = limits.max_batch_secs,
        max_batch_wait_ms = limits.max_wait.as_millis() as u64, "worker ready");

    let (stop, stopping) = tokio::sync::watch::channel(false);
    tokio::spawn(drain(
        ctx.clone(),
        Duration::from_secs(args.shutdown_timeout_secs),
        stop,
    ));
    let queue = Queue::new(&db, &args.platform.queue);
    consume(&queue, &ctx, concurrency, stopping).await;
    heartbeat.abort();
    if let Err(err) = workers::deregister(&db, &worker_id).await {
        tracing::warn!(error = %err, "deregistering the worker");
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// Transcribes synthetic audio once through the model service, the path jobs take, before the
/// worker registers: the first job would otherwise pay for growing the allocator's arenas to a
/// chunk's activations, starting the thread pools and faulting in the weights
/// ([`warble_parakeet::Parakeet::warm_up`]). `secs` overrides the length (default: [`warble_parakeet::WARM_UP_SECS`]).
async fn warm_up(
    service: ModelService,
    chunking: Option<Chunking>,
    secs: Option<f64>,
) -> anyhow::Result<ModelService> {
    let options = TranscribeOptions {
        chunking,
        ..TranscribeOptions::default()
    };
    let secs = secs.unwrap_or_else(|| warble_parakeet::Parakeet::warm_up_secs(&options));
    if secs.is_nan() || secs <= 0.0 {
        return Ok(service);
    }
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let audio = service.model().warm_up_audio(secs);
        service
            .transcribe(&audio, &options, Arc::new(AtomicBool::new(false)), |_| {})
            .map_err(|e| anyhow::anyhow!("warming up the model: {e}"))?;
        tracing::info!(
            audio_secs = secs,
            ms = started.elapsed().as_millis() as u64,
            "model warmed up"
        );
        Ok(service)
    })
    .await?
}

/// Runs apalis workers on `queue` until `stopping` turns true. apalis ends a worker whose
/// database connection fails; a new one starts after a pause that grows while the failures go
/// on, so an outage is waited out without a busy loop.
async fn consume(queue: &Queue, ctx: &Ctx, concurrency: usize, stopping: watch::Receiver<bool>) {
    let stop_requested = |mut stopping: watch::Receiver<bool>| async move {
        stopping.wait_for(|stop| *stop).await.ok();
    };
    let mut failures = 0;
    for generation in 0.. {
        let running_since = Instant::now();
        // apalis wants a distinct name for every worker it starts.
        let name = format!("{}-{generation}", ctx.worker_id);
        let signal = stop_requested(stopping.clone());
        macro_rules! monitor {
            ($backend:expr) => {{
                let backend = $backend.clone();
                let ctx = ctx.clone();
                Monitor::new()
                    .register(move |_| {
                        WorkerBuilder::new(name.clone())
                            .backend(backend.clone().poll_with_interval(POLL_INTERVAL))
                            .data(ctx.clone())
                            .concurrency(concurrency)
                            .build(handle)
                    })
                    // `drain` already waited for the jobs in hand.
                    .shutdown_timeout(APALIS_SHUTDOWN)
                    .run_with_signal(async move {
                        signal.await;
                        Ok(())
                    })
                    .await
            }};
        }
        let result = match queue {
            Queue::Sqlite(storage) => monitor!(storage),
            Queue::Postgres(storage) => monitor!(storage),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "queue worker failed");
        }
        if *stopping.borrow() {
            return;
        }
        if running_since.elapsed() > Duration::from_secs(60) {
            failures = 0;
        }
        failures += 1;
        let pause = Duration::from_secs(1 << (failures - 1).min(5));
        tracing::warn!(
            pause_secs = pause.as_secs(),
            "queue worker stopped; starting it again"
        );
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop_requested(stopping.clone()) => return,
        }
    }
}

/// Reports the worker alive, with its current jobs and its device's memory, every `interval`.
async fn beat(ctx: Ctx, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    loop {
        tick.tick().await;
        let current = ctx.current.lock().expect("not poisoned").clone();
        let memory = warble_parakeet::memory::device_memory(ctx.service.model().device()).map(
            |(used, total)| DeviceMemory {
                used_bytes: used as i64,
                total_bytes: total as i64,
            },
        );
        if let Err(err) = workers::beat(&ctx.db, &ctx.worker_id, &current, memory).await {
            tracing::warn!(error = %err, "heartbeat failed");
        }
    }
}

/// How one attempt at a job ended, when it did not succeed.
enum Failure {
    /// Retrying cannot help: fail the job with this error.
    Permanent(JobError),
    /// Infrastructure trouble: try again later.
    Transient(anyhow::Error),
}

impl From<DbError> for Failure {
    fn from(err: DbError) -> Self {
        Self::Transient(err.into())
    }
}

fn permanent(code: ErrorCode, message: impl Into<String>) -> Failure {
    Failure::Permanent(JobError::new(code, message))
}

/// The queue handler: one delivery of one job.
async fn handle(task: TranscribeTask, ctx: Data<Ctx>) -> Result<(), BoxDynError> {
    let ctx: Ctx = (*ctx).clone();
    let id = task.job_id;
    let _in_hand = InHand::new(&ctx, &id);
    if ctx.draining.load(Ordering::SeqCst) {
        // Untouched: the queue delivers it again, to another worker or to this one restarted.
        return Err("the worker is stopping; job handed back".into());
    }
    let started = match job::start(&ctx.db, &id, &ctx.worker_id).await {
        Ok(Some(started)) => started,
        Ok(None) => {
            tracing::info!(job = %id, "job already finished or canceled; skipping");
            return Ok(());
        }
        Err(err) => {
            // Nothing was changed. Hand the job back after a pause that grows while the
            // failures go on: an immediate return would have the queue deliver it again at
            // once, spending its deliveries in a busy loop through an outage.
            let failures = ctx.start_failures.fetch_add(1, Ordering::SeqCst);
            let pause = backoff(failures);
            tracing::warn!(job = %id, error = %err, pause_secs = pause.as_secs(), "starting the job failed; will retry");
            tokio::time::sleep(pause).await;
            return Err(err.into());
        }
    };
    ctx.start_failures.store(0, Ordering::SeqCst);
    let attempt = started.job.attempts;
    if attempt > ctx.max_attempts {
        let error = JobError::new(
            ErrorCode::TooManyAttempts,
            format!(
                "the job was started {} times without finishing (workers crashed or could not reach storage)",
                attempt - 1
            ),
        );
        settle(&ctx, &id, || job::fail(&ctx.db, &id, None, &error)).await?;
        ctx.metrics.finished(Finished::Failed);
        tracing::error!(job = %id, "job failed: out of attempts");
        return Ok(());
    }
    tracing::info!(job = %id, attempt, "job started");
    let outcome = transcribe(&ctx, &started).await;
    match outcome {
        Ok(()) => Ok(()),
        Err(Failure::Permanent(error)) => {
            tracing::warn!(job = %id, code = %error.code, message = %error.message, "job failed");
            settle(&ctx, &id, || {
                job::fail(&ctx.db, &id, Some(&ctx.worker_id), &error)
            })
            .await?;
            ctx.metrics.finished(Finished::Failed);
            Ok(())
        }
        Err(Failure::Transient(err)) => {
            // Wait before giving the job back so a struggling dependency is not hammered;
            // the queue then delivers it again and the next attempt is counted.
            let pause = backoff(attempt as u32);
            tracing::warn!(job = %id, attempt, error = %err, pause_secs = pause.as_secs(), "attempt failed; will retry");
            tokio::time::sleep(pause).await;
            Err(err.into())
        }
    }
}

/// The pause before the `n`th retry (from 0): 1 s, doubling, at most a minute.
fn backoff(n: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(n).min(60))
}

/// Writes a job's outcome once the work is done (`write` is `job::succeed` or `job::fail`),
/// retrying while the database is unavailable. Giving the job back instead would have it
/// decoded and transcribed again, and a permanent error would end up as `too_many_attempts`
/// with its own code lost. Gives up when the worker is stopping (the job is then handed
/// back) or on an error that is not an outage, which retrying would meet again.
async fn settle<F, Fut>(ctx: &Shared, id: &str, write: F) -> Result<bool, DbError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, DbError>>,
{
    let mut retries = 0;
    loop {
        match write().await {
            Ok(done) => return Ok(done),
            Err(err) if !err.is_unavailable() || ctx.draining.load(Ordering::SeqCst) => {
                return Err(err);
            }
            Err(err) => {
                let pause = backoff(retries).min(Duration::from_secs(10));
                tracing::warn!(job = %id, error = %err, pause_secs = pause.as_secs(), "recording the outcome failed; retrying");
                tokio::time::sleep(pause).await;
                retries += 1;
            }
        }
    }
}

/// Fetches, decodes and transcribes the job's audio, and stores the transcript.
async fn transcribe(ctx: &Ctx, stored: &job::StoredJob) -> Result<(), Failure> {
    let id = &stored.job.id;
    // The audio goes to a local file (streamed, never whole in memory) that the decoding
    // child reads; the file is removed when `local` drops.
    let (local, mut file) = storage::local_copy().map_err(|e| Failure::Transient(e.into()))?;
    match ctx.storage.download(&stored.audio_key, &mut file).await {
        Ok(_) => drop(file),
        Err(StorageError::NotFound(_)) => {
            return Err(permanent(
                ErrorCode::AudioMissing,
                "the uploaded audio is no longer in storage",
            ));
        }
        Err(err) => return Err(Failure::Transient(err.into())),
    }
    let extension = stored.job.filename.as_deref().and_then(filename::extension);
    let decoder = match stored.job.decoder.as_deref().map(str::parse::<DecoderKind>) {
        None => None,
        Some(Ok(kind)) => Some(kind),
        Some(Err(_)) => return Err(permanent(ErrorCode::InvalidDecoder, "unknown decoder")),
    };
    // Decoded and declared lengths may differ by codec padding and priming, and by rounding.
    let slack = |secs: f64| (secs * 0.02).max(0.5);
    // The key was charged the length measured at upload. Decoding more than that (a stream
    // whose timestamps understate it) would transcribe audio nobody was charged for: the
    // decoder stops there.
    let charged = stored.job.duration.filter(|secs| *secs > 0.0);
    let limit = charged.map_or(ctx.max_audio_seconds, |secs| {
        (secs + slack(secs)).min(ctx.max_audio_seconds)
    });
    let worker = ctx.clone();
    let decoding = Instant::now();
    let audio = tokio::task::spawn_blocking(move || {
        worker
            .sandbox
            .decode(local.path(), extension.as_deref(), limit)
    })
    .await
    .map_err(|e| Failure::Transient(e.into()))?
    .map_err(|e| match (e, charged) {
        // Our own disk, not the file: worth another attempt.
        (e @ AudioError::Io(_), _) => Failure::Transient(e.into()),
        (AudioError::TooLong { .. }, Some(charged)) if limit < ctx.max_audio_seconds => permanent(
            ErrorCode::AudioDecodeFailed,
            format!("the file holds more audio than the {charged:.1} s measured at upload"),
        ),
        (e, _) => permanent(
            ErrorCode::AudioDecodeFailed,
            format!("the audio could not be decoded: {e}"),
        ),
    })?;
    let worker = ctx.clone();
    let decode_ms = decoding.elapsed().as_millis();
    let duration = audio.duration_secs();
    if let Some(declared) = stored.job.duration
        && declared - duration > slack(declared)
    {
        // Cut short or damaged: transcribing the rest would pass off part of the audio as all
        // of it.
        return Err(permanent(
            ErrorCode::AudioDecodeFailed,
            format!(
                "the file is truncated or damaged: only {duration:.1} s of the {declared:.1} s it \
                 declares could be decoded"
            ),
        ));
    }
    // The key pays for the audio decoded. (A file cut short keeps the length it declared: it
    // is failed for that, on every attempt.)
    if !warble_jobs::quota::reconcile(&ctx.db, id, &ctx.worker_id, duration).await?
        || !job::progress(&ctx.db, id, &ctx.worker_id, DECODED, None).await?
    {
        tracing::info!(job = %id, "job canceled or taken over; stopping");
        return Ok(());
    }
    enrich::check(ctx.diarizer.as_deref(), &stored.job.features, duration)
        .map_err(enrich_failure)?;
    let options = TranscribeOptions {
        decoder,
        chunking: ctx.chunking,
        ..TranscribeOptions::default()
    };
    let inferring = Instant::now();
    let canceled = Arc::new(AtomicBool::new(false));
    let (report, mut reports) = watch::channel(None::<Progress>);
    let flag = canceled.clone();
    let samples = Arc::new(audio.samples);
    let audio_samples = samples.clone();
    let mut inference = tokio::task::spawn_blocking(move || {
        worker
            .service
            .transcribe(&audio_samples, &options, flag, |p| {
                report.send_replace(Some(p));
            })
    });
    let mut tick = tokio::time::interval(ctx.progress_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let result = loop {
        tokio::select! {
            done = &mut inference => break done.map_err(|e| Failure::Transient(e.into()))?,
            _ = tick.tick() => {
                // Progress is written when there is news; otherwise a read tells whether the
                // job is still ours, so a worker with many jobs in hand writes little.
                let held = if reports.has_changed().unwrap_or(false) {
                    let (fraction, eta) =
                        estimate(*reports.borrow_and_update(), inferring.elapsed());
                    job::progress(&ctx.db, id, &ctx.worker_id, fraction, eta).await
                } else {
                    job::held(&ctx.db, id, &ctx.worker_id).await
                };
                match held {
                    Ok(true) => {}
                    // Its chunks that have not run yet give their places to other jobs.
                    Ok(false) => canceled.store(true, Ordering::SeqCst),
                    // Only a report was lost; the outcome is written with retries.
                    Err(err) => tracing::warn!(job = %id, error = %err, "recording progress failed"),
                }
            }
        }
    };
    let inference_ms = inferring.elapsed().as_millis();
    let transcript = match result {
        Ok(transcript) => transcript,
        Err(EngineError::Canceled) => {
            ctx.metrics.finished(Finished::Canceled);
            tracing::info!(job = %id, "job canceled or taken over while running; stopping");
            return Ok(());
        }
        Err(EngineError::ServiceStopped) => {
            return Err(Failure::Transient(EngineError::ServiceStopped.into()));
        }
        Err(EngineError::Unsupported(message) | EngineError::Config(message)) => {
            return Err(permanent(ErrorCode::Unsupported, message));
        }
        Err(err) => return Err(permanent(ErrorCode::TranscriptionFailed, err.to_string())),
    };
    let (worker, features) = (ctx.clone(), stored.job.features.clone());
    let stored_form = to_stored(&transcript);
    let enriched = tokio::task::spawn_blocking(move || {
        enrich::apply(worker.diarizer.as_deref(), &samples, stored_form, &features)
    })
    .await
    .map_err(|e| Failure::Transient(e.into()))?
    .map_err(enrich_failure)?;
    let json = serde_json::to_string(&enriched).map_err(|e| Failure::Transient(e.into()))?;
    if settle(ctx, id, || job::succeed(&ctx.db, id, &ctx.worker_id, &json)).await? {
        let now = Utc::now();
        let since = |t: chrono::DateTime<Utc>| (now - t).to_std().unwrap_or_default();
        ctx.metrics.succeeded(
            since(stored.job.created_at),
            since(stored.job.started_at.unwrap_or(now)),
            duration,
        );
        tracing::info!(job = %id, duration, words = transcript.words.len(), decode_ms,
            inference_ms, "job succeeded");
    } else {
        ctx.metrics.finished(Finished::Canceled);
        tracing::info!(job = %id, "job canceled or taken over while running; result dropped");
    }
    Ok(())
}

/// How a job whose features cannot be applied fails: for good, `unsupported` when this worker
/// cannot do what it asks.
fn enrich_failure(err: EnrichError) -> Failure {
    let code = match &err {
        EnrichError::NoDiarizer
        | EnrichError::TooLong(_)
        | EnrichError::Diarization(EngineError::Unsupported(_)) => ErrorCode::Unsupported,
        EnrichError::Diarization(_) => ErrorCode::TranscriptionFailed,
    };
    permanent(code, err.to_string())
}

/// The progress recorded once the audio is decoded; transcription takes it from there to 1.
const DECODED: f64 = 0.1;

/// The job's progress and its expected end, from the model's report so far and the time since
/// transcription began: the pace so far, kept up.
fn estimate(report: Option<Progress>, elapsed: Duration) -> (f64, Option<chrono::DateTime<Utc>>) {
    let done = report.map_or(0.0, |p| p.fraction());
    let fraction = DECODED + (1.0 - DECODED) * done;
    let eta = (done > 0.0).then(|| {
        let remaining = elapsed.as_secs_f64() * (1.0 - done) / done;
        Utc::now() + chrono::Duration::milliseconds((remaining * 1000.0) as i64)
    });
    (fraction, eta)
}

/// The engine's transcript in the stored form.
fn to_stored(t: &warble_parakeet::Transcript) -> Transcript {
    Transcript {
        text: t.text.clone(),
        duration: t.duration,
        segments: t
            .segments
            .iter()
            .map(|s| Segment {
                text: s.text.clone(),
                start: s.start,
                end: s.end,
                speaker: None,
            })
            .collect(),
        words: t
            .words
            .iter()
            .map(|w| Word {
                word: w.word.clone(),
                start: w.start,
                end: w.end,
                speaker: None,
            })
            .collect(),
        utterances: None,
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into())
}

/// On SIGTERM or Ctrl-C: stops taking jobs, waits up to `timeout` for those in hand, then
/// tells apalis to stop (`stop`).
///
/// The waiting happens before apalis is told, not inside its own graceful shutdown: apalis
/// stops polling its queue there, and on SQLite a queue transaction it leaves unfinished holds
/// the database's write lock, so the running job could never store its result.
async fn drain(ctx: Ctx, timeout: Duration, stop: watch::Sender<bool>) {
    match warble_jobs::signal::shutdown_requested().await {
        Ok(()) => tracing::info!("stopping: finishing current jobs"),
        Err(err) => tracing::error!(error = %err, "cannot listen for signals; stopping"),
    }
    ctx.draining.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + timeout;
    while !ctx.current.lock().expect("not poisoned").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send_replace(true);
}
