//! The worker's Prometheus metrics (served on `WARBLE_METRICS_LISTEN` by
//! [`warble_jobs::metrics::serve`]): jobs finished by outcome, their latency (submitted to
//! finished) and processing time (started to finished), seconds of audio transcribed, and the
//! worker's speed over the last minute, labelled with its device and model.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use warble_jobs::metrics::seconds_buckets;

/// The window the speed is measured over.
const SPEED_WINDOW: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
    device: String,
    model: String,
}

/// How a job this worker held ended.
#[derive(Debug, Clone, Copy)]
pub enum Finished {
    /// Its transcript was stored.
    Succeeded,
    /// It failed for good.
    Failed,
    /// It was canceled (or taken over) while running.
    Canceled,
}

/// The worker's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    labels: WorkerLabels,
    jobs: Family<OutcomeLabels, Counter>,
    latency: Histogram,
    processing: Histogram,
    audio: Counter<f64, AtomicU64>,
    speed: Family<WorkerLabels, Gauge<f64, AtomicU64>>,
    /// When each recent job finished and its seconds of audio, for the speed.
    recent: Mutex<VecDeque<(Instant, f64)>>,
}

impl Metrics {
    /// Registers every metric, under the `warble_worker_` prefix.
    pub fn new(worker: &str, device: &str, model: &str) -> Self {
        let mut registry = Registry::with_prefix("warble_worker");
        let jobs = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "jobs",
            "Jobs this worker finished, by outcome: succeeded, failed, canceled",
            jobs.clone(),
        );
        let latency = Histogram::new(seconds_buckets());
        registry.register(
            "job_latency_seconds",
            "Seconds from a job's submission to its transcript (queue wait included), for jobs that succeeded",
            latency.clone(),
        );
        let processing = Histogram::new(seconds_buckets());
        registry.register(
            "job_duration_seconds",
            "Seconds from this worker's start of a job to its transcript, for jobs that succeeded",
            processing.clone(),
        );
        let audio = Counter::<f64, AtomicU64>::default();
        registry.register(
            "audio_seconds",
            "Seconds of audio transcribed (succeeded jobs)",
            audio.clone(),
        );
        let speed = Family::<WorkerLabels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "speed",
            "Seconds of audio transcribed per second over the last minute (RTFx, the inverse of the real-time factor; 0 when idle), with the worker's device and model",
            speed.clone(),
        );
        Self {
            registry,
            labels: WorkerLabels {
                worker: worker.into(),
                device: device.into(),
                model: model.into(),
            },
            jobs,
            latency,
            processing,
            audio,
            speed,
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Counts a job that ended.
    pub fn finished(&self, outcome: Finished) {
        let outcome = match outcome {
            Finished::Succeeded => "succeeded",
            Finished::Failed => "failed",
            Finished::Canceled => "canceled",
        };
        self.jobs.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// Records a job that succeeded: `latency` since its submission, `processing` since this
    /// worker started it, `audio_secs` of audio.
    pub fn succeeded(&self, latency: Duration, processing: Duration, audio_secs: f64) {
        self.finished(Finished::Succeeded);
        self.latency.observe(latency.as_secs_f64());
        self.processing.observe(processing.as_secs_f64());
        self.audio.inc_by(audio_secs);
        self.recent
            .lock()
            .expect("not poisoned")
            .push_back((Instant::now(), audio_secs));
    }

    /// The exposition, with the speed brought up to date.
    pub fn render(&self) -> String {
        let audio: f64 = {
            let mut recent = self.recent.lock().expect("not poisoned");
            while recent
                .front()
                .is_some_and(|(at, _)| at.elapsed() > SPEED_WINDOW)
            {
                recent.pop_front();
            }
            recent.iter().map(|(_, secs)| secs).sum()
        };
        self.speed
            .get_or_create(&self.labels)
            .set(audio / SPEED_WINDOW.as_secs_f64());
        warble_jobs::metrics::encode(&self.registry)
    }
}
