//! The HTTP routes.

pub mod admin;
pub mod audit;
pub mod batches;
pub mod health;
pub mod jobs;
pub mod keys;
pub mod openai;
pub mod page;
pub mod retention;
pub mod token;
pub mod usage;
pub mod webhooks;
pub mod workers;
