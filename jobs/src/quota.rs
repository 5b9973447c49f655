//! Quotas per key: jobs queued or running at once, seconds of audio submitted per UTC day,
//! and the size of one upload. They live in the database, with the usage they are checked
//! against, so that every API replica enforces the same numbers.
//!
//! A submission is checked twice: cheaply before its upload is read (so a key at its limit
//! does not send 100 MB for nothing), and for good in the transaction that records the job
//! (see [`crate::job::insert`]), where the key's usage row is locked so that concurrent
//! submissions, on any replica, are counted one after the other. A job is charged the
//! duration measured at upload; once a worker has decoded it, [`reconcile`] makes the charge
//! the decoded duration.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::db::{Database, DbError};
use crate::error_code::ErrorCode;
use crate::with_pool;

/// A key's limits; `null` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Quotas {
    /// Jobs queued or running at once.
    #[serde(default, deserialize_with = "whole::<_, u32, { i32::MAX as u64 }>")]
    #[schema(example = 10, minimum = 0, maximum = 2147483647.0)]
    pub concurrent_jobs: Option<u32>,
    /// Seconds of audio submitted per day (UTC), whatever becomes of the jobs. Deleting jobs
    /// does not give it back.
    #[serde(default, deserialize_with = "whole::<_, u64, MAX_QUOTA>")]
    #[schema(example = 86400, minimum = 0, maximum = 1e15)]
    pub audio_seconds_per_day: Option<u64>,
    /// Largest upload, bytes; the server's own limit applies as well.
    #[serde(default, deserialize_with = "whole::<_, u64, MAX_QUOTA>")]
    #[schema(example = 50_000_000, minimum = 0, maximum = 1e15)]
    pub upload_bytes: Option<u64>,
}

/// Largest quota of seconds or bytes (10^15): far past any real need, and exact both in a
/// JSON number and in a BIGINT column.
pub const MAX_QUOTA: u64 = 1_000_000_000_000_000;

/// `null` or a whole number from 0 to `MAX`, counted as JSON Schema counts them: `5.0` is 5.
pub(crate) fn whole<'de, D, T, const MAX: u64>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    number
        .as_u64()
        .or_else(|| {
            number
                .as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=MAX as f64).contains(f))
                .map(|f| f as u64)
        })
        .filter(|value| *value <= MAX)
        .and_then(|value| T::try_from(value).ok())
        .map(Some)
        .ok_or_else(|| {
            D::Error::custom(format!(
                "expected a whole number from 0 to {MAX}, got {number}"
            ))
        })
}

/// The quotas new user keys start with (admin keys start with none); changing them later
/// does not change existing keys.
#[derive(Debug, Clone, clap::Args)]
pub struct QuotaArgs {
    /// Jobs a new user key may have queued or running at once (0: no limit).
    #[arg(long, env = "WARBLE_QUOTA_CONCURRENT_JOBS", default_value_t = 10)]
    pub quota_concurrent_jobs: u32,
    /// Seconds of audio a new user key may submit per UTC day (0: no limit).
    #[arg(long, env = "WARBLE_QUOTA_AUDIO_SECONDS_PER_DAY", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(..=MAX_QUOTA))]
    pub quota_audio_seconds_per_day: u64,
    /// Largest upload of a new user key, bytes (0: only the server's limit).
    #[arg(long, env = "WARBLE_QUOTA_UPLOAD_BYTES", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(..=MAX_QUOTA))]
    pub quota_upload_bytes: u64,
}

impl QuotaArgs {
    /// The configured defaults as quotas.
    pub fn defaults(&self) -> Quotas {
        Quotas {
            concurrent_jobs: (self.quota_concurrent_jobs > 0).then_some(self.quota_concurrent_jobs),
            audio_seconds_per_day: (self.quota_audio_seconds_per_day > 0)
                .then_some(self.quota_audio_seconds_per_day),
            upload_bytes: (self.quota_upload_bytes > 0).then_some(self.quota_upload_bytes),
        }
    }
}

