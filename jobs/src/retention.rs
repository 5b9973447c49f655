//! Retention: a finished job's audio and transcript are deleted a set time after it ended,
//! by a sweep ([`sweep`]) that the API runs beside its queue sweep. Periods are the server's
//! (`WARBLE_RETAIN_AUDIO_SECS`, `WARBLE_RETAIN_TRANSCRIPT_SECS`; unset: kept) unless a tenant
//! has its own ([`set`]). Only final jobs (succeeded, failed, canceled) are touched: a queued
//! or running job keeps its audio whatever its age. Several API replicas may sweep at once:
//! deleting an object twice is harmless, and each job is marked by a conditional update, so
//! each deletion is counted (and audited) by one replica.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::{Database, DbError, LOCK_TENANT};
use crate::quota::whole;
use crate::storage::{Storage, StorageError};
use crate::with_pool;

/// How long a finished job's data is kept, seconds after it ended; `None`: kept until a client
/// deletes it. `0` deletes it at the first sweep after the job ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Periods {
    /// The audio.
    #[serde(default, deserialize_with = "whole::<_, u32, MAX_SECS>")]
    #[schema(minimum = 0, maximum = 2147483647.0, example = 604800)]
    pub audio_secs: Option<u32>,
    /// The transcript.
    #[serde(default, deserialize_with = "whole::<_, u32, MAX_SECS>")]
    #[schema(minimum = 0, maximum = 2147483647.0, example = 7776000)]
    pub transcript_secs: Option<u32>,
}

/// Longest period, seconds: 68 years, the largest 32-bit signed integer, as the document
/// describes the field (`int32`). A longer one is "kept", which `null` says.
pub const MAX_SECS: u64 = i32::MAX as u64;

/// A tenant's periods: its own, or the server's where it has none.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TenantRetention {
    /// The tenant.
    pub tenant: String,
    /// Its own periods; `null` takes the server's.
    pub own: Periods,
    /// What applies: its own, else the server's.
    pub effective: Periods,
}

/// A tenant's own periods (none set: both `None`).
pub async fn own(db: &Database, tenant: &str) -> Result<Periods, DbError> {
    let row: Option<(Option<i64>, Option<i64>)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT retain_audio_secs, retain_transcript_secs FROM warble_tenants \
             WHERE tenant = $1",
        )
        .bind(tenant)
        .fetch_optional(pool)
        .await?
    });
    let (audio, transcript) = row.unwrap_or_default();
    // Stored from checked periods, so they fit; one that does not (written by hand) keeps.
    let secs = |stored: Option<i64>| stored.and_then(|s| u32::try_from(s).ok());
    Ok(Periods {
        audio_secs: secs(audio),
        transcript_secs: secs(transcript),
    })
}

/// Sets a tenant's own periods (`None`: the server's).
pub async fn set(db: &Database, tenant: &str, periods: Periods) -> Result<(), DbError> {
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(LOCK_TENANT).bind(tenant).execute(&mut *tx).await?;
        sqlx::query(
            "UPDATE warble_tenants SET retain_audio_secs = $2, retain_transcript_secs = $3 \
             WHERE tenant = $1",
        )
        .bind(tenant)
        .bind(periods.audio_secs.map(i64::from))
        .bind(periods.transcript_secs.map(i64::from))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    Ok(())
}

/// What one sweep deleted.
#[derive(Debug, Default)]
pub struct Swept {
    /// Jobs whose audio it deleted.
    pub audio: Vec<String>,
    /// Jobs whose transcript it deleted.
    pub transcripts: Vec<String>,
}

/// Why a sweep stopped.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Object storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for SweepError {
    fn from(err: sqlx::Error) -> Self {
        Self::Db(err.into())
    }
}

/// Jobs a sweep handles at most per tenant group and kind; the next sweep goes on.
const BATCH: i64 = 500;

