//! Workers announce themselves in `warble_workers` and beat while they live, so operators (and
//! the API) can see who is working on what, on which device and model.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::{Database, DbError};
use crate::with_pool;

/// A worker as last reported.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WorkerInfo {
    /// `host-pid-suffix`, unique per process.
    pub id: String,
    /// Machine name.
    pub hostname: String,
    /// `cpu`, `cuda:N` or `metal:N`.
    pub device: String,
    /// The model reference it loaded.
    pub model: String,
    /// The jobs it holds (`--concurrency` may be more than one), oldest first.
    pub current_jobs: Vec<String>,
    /// The first of `current_jobs`, for clients of the API before `current_jobs` existed.
    pub current_job: Option<String>,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its last heartbeat.
    pub last_seen: DateTime<Utc>,
    /// Memory of its device at the last heartbeat.
    pub device_memory: Option<DeviceMemory>,
}

/// Memory of a worker's device, bytes. On a GPU, the device's memory in use (by every process)
/// and in all; on a CPU, the worker's resident memory and the machine's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeviceMemory {
    /// In use.
    pub used_bytes: i64,
    /// In all.
    pub total_bytes: i64,
}

#[derive(sqlx::FromRow)]
struct WorkerRow {
    id: String,
    hostname: String,
    device: String,
    model: String,
    current_jobs: String,
    started_at: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    device_memory_used_bytes: Option<i64>,
    device_memory_total_bytes: Option<i64>,
}

impl TryFrom<WorkerRow> for WorkerInfo {
    type Error = DbError;

    fn try_from(row: WorkerRow) -> Result<Self, DbError> {
        let current_jobs: Vec<String> = serde_json::from_str(&row.current_jobs)
            .map_err(|err| DbError::Sqlx(sqlx::Error::Decode(err.into())))?;
        Ok(Self {
            id: row.id,
            hostname: row.hostname,
            device: row.device,
            model: row.model,
            current_job: current_jobs.first().cloned(),
            current_jobs,
            started_at: row.started_at,
            last_seen: row.last_seen,
            device_memory: row
                .device_memory_used_bytes
                .zip(row.device_memory_total_bytes)
                .map(|(used_bytes, total_bytes)| DeviceMemory {
                    used_bytes,
                    total_bytes,
                }),
        })
    }
}

/// Records a starting worker (or refreshes it).
pub async fn register(db: &Database, worker: &WorkerInfo) -> Result<(), DbError> {
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO warble_workers (id, hostname, device, model, current_jobs, started_at, last_seen) \
             VALUES ($1, $2, $3, $4, '[]', $5, $5) \
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

/// A heartbeat: the worker is alive, holds `current_jobs`, and its device has `memory`.
pub async fn beat(
    db: &Database,
    id: &str,
    current_jobs: &[String],
    memory: Option<DeviceMemory>,
) -> Result<(), DbError> {
    let current_jobs = serde_json::to_string(current_jobs).expect("strings serialise");
    with_pool!(db, pool => {
        sqlx::query(
            "UPDATE warble_workers SET last_seen = $2, current_jobs = $3, \
             device_memory_used_bytes = $4, device_memory_total_bytes = $5 WHERE id = $1",
        )
            .bind(id)
            .bind(Utc::now())
            .bind(current_jobs)
            .bind(memory.map(|m| m.used_bytes))
            .bind(memory.map(|m| m.total_bytes))
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
    let rows: Vec<WorkerRow> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, hostname, device, model, current_jobs, started_at, last_seen, \
             device_memory_used_bytes, device_memory_total_bytes FROM warble_workers WHERE last_seen >= $1 ORDER BY last_seen DESC",
        )
        .bind(since)
        .fetch_all(pool)
        .await?
    });
    rows.into_iter().map(WorkerInfo::try_from).collect()
}

/// The id shown for a worker's model: a repository id as given, a local file by its stem.
pub fn model_id(source: &str) -> String {
    let path = std::path::Path::new(source);
    let local = source.starts_with(['/', '.', '~'])
        || source.contains('\\')
        || path.extension().is_some_and(|e| e == "nemo");
    if local {
        let name = path.file_stem().or_else(|| path.file_name());
        name.map_or_else(|| "model".into(), |n| n.to_string_lossy().into_owned())
    } else {
        source.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_hide_server_paths_and_keep_repository_ids() {
        assert_eq!(model_id("/srv/models/parakeet-tdt.nemo"), "parakeet-tdt");
        assert_eq!(model_id("./hybrid.nemo"), "hybrid");
        assert_eq!(model_id("/srv/models/extracted"), "extracted");
        assert_eq!(
            model_id("nvidia/parakeet-tdt-0.6b-v2"),
            "nvidia/parakeet-tdt-0.6b-v2"
        );
    }
}
