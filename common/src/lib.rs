//! What the warble API and workers share: configuration, the database and its job records,
//! the queue between them, object storage, and the transcript format.

pub mod audit;
pub mod config;
pub mod db;
pub mod destination;
pub mod error_code;
pub mod filename;
pub mod job;
pub mod keys;
pub mod queue;
pub mod quota;
pub mod signal;
pub mod storage;
pub mod transcript;
pub mod webhook;
pub mod workers;

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
