//! Hands the queue any job that was recorded but not enqueued: the API answers a submission
//! once the job is in the database, so a queue hiccup (or a crash) between the two steps must
//! not strand the job. Re-sending is harmless: queue tasks are keyed by job id. It also starts
//! the intake of batches whose API stopped before it had fetched all their URLs, and deletes
//! the audio and transcripts that retention says are due (audited as `retention.sweep`).

use tokio_util::sync::CancellationToken;
use warble_jobs::{job, retention};

use crate::audit;

use crate::AppState;

/// Runs the sweep every `state.sweep_interval` until `shutdown` is cancelled.
pub fn spawn_sweeper(state: AppState, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(state.sweep_interval);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            if let Err(err) = sweep(&state).await {
                tracing::warn!(error = %err, "re-enqueue sweep failed");
            }
        }
    })
}

async fn sweep(state: &AppState) -> anyhow::Result<()> {
    for id in job::not_enqueued(&state.db, 100).await? {
        state.queue.push(&id).await?;
        job::mark_enqueued(&state.db, &id).await?;
        tracing::info!(job = %id, "job enqueued by the sweep");
    }
    crate::batch_intake::resume(state).await?;
    let swept = retention::sweep(&state.db, &state.storage, state.retention).await?;
    if !swept.audio.is_empty() || !swept.transcripts.is_empty() {
        tracing::info!(
            audio = swept.audio.len(),
            transcripts = swept.transcripts.len(),
            "retention deleted"
        );
        let detail = serde_json::json!({
            "audio_deleted": swept.audio,
            "transcripts_deleted": swept.transcripts,
        });
        audit::record(&state.db, "retention", "retention.sweep", "jobs", detail).await?;
    }
    Ok(())
}
