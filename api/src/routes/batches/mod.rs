//! `/v1/batches`: many transcription requests in one call, as JSON Lines of URLs or as a form
//! of files ([`create`]); each request becomes an ordinary job, and the batch follows them:
//! counts per status ([`get`], [`list`]), results as JSON Lines ([`results`]), [`cancel`], and
//! a `batch.completed` webhook once every request has ended. Modelled on OpenAI's Batch API
//! (`custom_id`, `request_counts`, results as JSONL), with AssemblyAI's `audio_url` requests.

mod cancel;
mod create;
mod get;
mod list;
mod results;

pub use cancel::{__path_cancel, cancel};
pub use create::{__path_create, create};
pub use get::{__path_get, get};
pub use list::{__path_list, list};
pub use results::{__path_results, results};

use serde::Serialize;
use utoipa::ToSchema;
use warble_jobs::batch::Batch;

/// A page of batches.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchPage {
    /// Newest first.
    pub batches: Vec<Batch>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Limits on one batch (`WARBLE_BATCH_MAX_REQUESTS`, `WARBLE_BATCH_MAX_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Requests (lines, or files) in one batch.
    pub max_requests: usize,
    /// Bytes of one batch's JSON Lines.
    pub max_bytes: usize,
}
