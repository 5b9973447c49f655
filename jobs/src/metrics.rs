//! Prometheus metrics: where each process serves them. The API and each worker serve their
//! own `/metrics` (OpenMetrics text, from the `prometheus-client` crate) on an address of
//! their own, `WARBLE_METRICS_LISTEN`, not on the API's port: scrapers carry no API keys, and
//! what the numbers reveal (tenants' traffic, worker hosts) is for the operator's network, not
//! for whoever can reach the API. Off unless set.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

/// OpenMetrics' content type, which Prometheus negotiates for.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Where to serve metrics.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Address to serve Prometheus metrics on (`/metrics`), e.g. `127.0.0.1:9464`; off unless
    /// set. Keep it off the public network: it needs no key.
    #[arg(long, env = "WARBLE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// `registry` in the OpenMetrics text format.
pub fn encode(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)
        .expect("writing to a String cannot fail");
    text
}

/// Binds the metrics address, so that a taken one stops the process at start-up.
pub async fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await
}

/// Serves `GET /metrics` on `listener` until the process ends: `render` makes each answer
/// (after refreshing what is read at scrape time), or `None` when it cannot, which answers 503
/// so that the scrape fails visibly rather than showing stale figures. Logs
/// `serving metrics address=...`.
pub async fn serve<F, Fut>(listener: tokio::net::TcpListener, render: F) -> std::io::Result<()>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Option<String>> + Send + 'static,
{
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let render = render.clone();
            async move {
                match render().await {
                    Some(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
                    None => axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response(),
                }
            }
        }),
    );
    tracing::info!(address = %listener.local_addr()?, "serving metrics");
    axum::serve(listener, app).await
}

/// Seconds as a histogram sees them: from 0.1 s to about 2 hours, doubling.
pub fn seconds_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.1, 2.0, 17)
}