/// A submission over one of its key's quotas.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QuotaExceeded {
    /// As many jobs queued or running as the key may have.
    #[error("this key may have {limit} jobs queued or running at once; wait for one to finish")]
    ConcurrentJobs {
        /// The quota.
        limit: u32,
    },
    /// The day's audio is used up, or this file would go past it.
    #[error(
        "this key may submit {limit} s of audio per day (UTC); {used:.0} s are used and this \
         file is {requested:.0} s; the quota resets at {resets_at}"
    )]
    AudioSeconds {
        /// The quota.
        limit: u64,
        /// Submitted today before this file.
        used: f64,
        /// This file's duration (0 before it is probed).
        requested: f64,
        /// The next midnight, UTC.
        resets_at: DateTime<Utc>,
    },
    /// The upload is larger than the key may send.
    #[error("this key may upload files of up to {limit} bytes")]
    UploadBytes {
        /// The quota.
        limit: u64,
    },
}

impl QuotaExceeded {
    /// The stable error code naming the quota.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::ConcurrentJobs { .. } => ErrorCode::QuotaConcurrentJobs,
            Self::AudioSeconds { .. } => ErrorCode::QuotaAudioSeconds,
            Self::UploadBytes { .. } => ErrorCode::QuotaUploadBytes,
        }
    }

    /// Seconds until trying again can help, when that is known.
    pub fn retry_after(&self, now: DateTime<Utc>) -> Option<u64> {
        match self {
            Self::AudioSeconds { resets_at, .. } => {
                Some((*resets_at - now).num_seconds().max(1) as u64)
            }
            _ => None,
        }
    }
}

/// Jobs queued or running, against their quota.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobMeter {
    /// Now.
    pub used: u64,
    /// The quota; `null`: none.
    pub limit: Option<u32>,
}

/// Seconds of audio submitted today, against their quota.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SecondsMeter {
    /// Today (UTC).
    pub used: f64,
    /// The quota; `null`: none.
    pub limit: Option<u64>,
}

/// A key's usage and limits, as `GET /v1/usage` shows them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Usage {
    /// The key.
    pub key_id: String,
    /// The UTC day counted.
    #[schema(value_type = String, example = "2026-11-24")]
    pub day: NaiveDate,
    /// When the daily counts start again (the next midnight, UTC).
    pub resets_at: DateTime<Utc>,
    /// Jobs queued or running.
    pub concurrent_jobs: JobMeter,
    /// Audio submitted today.
    pub audio_seconds_today: SecondsMeter,
    /// Jobs submitted today.
    pub jobs_today: u64,
    /// The largest upload this key may send now, bytes: its quota or the server's limit,
    /// whichever is smaller.
    pub upload_bytes_limit: u64,
}

