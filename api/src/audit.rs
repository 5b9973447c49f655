//! The audit log: who made or revoked a key, changed its quotas, registered, changed or deleted
//! a webhook, rotated a secret, retried a delivery, canceled or deleted a job, and when.
//! Append-only; the entry is written right after the action it records.

use chrono::{DateTime, Utc};
use serde::Serialize;
use ulid::Ulid;
use utoipa::ToSchema;

use warble_jobs::db::{Database, DbError};
use warble_jobs::with_pool;

/// One audited action.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Entry {
    /// ULID (sorts by time).
    pub id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who: the key id, or `cli` (`api keys ...`) or `startup` (the first admin key).
    pub actor: String,
    /// `key.create`, `key.revoke`, `quota.update`, `webhook.create`, `webhook.update`,
    /// `webhook.delete`, `webhook.rotate_secret`, `webhook.rotate_tenant_secret`,
    /// `delivery.retry`, `job.cancel` or `job.delete`.
    pub action: String,
    /// The key, webhook endpoint, tenant (its default secret), delivery or job acted on.
    pub target: String,
    /// Details (a JSON object, as text in the database).
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A row: `detail` is stored as text in both databases.
#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    at: DateTime<Utc>,
    actor: String,
    action: String,
    target: String,
    detail: String,
}

/// Records an action.
pub async fn record(
    db: &Database,
    actor: &str,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), DbError> {
    with_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO warble_audit (id, at, actor, action, target, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(Ulid::generate().to_string())
        .bind(Utc::now())
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail.to_string())
        .execute(pool)
        .await
        .map(|_| ())?
    });
    Ok(())
}

/// Newest first, `limit` entries older than the entry `before` (a cursor).
pub async fn list(db: &Database, before: Option<&str>, limit: u32) -> Result<Vec<Entry>, DbError> {
    let rows: Vec<Row> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, at, actor, action, target, detail FROM warble_audit \
             WHERE ($1 IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?
    });
    Ok(rows
        .into_iter()
        .map(|r| Entry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            action: r.action,
            target: r.target,
            detail: serde_json::from_str(&r.detail).unwrap_or_default(),
        })
        .collect())
}
