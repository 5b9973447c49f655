//! What the warble API and workers share: configuration, the database and its job records,
//! the queue between them, object storage, and the transcript format.

pub mod config;
pub mod db;
pub mod filename;
pub mod job;
pub mod queue;
pub mod signal;
pub mod storage;
pub mod transcript;
pub mod workers;