/// The UTC day of `now` and the midnight that ends it.
pub fn day_of(now: DateTime<Utc>) -> (NaiveDate, DateTime<Utc>) {
    let day = now.date_naive();
    let next = (day + TimeDelta::days(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc();
    (day, next)
}

/// A key's quotas; `None` if there is no such key.
pub async fn of(db: &Database, key_id: &str) -> Result<Option<Quotas>, DbError> {
    let row: Option<QuotaRow> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT quota_concurrent_jobs, quota_audio_seconds_per_day, quota_upload_bytes \
             FROM warble_api_keys WHERE id = $1",
        )
        .bind(key_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(Into::into))
}

/// Replaces a key's quotas; returns the old ones, `None` if there is no such key.
pub async fn set(db: &Database, key_id: &str, quotas: Quotas) -> Result<Option<Quotas>, DbError> {
    let before = of(db, key_id).await?;
    if before.is_some() {
        with_pool!(db, pool => {
            sqlx::query(
                "UPDATE warble_api_keys SET quota_concurrent_jobs = $2, \
                 quota_audio_seconds_per_day = $3, quota_upload_bytes = $4 WHERE id = $1",
            )
            .bind(key_id)
            .bind(quotas.concurrent_jobs.map(i64::from))
            .bind(quotas.audio_seconds_per_day.map(|v| v as i64))
            .bind(quotas.upload_bytes.map(|v| v as i64))
            .execute(pool)
            .await?;
        });
    }
    Ok(before)
}

/// A key's usage now. `upload_bytes_limit` is the quota alone (`u64::MAX` without one): the
/// caller knows the server's limit.
pub async fn usage(db: &Database, key_id: &str, quotas: Quotas) -> Result<Usage, DbError> {
    let now = Utc::now();
    let (day, resets_at) = day_of(now);
    let (active, today) = with_pool!(db, pool => {
        let active: (i64,) = sqlx::query_as(ACTIVE_JOBS).bind(key_id).fetch_one(pool).await?;
        let today: Option<(i64, f64)> = sqlx::query_as(
            "SELECT jobs, audio_seconds FROM warble_usage WHERE key_id = $1 AND day = $2",
        )
        .bind(key_id)
        .bind(day.to_string())
        .fetch_optional(pool)
        .await?;
        (active.0, today.unwrap_or((0, 0.0)))
    });
    Ok(Usage {
        key_id: key_id.to_string(),
        day,
        resets_at,
        concurrent_jobs: JobMeter {
            used: active.max(0) as u64,
            limit: quotas.concurrent_jobs,
        },
        audio_seconds_today: SecondsMeter {
            used: today.1,
            limit: quotas.audio_seconds_per_day,
        },
        jobs_today: today.0.max(0) as u64,
        upload_bytes_limit: quotas.upload_bytes.unwrap_or(u64::MAX),
    })
}

/// The check before an upload is read: is the key already at a limit? The final word is
/// [`crate::job::insert`]'s.
pub async fn precheck(
    db: &Database,
    key_id: &str,
    quotas: Quotas,
) -> Result<Result<(), QuotaExceeded>, DbError> {
    if quotas.concurrent_jobs.is_none() && quotas.audio_seconds_per_day.is_none() {
        return Ok(Ok(()));
    }
    let usage = usage(db, key_id, quotas).await?;
    Ok(over(
        quotas,
        usage.concurrent_jobs.used,
        usage.audio_seconds_today.used,
        0.0,
    ))
}

/// Settles a job's charge once its worker has decoded the audio: the job's `duration` becomes
/// the `decoded` seconds, and its key's usage on the day the job was charged (the day it was
/// submitted, see [`crate::job::insert`]) moves by the difference from what was charged, in
/// one transaction. The ledger then holds the audio decoded, not what the upload's headers and
/// packets said. Only the worker holding the running job settles it, so a job delivered twice
/// is settled once, and a second settlement (a retried attempt) moves nothing. `false`: the
/// worker no longer holds the job (canceled, or taken over).
pub async fn reconcile(
    db: &Database,
    job_id: &str,
    worker_id: &str,
    decoded: f64,
) -> Result<bool, DbError> {
    type Charged = (Option<f64>, Option<String>, DateTime<Utc>);
    with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        // A write first, changing nothing: it locks the job's row (on SQLite, the database)
        // before its charge is read, so two settlements cannot both read the old figure.
        let charged: Option<Charged> = sqlx::query_as(
            "UPDATE warble_jobs SET duration_secs = duration_secs \
             WHERE id = $1 AND worker_id = $2 AND status = 'running' \
             RETURNING duration_secs, key_id, created_at",
        )
        .bind(job_id)
        .bind(worker_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((charged, key_id, created_at)) = charged else {
            return Ok(false);
        };
        sqlx::query("UPDATE warble_jobs SET duration_secs = $2 WHERE id = $1")
            .bind(job_id)
            .bind(decoded)
            .execute(&mut *tx)
            .await?;
        if let Some(key_id) = key_id {
            sqlx::query(
                "UPDATE warble_usage SET audio_seconds = audio_seconds + $3 \
                 WHERE key_id = $1 AND day = $2",
            )
            .bind(key_id)
            .bind(day_of(created_at).0.to_string())
            .bind(decoded - charged.unwrap_or(0.0))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(true)
}

/// Counts a key's jobs queued or running.
pub(crate) const ACTIVE_JOBS: &str =
    "SELECT COUNT(*) FROM warble_jobs WHERE key_id = $1 AND status IN ('queued', 'running')";

/// Which quota, if any, a job of `requested` seconds would break, given `active` jobs and
/// `used` seconds before it.
pub(crate) fn over(
    quotas: Quotas,
    active: u64,
    used: f64,
    requested: f64,
) -> Result<(), QuotaExceeded> {
    if let Some(limit) = quotas.concurrent_jobs
        && active >= u64::from(limit)
    {
        return Err(QuotaExceeded::ConcurrentJobs { limit });
    }
    if let Some(limit) = quotas.audio_seconds_per_day {
        // Before the upload (requested 0) a key exactly at its limit is already over.
        let fits = if requested > 0.0 {
            used + requested <= limit as f64
        } else {
            used < limit as f64
        };
        if !fits {
            return Err(QuotaExceeded::AudioSeconds {
                limit,
                used,
                requested,
                resets_at: day_of(Utc::now()).1,
            });
        }
    }
    Ok(())
}

/// The quota columns of `warble_api_keys`, as read with a key.
#[derive(sqlx::FromRow)]
pub struct QuotaRow {
    /// See [`Quotas::concurrent_jobs`].
    pub quota_concurrent_jobs: Option<i64>,
    /// See [`Quotas::audio_seconds_per_day`].
    pub quota_audio_seconds_per_day: Option<i64>,
    /// See [`Quotas::upload_bytes`].
    pub quota_upload_bytes: Option<i64>,
}

impl From<QuotaRow> for Quotas {
    fn from(row: QuotaRow) -> Self {
        Self {
            concurrent_jobs: row
                .quota_concurrent_jobs
                .map(|v| v.clamp(0, u32::MAX.into()) as u32),
            audio_seconds_per_day: row.quota_audio_seconds_per_day.map(|v| v.max(0) as u64),
            upload_bytes: row.quota_upload_bytes.map(|v| v.max(0) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_inclusive_after_the_probe_and_strict_before() {
        let quotas = Quotas {
            concurrent_jobs: Some(2),
            audio_seconds_per_day: Some(100),
            upload_bytes: None,
        };
        assert!(over(quotas, 1, 50.0, 50.0).is_ok());
        assert_eq!(
            over(quotas, 2, 0.0, 1.0),
            Err(QuotaExceeded::ConcurrentJobs { limit: 2 })
        );
        assert_eq!(
            over(quotas, 0, 50.0, 50.5).unwrap_err().code(),
            ErrorCode::QuotaAudioSeconds
        );
        assert!(over(quotas, 0, 99.0, 0.0).is_ok());
        assert!(over(quotas, 0, 100.0, 0.0).is_err());
        assert!(over(Quotas::default(), u64::MAX, f64::MAX, 1e9).is_ok());
    }

    #[test]
    fn quotas_are_whole_numbers_in_range() {
        let parse = |s: &str| serde_json::from_str::<Quotas>(s);
        let q = parse(r#"{"concurrent_jobs": 3.0, "upload_bytes": 1000000000000000}"#).unwrap();
        assert_eq!(q.concurrent_jobs, Some(3));
        assert_eq!(q.upload_bytes, Some(MAX_QUOTA));
        assert_eq!(q.audio_seconds_per_day, None);
        for bad in [
            r#"{"concurrent_jobs": -1}"#,
            r#"{"concurrent_jobs": 1.5}"#,
            r#"{"concurrent_jobs": 2147483648}"#,
            r#"{"upload_bytes": 9223372036854775808}"#,
            r#"{"audio_seconds_per_day": 1e16}"#,
            r#"{"upload_bytes": "5"}"#,
            r#"{"burst": 5}"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_day_ends_at_utc_midnight() {
        let now = "2026-11-24T23:59:59Z".parse::<DateTime<Utc>>().unwrap();
        let (day, resets) = day_of(now);
        assert_eq!(day.to_string(), "2026-11-24");
        assert_eq!(resets.to_rfc3339(), "2026-11-25T00:00:00+00:00");
    }
}
