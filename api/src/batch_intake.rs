//! The background half of a batch of URLs: fetches each pending request's audio and makes its
//! job, a few at a time, exactly as `POST /v1/jobs` with `audio_url` would for the batch's key
//! (the same checks, SSRF rules, limits and quotas). One API holds a batch at a time, under a
//! lease in its row ([`batch::claim`]) renewed as requests are made; the sweeper hands a batch
//! whose API stopped to another ([`resume`]). A request's job is keyed by an idempotency key of
//! the batch and line, so a request made twice (an API that lost its lease mid-fetch) still
//! makes one job.

use std::time::Duration;

use axum::http::HeaderMap;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use warble_jobs::batch::{self, PendingRequest};
use warble_jobs::db::{Database, DbError};
use warble_jobs::error_code::ErrorCode;
use warble_jobs::job::{self, JobError};

use crate::error::ApiError;
use crate::keys::{Caller, Role};
use crate::routes::jobs::{UrlSubmission, from_url};
use crate::state::AppState;

/// How long a batch's intake lease lasts without renewal, ms: how long a batch waits after its
/// API stopped before another (or the same one, restarted) takes it over. It is renewed
/// beside the fetches, every quarter of it, whatever they take.
pub const LEASE_MS: i64 = 30_000;
/// Requests of one batch fetched at once.
const FETCHES_AT_ONCE: usize = 4;
/// Pending requests read at a time.
const PAGE: u32 = 64;
/// How long to wait before trying requests that could not be made yet (the key at its
/// concurrent-jobs quota, the database or storage unavailable).
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Starts making batch `id`'s jobs in the background.
pub fn spawn(state: AppState, id: String) {
    tokio::spawn(async move {
        if let Err(err) = run(&state, &id).await {
            // The lease runs out and the sweeper starts it again.
            tracing::warn!(batch = %id, error = %err, "batch intake stopped");
        }
    });
}

/// Starts the batches that have requests to fetch and no API fetching them (the sweeper's
/// part).
pub async fn resume(state: &AppState) -> Result<(), DbError> {
    for id in batch::unclaimed(&state.db, 16).await? {
        tracing::info!(batch = %id, "batch intake resumed");
        spawn(state.clone(), id);
    }
    Ok(())
}

/// What became of one request.
enum Made {
    /// It has a job, or failed for good.
    Done,
    /// Not yet: try again later.
    Later,
}

/// Makes the jobs of batch `id` while this API holds its lease.
async fn run(state: &AppState, id: &str) -> Result<(), DbError> {
    let Some(lease) = batch::claim(&state.db, id, None, LEASE_MS).await? else {
        return Ok(());
    };
    // The lease is renewed beside the fetches, not between them: a fetch that is not polled
    // may hold a database lock (a transaction between two statements) that the renewal would
    // wait for.
    let hold = Hold::new(state, id, lease);
    hold.lost
        .run_until_cancelled(make_all(state, id))
        .await
        .unwrap_or(Ok(()))
}

/// A batch's intake lease, renewed in the background until dropped.
pub struct Hold {
    /// Cancelled once the lease could not be renewed: the batch was canceled, or another API
    /// took it over.
    pub lost: CancellationToken,
    renewal: tokio::task::JoinHandle<()>,
}

