//! What the warble API and workers share: configuration, the database and its job records
//! (with their quotas and the webhook outbox their changes write), the queue between them,
//! object storage, the transcript format and the table of error codes. What only the API
//! uses (keys, the audit log, outgoing-request checks) lives in the API.

pub mod batch;
pub mod config;
pub mod db;
pub mod error_code;
pub mod features;
pub mod filename;
pub mod job;
pub mod metrics;
pub mod queue;
pub mod quota;
pub mod redact;
pub mod retention;
pub mod signal;
pub mod speakers;
pub mod stats;
pub mod storage;
pub mod transcript;
pub mod webhook;
pub mod workers;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
