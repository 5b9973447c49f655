//! Sends webhook deliveries from the outbox: one dispatcher per API process. It leases due
//! rows (several replicas never send the same row at once), signs and POSTs each with a
//! timeout and no redirects, and records the outcome: 2xx is delivered; 410 Gone disables the
//! endpoint; anything else is retried on a schedule (Svix's by default) with ±20 % jitter,
//! waiting at least as long as a 429 or 503's `Retry-After`, until the attempts run out.
//! Each attempt's outcome is logged in a span naming the delivery, the endpoint, the host and
//! the attempt's number.

use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::destination::{self, DestinationError, LookupFailed};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use warble_jobs::db::Database;
use warble_jobs::webhook::outbox::{self, Claimed, Outcome};
use warble_jobs::webhook::signing;

/// Webhook settings of the API.
#[derive(Debug, Clone, clap::Args)]
pub struct WebhookArgs {
    /// Let webhooks reach loopback, private and link-local addresses (local development and
    /// receivers on your own network only).
    #[arg(long, env = "WARBLE_WEBHOOK_ALLOW_PRIVATE", default_value_t = false)]
    pub webhook_allow_private: bool,
    /// Seconds one delivery attempt may take.
    #[arg(long, env = "WARBLE_WEBHOOK_TIMEOUT_SECS", default_value_t = 15.0)]
    pub webhook_timeout_secs: f64,
    /// Seconds before each retry, comma-separated; the first attempt is immediate.
    #[arg(
        long,
        env = "WARBLE_WEBHOOK_RETRY_SCHEDULE",
        value_delimiter = ',',
        default_value = "5,300,1800,7200,18000,36000,36000"
    )]
    pub webhook_retry_schedule: Vec<f64>,
    /// How often the dispatcher looks for due deliveries, milliseconds.
    #[arg(long, env = "WARBLE_WEBHOOK_POLL_MS", default_value_t = 200)]
    pub webhook_poll_ms: u64,
    /// Seconds a rotated-out secret keeps signing (a second signature) after a rotation.
    #[arg(
        long,
        env = "WARBLE_WEBHOOK_ROTATION_GRACE_SECS",
        default_value_t = 86_400
    )]
    pub webhook_rotation_grace_secs: i64,
}

/// Deliveries sent at once by one dispatcher.
const CONCURRENCY: usize = 16;
/// The pause after the database failed to hand out deliveries (an outage): one warning per
/// pause rather than one per poll.
const BACKOFF: Duration = Duration::from_secs(5);
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(86_400);

/// The dispatcher's settings and HTTP client.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    db: Database,
    client: reqwest::Client,
    allow_private: bool,
    timeout: Duration,
    schedule: Vec<Duration>,
    poll: Duration,
    metrics: Arc<crate::metrics::Metrics>,
}

impl Dispatcher {
    /// A dispatcher on `db` with `args`, counting its attempts in `metrics`.
    pub fn new(db: Database, args: &WebhookArgs, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let timeout = Duration::from_secs_f64(args.webhook_timeout_secs.max(0.1));
        Self {
            client: destination::client(args.webhook_allow_private, timeout),
            db,
            allow_private: args.webhook_allow_private,
            timeout,
            schedule: args
                .webhook_retry_schedule
                .iter()
                .map(|s| Duration::from_secs_f64(s.max(0.0)))
                .collect(),
            poll: Duration::from_millis(args.webhook_poll_ms.max(10)),
            metrics,
        }
    }

    /// Runs until `shutdown` is cancelled, then finishes the attempts in flight (each ends
    /// within the timeout) and returns.
    pub fn spawn(self, shutdown: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(Arc::new(self).run(shutdown))
    }

    /// The send loop. A row is leased only when a sending slot is free for it, so every
    /// leased row starts at once and ends within the timeout, well inside its lease: leasing
    /// more than can be sent would let a lease expire on a row still waiting for a slot, and
    /// another replica would send it too.
    async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let mut in_flight = JoinSet::new();
        while !shutdown.is_cancelled() {
            let free = CONCURRENCY - in_flight.len();
            let claimed = if free == 0 {
                0
            } else {
                match outbox::claim(&self.db, free as u32, self.lease().as_millis() as i64).await {
                    Ok(rows) => {
                        let count = rows.len();
                        for row in rows {
                            let span = attempt_span(&row);
                            in_flight.spawn(self.clone().deliver(row).instrument(span));
                        }
                        count
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "claiming webhook deliveries; retrying in 5 s");
                        tokio::select! {
                            _ = tokio::time::sleep(BACKOFF) => {}
                            _ = shutdown.cancelled() => {}
                        }
                        continue;
                    }
                }
            };
            if claimed > 0 && claimed == free {
                // Every slot is busy and more may be due: lease again as soon as one frees.
                in_flight.join_next().await;
                continue;
            }
            // Fewer due rows than free slots: wait for a slot, a poll or the end.
            tokio::select! {
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = shutdown.cancelled() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
    }

