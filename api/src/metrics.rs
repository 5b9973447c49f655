//! The API's Prometheus metrics (served by [`warble_jobs::metrics::serve`] on
//! `WARBLE_METRICS_LISTEN`): HTTP requests by route and status, webhook attempts by outcome,
//! and, read from the database at each scrape, jobs by status, the queue's depth and the age of
//! its oldest job, and the live workers. Every API replica reports the database figures alike
//! (aggregate them with `max`, not `sum`); the counters are each replica's own. Job durations,
//! audio seconds and speed come from the workers' own metrics.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use warble_jobs::db::{Database, DbError};
use warble_jobs::job::{self, JobStatus};
use warble_jobs::webhook::outbox::Outcome;
use warble_jobs::workers;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The route's pattern (`/v1/jobs/{id}`), never the path itself: ids would make a series
    /// per job.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: &'static str,
}

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

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// The API's metrics and their registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Histograms<RouteLabels>,
    webhook_attempts: Family<OutcomeLabels, Counter>,
    jobs: Family<StatusLabels, Gauge>,
    queue_depth: Gauge,
    oldest_queued: Gauge<f64, AtomicU64>,
    workers: Family<WorkerLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn request_histogram() -> Histogram {
    // 1 ms to about 33 s: uploads of large files are the slow end.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 16,
    ))
}

impl Metrics {
    /// Registers every metric, under the `warble_` prefix.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("warble");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        let request_seconds: Histograms<RouteLabels> =
            Family::new_with_constructor(request_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request (to its headers; a streamed body may go on), by method and route pattern",
            request_seconds.clone(),
        );
        let webhook_attempts = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by outcome: delivered (2xx), retrying (to be tried again), failed (given up)",
            webhook_attempts.clone(),
        );
        let jobs = Family::<StatusLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs by status, from the database at scrape time",
            jobs.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Jobs queued and not yet started",
            queue_depth.clone(),
        );
        let oldest_queued = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "queue_oldest_age_seconds",
            "Seconds since the oldest queued job was submitted; 0 with none queued",
            oldest_queued.clone(),
        );
        let workers = Family::<WorkerLabels, Gauge>::default();
        registry.register(
            "worker_jobs",
            "Jobs each live worker holds, with its device and model (a worker is live while its heartbeats come)",
            workers.clone(),
        );
        Arc::new(Self {
            registry,
            requests,
            request_seconds,
            webhook_attempts,
            jobs,
            queue_depth,
            oldest_queued,
            workers,
        })
    }

    /// The exposition, after reading the database's figures.
    pub async fn render(
        &self,
        db: &Database,
        worker_timeout: chrono::TimeDelta,
    ) -> Result<String, DbError> {
        let now = chrono::Utc::now();
        let counts = job::status_counts(db).await?;
        for status in JobStatus::ALL {
            let count = counts.iter().find(|c| c.status == status);
            self.jobs
                .get_or_create(&StatusLabels {
                    status: status.as_str(),
                })
                .set(count.map_or(0, |c| c.count));
            if status == JobStatus::Queued {
                self.queue_depth.set(count.map_or(0, |c| c.count));
                let age = count
                    .and_then(|c| c.oldest)
                    .map_or(0.0, |oldest| (now - oldest).as_seconds_f64().max(0.0));
                self.oldest_queued.set(age);
            }
        }
        // Workers come and go: only the live ones have a series.
        self.workers.clear();
        for worker in workers::list(db, now - worker_timeout).await? {
            self.workers
                .get_or_create(&WorkerLabels {
                    worker: worker.id,
                    device: worker.device,
                    model: workers::model_id(&worker.model),
                })
                .set(worker.current_jobs.len() as i64);
        }
        Ok(warble_jobs::metrics::encode(&self.registry))
    }

    /// Counts one webhook attempt.
    pub fn webhook_attempt(&self, outcome: &Outcome) {
        let outcome = match outcome {
            Outcome::Delivered { .. } => "delivered",
            Outcome::Retry { next: Some(_), .. } => "retrying",
            Outcome::Retry { next: None, .. } | Outcome::Abandon { .. } => "failed",
        };
        self.webhook_attempts
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
    }
}

/// Middleware: counts and times every request by its route pattern (unmatched paths count as
/// `unmatched`).
pub async fn track(State(metrics): State<Arc<Metrics>>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics
        .request_seconds
        .get_or_create(&RouteLabels {
            method: method.clone(),
            route: route.clone(),
        })
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method,
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}
