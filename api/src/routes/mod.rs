//! The HTTP routes.

pub mod health;
pub mod jobs;
pub mod workers;