    /// How long a claimed row stays ours: the attempt, plus as long again for reading the
    /// secrets and recording the outcome, plus a second. One whose dispatcher died is sent
    /// again once it expires.
    fn lease(&self) -> Duration {
        self.timeout * 2 + Duration::from_secs(1)
    }

    /// Sends one leased delivery and records the outcome under its lease; runs in its
    /// [`attempt_span`].
    async fn deliver(self: Arc<Self>, claimed: Claimed) {
        let Some(outcome) = self.attempt(&claimed).await else {
            tracing::warn!("not sent: too little of the lease left; it will be sent again");
            return;
        };
        log(&outcome);
        match outbox::record(&self.db, &claimed, &outcome).await {
            Ok(true) => self.metrics.webhook_attempt(&outcome),
            // The row is no longer ours: this attempt outlived its lease (a stalled database)
            // and another dispatcher's record is the one that counts, or its endpoint was
            // deleted or disabled meanwhile and the row already failed with it.
            Ok(false) => tracing::warn!("lease lost before the outcome was recorded"),
            // The lease expires and the delivery is sent again: at least once.
            Err(err) => tracing::warn!(error = %err, "recording a webhook attempt"),
        }
    }

    /// Sends one delivery once; `None` if too little of its lease is left for an attempt
    /// (the database was slow to answer), so that it is not sent after another dispatcher
    /// may have leased it.
    async fn attempt(&self, claimed: &Claimed) -> Option<Outcome> {
        let abandon = |error: String| Outcome::Abandon {
            status: None,
            error,
            latency_ms: 0,
            disable: None,
        };
        let secrets = match outbox::secrets(&self.db, claimed).await {
            Ok(Some(secrets)) => secrets,
            Ok(None) => return Some(abandon("the endpoint was disabled or deleted".into())),
            // The delivery log is the user's; what went wrong with our database is ours.
            Err(err) => {
                tracing::warn!(error = %err, "reading the secrets that sign a delivery");
                let error = "not sent: the server could not read the signing secret";
                return Some(self.retry(claimed, None, error.into(), 0, None));
            }
        };
        // IP-literal URLs never reach the resolver: check the URL itself before every send.
        if let Err(err) = destination::check_url(&claimed.url, self.allow_private) {
            return Some(abandon(err.to_string()));
        }
        if claimed.lease_left() < self.timeout {
            return None;
        }
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signing::header(
            secrets.iter().map(String::as_str),
            &claimed.id,
            timestamp,
            &claimed.payload,
        );
        let started = Instant::now();
        let sent = self
            .client
            .post(&claimed.url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &claimed.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(claimed.payload.clone())
            .send()
            .await;
        let latency_ms = started.elapsed().as_millis() as i64;
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                let error = describe(&err, self.timeout);
                return Some(self.retry(claimed, None, error, latency_ms, None));
            }
        };
        let status = response.status();
        if status.is_success() {
            return Some(Outcome::Delivered {
                status: status.as_u16(),
                latency_ms,
            });
        }
        if status == StatusCode::GONE {
            return Some(Outcome::Abandon {
                status: Some(410),
                error: "the endpoint answered 410 Gone".into(),
                latency_ms,
                disable: Some("the endpoint answered 410 Gone".into()),
            });
        }
        let retry_after = [
            StatusCode::TOO_MANY_REQUESTS,
            StatusCode::SERVICE_UNAVAILABLE,
        ]
        .contains(&status)
        .then(|| response.headers().get(RETRY_AFTER))
        .flatten()
        .and_then(|value| value.to_str().ok()?.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs).min(MAX_RETRY_AFTER));
        Some(self.retry(
            claimed,
            Some(status.as_u16()),
            format!("HTTP {}", status.as_u16()),
            latency_ms,
            retry_after,
        ))
    }

    /// A failed attempt: retried after the next delay of the schedule (jittered, and no
    /// sooner than `retry_after`), or given up when the schedule is used up.
    fn retry(
        &self,
        claimed: &Claimed,
        status: Option<u16>,
        error: String,
        latency_ms: i64,
        retry_after: Option<Duration>,
    ) -> Outcome {
        let next = self
            .schedule
            .get(claimed.attempts as usize)
            .map(|delay| jitter(*delay).max(retry_after.unwrap_or_default()))
            .map(from_now);
        Outcome::Retry {
            status,
            error,
            latency_ms,
            next,
        }
    }
}

/// `delay` ± 20 %, so that endpoints recovering from an outage are not hit all at once.
fn jitter(delay: Duration) -> Duration {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    let unit = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX);
    delay.mul_f64(0.8 + 0.4 * unit)
}

