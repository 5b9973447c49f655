//! Workers announce themselves in `warble_workers` and beat while they live, so operators (and
//! the API) can see who is working on what, on which device and model.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{Database, DbError};
use crate::with_pool;

/// A worker as last reported.
#[derive(Debug, Clone, Serialize, ToSchema, sqlx::FromRow)]
pub struct WorkerInfo {
    /// `host-pid-suffix`, unique per process.
    pub id: String,
    /// Machine name.
    pub hostname: String,
    /// `cpu`, `cuda:N` or `metal:N`.
    pub device: String,
    /// The model reference it loaded.
    pub model: String,
    /// The job it is transcribing, if any.
    pub current_job: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_seen: DateTime<Utc>,
}

/// Records a starting worker (or refreshes it).
pub async fn register(db: &Database, worker: &WorkerInfo) -> Result<(), DbError> {
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO warble_workers (id, hostname, device, model, current_job, started_at, last_seen) \
             VALUES ($1, $2, $3, $4, NULL, $5, $5) \
             ON CONFLICT (id) DO UPDATE SET last_seen = $5",
        )
        .bind(&worker.id)
        .bind(&worker.hostname)
        .bind(&worker.device)
        .bind(&worker.model)
        .bind(worker.started_at)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// A heartbeat: the worker is alive and holds `current_job`.
pub async fn beat(db: &Database, id: &str, current_job: Option<&str>) -> Result<(), DbError> {
    with_pool!(db, pool => {
        sqlx::query("UPDATE warble_workers SET last_seen = $2, current_job = $3 WHERE id = $1")
            .bind(id)
            .bind(Utc::now())
            .bind(current_job)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// A worker leaving cleanly.
pub async fn deregister(db: &Database, id: &str) -> Result<(), DbError> {
    with_pool!(db, pool => {
        sqlx::query("DELETE FROM warble_workers WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Workers seen since `since`, newest heartbeat first.
pub async fn list(db: &Database, since: DateTime<Utc>) -> Result<Vec<WorkerInfo>, DbError> {
    let rows = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, hostname, device, model, current_job, started_at, last_seen \
             FROM warble_workers WHERE last_seen >= $1 ORDER BY last_seen DESC",
        )
        .bind(since)
        .fetch_all(pool)
        .await?
    });
    Ok(rows)
}