impl Hold {
    /// Holds the lease `lease` (its end, as [`batch::claim`] gave it) of batch `id`.
    pub fn new(state: &AppState, id: &str, lease: i64) -> Self {
        let lost = CancellationToken::new();
        let renewal = tokio::spawn(renew(state.db.clone(), id.to_string(), lease, lost.clone()));
        Self { lost, renewal }
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

/// Makes every pending request's job, a few at a time.
async fn make_all(state: &AppState, id: &str) -> Result<(), DbError> {
    loop {
        let (owner, pending) = batch::pending(&state.db, id, PAGE).await?;
        if pending.is_empty() {
            return Ok(());
        }
        let caller = Caller {
            key_id: owner.key_id,
            role: Role::User,
            tenant: owner.tenant,
        };
        let later = futures::stream::iter(pending)
            .map(|request| make(state, &caller, id, request))
            .buffer_unordered(FETCHES_AT_ONCE)
            .fold(false, |later, made| {
                std::future::ready(later || matches!(made, Made::Later))
            })
            .await;
        if later {
            tokio::time::sleep(RETRY_AFTER).await;
        }
    }
}

/// Renews the lease every quarter of its length; cancels `lost` once it cannot (the batch was
/// canceled, or another API took it over), which stops the fetches.
async fn renew(db: Database, id: String, mut lease: i64, lost: CancellationToken) {
    loop {
        tokio::time::sleep(Duration::from_millis(LEASE_MS as u64 / 4)).await;
        match batch::claim(&db, &id, Some(lease), LEASE_MS).await {
            Ok(Some(renewed)) => lease = renewed,
            Ok(None) => break,
            Err(err) => tracing::warn!(batch = %id, error = %err, "batch lease not renewed"),
        }
    }
    lost.cancel();
}

/// Fetches one request's audio and makes its job, or records why it cannot be made.
async fn make(state: &AppState, caller: &Caller, id: &str, request: PendingRequest) -> Made {
    // The page was read before this request's turn: the batch may have been canceled since.
    match batch::is_pending(&state.db, id, request.line).await {
        Ok(true) => {}
        Ok(false) => return Made::Done,
        Err(_) => return Made::Later,
    }
    // A revoked key (a leak, someone who left) makes no more jobs.
    match batch::key_revoked(&state.db, id).await {
        Ok(false) => {}
        Ok(true) => {
            let error = JobError::new(
                ErrorCode::Unauthorized,
                "the key that made the batch was revoked before this request's job was made",
            );
            return match batch::refuse_pending(&state.db, id, &error).await {
                Ok(()) => Made::Done,
                Err(_) => Made::Later,
            };
        }
        Err(_) => return Made::Later,
    }
    let made = async {
        let (Some(_), Some(options)) = (&request.audio_url, &request.options) else {
            // An uploaded file whose request ended before its job was recorded.
            return Err(ApiError::new(
                ErrorCode::InvalidMultipart,
                "the upload of this file ended before its job was made",
            ));
        };
        let submission: UrlSubmission = serde_json::from_str(options)
            .map_err(|e| ApiError::Internal(format!("a stored batch request: {e}")))?;
        let key = format!("{}/batch:{id}:{}", caller.tenant, request.line);
        from_url(
            state,
            caller,
            &HeaderMap::new(),
            submission,
            Some(key),
            Some((id, request.line)),
        )
        .await
    }
    .await;
    let noted = match made {
        Ok((job, _)) => note_job(state, id, request.line, &job.id).await,
        Err(err) if later(&err) => return Made::Later,
        Err(err) => {
            let (code, message) = err.public();
            let error = JobError::new(code, message);
            batch::refused(&state.db, id, request.line, &error).await
        }
    };
    match noted {
        Ok(()) => Made::Done,
        Err(err) => {
            tracing::warn!(batch = %id, line = request.line, error = %err, "batch request not noted");
            Made::Later
        }
    }
}

/// Notes that request `line` of batch `id` is job `job_id`; a batch canceled meanwhile has the
/// job canceled too.
pub async fn note_job(state: &AppState, id: &str, line: i64, job_id: &str) -> Result<(), DbError> {
    if !batch::submitted(&state.db, id, line, job_id).await? {
        job::cancel(&state.db, job_id, None).await?;
    }
    Ok(())
}

/// Whether a refusal may pass by itself: the key at its concurrent-jobs quota (a job of the
/// batch will end), or a dependency that did not answer.
fn later(err: &ApiError) -> bool {
    match err {
        ApiError::Quota(exceeded) => exceeded.code() == ErrorCode::QuotaConcurrentJobs,
        ApiError::Db(db) => db.is_unavailable(),
        ApiError::Storage(storage) => storage.is_unavailable(),
        _ => false,
    }
}