/// `delay` from now; the latest time there is if that is later still (a schedule of
/// centuries).
fn from_now(delay: Duration) -> DateTime<Utc> {
    TimeDelta::from_std(delay)
        .ok()
        .and_then(|delay| Utc::now().checked_add_signed(delay))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The span each delivery attempt runs in: the delivery, its endpoint (`callback` for a job's
/// own URL), the host it goes to (not the whole URL, whose path or query may hold a token of
/// the receiver's) and the attempt's number.
fn attempt_span(claimed: &Claimed) -> tracing::Span {
    let host = url::Url::parse(&claimed.url)
        .ok()
        .and_then(|url| url.host_str().map(String::from))
        .unwrap_or_default();
    tracing::info_span!(
        "webhook",
        delivery = %claimed.id,
        endpoint = %claimed.webhook_id.as_deref().unwrap_or("callback"),
        host = %host,
        attempt = claimed.attempts + 1,
    )
}

/// Logs an attempt's outcome, in the delivery's [`attempt_span`]: successes at `info`,
/// failures at `warn` with the status code, the reason as the delivery log gives it and, while
/// retries are left, when the next attempt is due.
fn log(outcome: &Outcome) {
    match outcome {
        Outcome::Delivered { status, latency_ms } => {
            tracing::info!(status, latency_ms, "webhook delivered");
        }
        Outcome::Retry {
            status,
            error,
            latency_ms,
            next: Some(next),
        } => tracing::warn!(
            status,
            error = %error,
            latency_ms,
            next_attempt_at = %next.to_rfc3339_opts(SecondsFormat::Secs, true),
            retry_in = %in_words(*next - Utc::now()),
            "webhook attempt failed; retrying",
        ),
        Outcome::Retry {
            status,
            error,
            latency_ms,
            next: None,
        } => tracing::warn!(
            status,
            error = %error,
            latency_ms,
            "webhook attempt failed; no retries left, the delivery failed",
        ),
        Outcome::Abandon {
            status,
            error,
            latency_ms,
            disable,
        } => tracing::warn!(
            status,
            error = %error,
            latency_ms,
            endpoint_disabled = disable.is_some(),
            "webhook delivery failed; not retried",
        ),
    }
}

/// A wait as people write it: `45s`, `4m47s`, `2h`, `9h58m`. Seconds are left out from an
/// hour on, where they are noise (the jitter alone moves a retry by minutes).
fn in_words(wait: TimeDelta) -> String {
    let secs = ((wait.num_milliseconds() + 500) / 1000).max(0);
    let (hours, minutes) = (secs / 3600, secs / 60 % 60);
    let seconds = if hours > 0 { 0 } else { secs % 60 };
    let parts = [(hours, "h"), (minutes, "m"), (seconds, "s")];
    let words: String = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if words.is_empty() { "0s".into() } else { words }
}

/// Why a request got no answer, in a few words for the delivery log (`connection refused`,
/// `timed out after 15 s`): no addresses of ours, no library's error text.
fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    use std::io::ErrorKind;
    let mut io_kind = None;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<DestinationError>() {
            return refused.to_string();
        }
        if let Some(lookup) = cause.downcast_ref::<LookupFailed>() {
            return lookup.to_string();
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        source = cause.source();
    }
    let seconds = |limit: Duration| format!("{} s", limit.as_secs_f64());
    match io_kind {
        Some(ErrorKind::ConnectionRefused) => "connection refused".into(),
        Some(ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
            "connection reset".into()
        }
        Some(ErrorKind::HostUnreachable) => "host unreachable".into(),
        Some(ErrorKind::NetworkUnreachable) => "network unreachable".into(),
        _ if err.is_timeout() && err.is_connect() => format!(
            "could not connect within {}",
            seconds(destination::connect_timeout(timeout))
        ),
        _ if err.is_timeout() => format!("timed out after {}", seconds(timeout)),
        _ if err.is_connect() => "could not connect".into(),
        _ => "the connection failed before an answer came".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_in_words() {
        for (ms, words) in [
            (0, "0s"),
            (-3_000, "0s"),
            (800, "1s"),
            (5_000, "5s"),
            (60_000, "1m"),
            (287_000, "4m47s"),
            (7_200_000, "2h"),
            (35_890_000, "9h58m"),
        ] {
            assert_eq!(in_words(TimeDelta::milliseconds(ms)), words, "{ms} ms");
        }
    }

    #[test]
    fn jitter_stays_within_a_fifth() {
        for _ in 0..1000 {
            let d = jitter(Duration::from_secs(100)).as_secs_f64();
            assert!((80.0..=120.0).contains(&d), "{d}");
        }
    }
}