/// Deletes what is due under `defaults` (the server's periods) and the tenants' own.
pub async fn sweep(
    db: &Database,
    storage: &Storage,
    defaults: Periods,
) -> Result<Swept, SweepError> {
    let now = Utc::now();
    let tenants: Vec<(String, Option<i64>, Option<i64>)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT tenant, retain_audio_secs, retain_transcript_secs FROM warble_tenants \
             WHERE retain_audio_secs IS NOT NULL OR retain_transcript_secs IS NOT NULL",
        )
        .fetch_all(pool)
        .await?
    });
    let mut swept = Swept::default();
    // The server's periods, for jobs of tenants without their own (`None`: every such job).
    let own = |stored: Option<i64>| stored.and_then(|s| u32::try_from(s).ok());
    let mut groups = vec![(None, defaults.audio_secs, defaults.transcript_secs)];
    groups.extend(
        tenants
            .into_iter()
            .map(|(t, a, s)| (Some(t), own(a), own(s))),
    );
    for (tenant, audio, transcript) in groups {
        if let Some(secs) = audio {
            swept
                .audio
                .extend(sweep_audio(db, storage, tenant.as_deref(), cutoff(now, secs)).await?);
        }
        if let Some(secs) = transcript {
            swept
                .transcripts
                .extend(sweep_transcripts(db, tenant.as_deref(), cutoff(now, secs), now).await?);
        }
    }
    Ok(swept)
}

fn cutoff(now: DateTime<Utc>, secs: u32) -> DateTime<Utc> {
    now - TimeDelta::seconds(i64::from(secs))
}

/// Jobs of `$2` (`NULL`: of every tenant without its own period of this kind, named by
/// `$3`, the column) that ended before `$1`.
macro_rules! due {
    ($column:literal) => {
        concat!(
            "status IN ('succeeded', 'failed', 'canceled') AND finished_at < $1 \
             AND (($2 IS NULL AND NOT EXISTS (SELECT 1 FROM warble_tenants t \
                   WHERE t.tenant = warble_jobs.tenant AND t.",
            $column,
            " IS NOT NULL)) OR tenant = $2)"
        )
    };
}

/// Deletes the audio of the due jobs, then marks them; returns those this sweep marked.
async fn sweep_audio(
    db: &Database,
    storage: &Storage,
    tenant: Option<&str>,
    before: DateTime<Utc>,
) -> Result<Vec<String>, SweepError> {
    let due: Vec<(String, String)> = with_pool!(db, pool => {
        sqlx::query_as(concat!(
            "SELECT id, audio_key FROM warble_jobs WHERE audio_deleted_at IS NULL \
             AND deleted_at IS NULL AND ",
            due!("retain_audio_secs"),
            " ORDER BY finished_at LIMIT $3"
        ))
        .bind(before)
        .bind(tenant)
        .bind(BATCH)
        .fetch_all(pool)
        .await?
    });
    let mut marked = Vec::new();
    for (id, audio_key) in due {
        // The object first: `audio_deleted_at` never claims audio that is still stored.
        storage.delete(&audio_key).await?;
        let changed = with_pool!(db, pool => {
            sqlx::query(
                "UPDATE warble_jobs SET audio_deleted_at = $2 WHERE id = $1 \
                 AND audio_deleted_at IS NULL AND status IN ('succeeded', 'failed', 'canceled')",
            )
            .bind(&id)
            .bind(Utc::now())
            .execute(pool)
            .await?
            .rows_affected()
        });
        if changed == 1 {
            marked.push(id);
        }
    }
    Ok(marked)
}

/// Drops the transcripts of the due jobs; returns those this sweep dropped.
async fn sweep_transcripts(
    db: &Database,
    tenant: Option<&str>,
    before: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<String>, DbError> {
    let ids: Vec<String> = with_pool!(db, pool => {
        sqlx::query_scalar(concat!(
            "UPDATE warble_jobs SET transcript = NULL, transcript_deleted_at = $4 \
             WHERE id IN (SELECT id FROM warble_jobs WHERE transcript IS NOT NULL AND ",
            due!("retain_transcript_secs"),
            " ORDER BY finished_at LIMIT $3) AND transcript IS NOT NULL RETURNING id"
        ))
        .bind(before)
        .bind(tenant)
        .bind(BATCH)
        .bind(now)
        .fetch_all(pool)
        .await?
    });
    Ok(ids)
}
