//! A webhook receiver on loopback: records every request it gets and answers each path as a
//! test plans it (statuses, `Retry-After`, hanging, redirects), then 200.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub at: Instant,
    /// Wall-clock arrival, to compare with the event's own timestamp.
    pub wall: chrono::DateTime<chrono::Utc>,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Reply {
    Status(u16),
    RetryAfter(u16, u64),
    Hang(Duration),
    Redirect(String),
}

#[derive(Default)]
struct Log {
    got: Vec<Received>,
    plans: HashMap<String, VecDeque<Reply>>,
}

pub struct Receiver {
    pub address: SocketAddr,
    log: Arc<Mutex<Log>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = shared.clone();
            async move { answer(&log, uri, &headers, body).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { address, log }
    }

    /// The URL of `path` on this receiver.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Answers the next requests to `path` with `replies`, in order, then 200.
    pub fn plan(&self, path: &str, replies: Vec<Reply>) {
        self.log
            .lock()
            .unwrap()
            .plans
            .insert(path.to_string(), replies.into());
    }

    /// Everything received on `path` so far.
    pub fn received(&self, path: &str) -> Vec<Received> {
        let log = self.log.lock().unwrap();
        log.got.iter().filter(|r| r.path == path).cloned().collect()
    }

    /// Everything received.
    pub fn all(&self) -> Vec<Received> {
        self.log.lock().unwrap().got.clone()
    }

    /// Waits until `path` has received `count` requests; returns them.
    pub async fn wait_for(&self, path: &str, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.received(path);
            if got.len() >= count {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} of {count} requests after {timeout:?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn answer(log: &Mutex<Log>, uri: Uri, headers: &HeaderMap, body: Bytes) -> Response {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let path = uri.path().to_string();
    let reply = {
        let mut log = log.lock().unwrap();
        log.got.push(Received {
            path: path.clone(),
            id: text("webhook-id"),
            timestamp: text("webhook-timestamp"),
            signature: text("webhook-signature"),
            body: String::from_utf8_lossy(&body).into_owned(),
            at: Instant::now(),
            wall: chrono::Utc::now(),
        });
        log.plans.get_mut(&path).and_then(VecDeque::pop_front)
    };
    match reply {
        None => StatusCode::OK.into_response(),
        Some(Reply::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Reply::RetryAfter(code, secs)) => (
            StatusCode::from_u16(code).unwrap(),
            [(header::RETRY_AFTER, secs.to_string())],
        )
            .into_response(),
        Some(Reply::Hang(time)) => {
            tokio::time::sleep(time).await;
            StatusCode::OK.into_response()
        }
        Some(Reply::Redirect(to)) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
    }
}

/// Checks every delivery's signature with the `standardwebhooks` package (PyPI) through
/// `tools/webhooks/verify.py`; `secret_of` gives the secret to verify each with. Fails where
/// the package is not installed, saying how to get it.
pub fn verify_independently(deliveries: &[Received], secret_of: impl Fn(&Received) -> String) {
    let python = super::tools_python("standardwebhooks", "pip install standardwebhooks==1.1.0");
    let lines: String = deliveries
        .iter()
        .map(|r| {
            serde_json::json!({
                "secret": secret_of(r), "id": r.id, "timestamp": r.timestamp,
                "signature": r.signature, "body": r.body,
            })
            .to_string()
                + "\n"
        })
        .collect();
    let said = super::run_tool(&python, "webhooks/verify.py", &[], lines.as_bytes());
    let said = String::from_utf8_lossy(&said);
    assert_eq!(said.trim(), format!("verified {}", deliveries.len()));
}
