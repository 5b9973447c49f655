//! Webhooks: endpoints a tenant registers, the events they receive, and their secrets. What
//! is sent and when lives in [`outbox`]; how it is signed in [`signing`].

pub mod outbox;
pub mod signing;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;
use utoipa::ToSchema;

use crate::db::{Database, DbError};
use crate::with_pool;

/// What happened to a job or a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
pub enum Event {
    /// A worker started the job (its first attempt).
    #[serde(rename = "job.started")]
    JobStarted,
    /// The transcript is ready.
    #[serde(rename = "job.succeeded")]
    JobSucceeded,
    /// The job failed for good; `error` says why.
    #[serde(rename = "job.failed")]
    JobFailed,
    /// The job was canceled before it finished.
    #[serde(rename = "job.canceled")]
    JobCanceled,
    /// Every request of a batch has ended (also after a cancel: `status` says which).
    #[serde(rename = "batch.completed")]
    BatchCompleted,
}

impl Event {
    /// Every event, in the order of a job's life, then a batch's.
    pub const ALL: [Event; 5] = [
        Self::JobStarted,
        Self::JobSucceeded,
        Self::JobFailed,
        Self::JobCanceled,
        Self::BatchCompleted,
    ];

    /// The name on the wire (`type` of the payload).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobStarted => "job.started",
            Self::JobSucceeded => "job.succeeded",
            Self::JobFailed => "job.failed",
            Self::JobCanceled => "job.canceled",
            Self::BatchCompleted => "batch.completed",
        }
    }
}

crate::db::stored_as_text!(Event, "webhook event");

/// Events as stored: `,job.succeeded,job.failed,`, so that `LIKE '%,job.failed,%'` finds
/// the endpoints of an event in either database.
fn store_events(events: &[Event]) -> String {
    let names: Vec<&str> = Event::ALL
        .into_iter()
        .filter(|e| events.contains(e))
        .map(Event::as_str)
        .collect();
    format!(",{},", names.join(","))
}

/// An endpoint's events as read from their stored form; an unknown name fails the read.
struct StoredEvents(Vec<Event>);

impl StoredEvents {
    fn parse(stored: &str) -> Result<Self, crate::db::UnknownValue> {
        stored
            .split(',')
            .filter(|name| !name.is_empty())
            .map(Event::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }
}

crate::db::decoded_from_text!(StoredEvents, StoredEvents::parse);

/// An endpoint, as listed: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Webhook {
    /// ULID.
    #[schema(example = "01JDR9M3Q2W8E4R6T8Y0U2I4O6")]
    pub id: String,
    /// The tenant whose jobs it hears about.
    pub tenant: String,
    /// Where deliveries are POSTed.
    #[schema(example = "https://example.com/hooks/warble")]
    pub url: String,
    /// What it receives.
    pub events: Vec<Event>,
    /// For people.
    pub description: Option<String>,
    /// Whether deliveries are sent; an endpoint answering 410 Gone is disabled.
    pub enabled: bool,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Until when the secret replaced by the last rotation still signs too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct WebhookRow {
    id: String,
    tenant: String,
    url: String,
    events: StoredEvents,
    description: Option<String>,
    disabled_at: Option<DateTime<Utc>>,
    disabled_reason: Option<String>,
    previous_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Self {
            id: row.id,
            tenant: row.tenant,
            url: row.url,
            events: row.events.0,
            description: row.description,
            enabled: row.disabled_at.is_none(),
            disabled_reason: row.disabled_reason,
            previous_secret_expires_at: row.previous_expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// The columns of [`WebhookRow`].
macro_rules! webhook_columns {
    () => {
        "id, tenant, url, events, description, disabled_at, disabled_reason, \
         previous_expires_at, created_at, updated_at"
    };
}

/// Endpoints one tenant may have: each event is sent to every one of them, so without a cap
/// one tenant could make every job of theirs fan out without bound.
pub const MAX_PER_TENANT: i64 = 25;

/// Stores an endpoint with a new secret; returns it and the secret, shown once. `None` if the
/// tenant already has [`MAX_PER_TENANT`] endpoints.
pub async fn create(
    db: &Database,
    tenant: &str,
    url: &str,
    events: &[Event],
    description: Option<&str>,
) -> Result<Option<(Webhook, String)>, DbError> {
    let secret = signing::generate();
    let now = Utc::now();
    let sql = concat!(
        "INSERT INTO warble_webhooks (id, tenant, url, events, description, secret, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING ",
        webhook_columns!()
    );
    // Counted and inserted in one transaction under the tenant's lock: concurrent creates
    // cannot both see 24.
    let row: WebhookRow = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(crate::db::LOCK_TENANT)
            .bind(tenant)
            .execute(&mut *tx)
            .await?;
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM warble_webhooks WHERE tenant = $1")
            .bind(tenant)
            .fetch_one(&mut *tx)
            .await?;
        if count >= MAX_PER_TENANT {
            return Ok(None);
        }
        let row = sqlx::query_as(sql)
            .bind(Ulid::generate().to_string())
            .bind(tenant)
            .bind(url)
            .bind(store_events(events))
            .bind(description)
            .bind(&secret)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        row
    });
    Ok(Some((row.into(), secret)))
}

/// The endpoints `tenant` may see (all of them for `None`), newest first.
pub async fn list(db: &Database, tenant: Option<&str>) -> Result<Vec<Webhook>, DbError> {
    let sql = concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM warble_webhooks WHERE ($1 IS NULL OR tenant = $1) ORDER BY id DESC"
    );
    let rows: Vec<WebhookRow> = with_pool!(db, pool => {
        sqlx::query_as(sql).bind(tenant).fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One endpoint, if `tenant` may see it.
pub async fn get(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
) -> Result<Option<Webhook>, DbError> {
    let sql = concat!(
        "SELECT ",
        webhook_columns!(),
        " FROM warble_webhooks WHERE id = $1 AND ($2 IS NULL OR tenant = $2)"
    );
    let row: Option<WebhookRow> = with_pool!(db, pool => {
        sqlx::query_as(sql).bind(id).bind(tenant).fetch_optional(pool).await?
    });
    Ok(row.map(Into::into))
}

/// Changes to an endpoint; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct Changes<'a> {
    /// A new URL, already checked.
    pub url: Option<&'a str>,
    /// New events (not empty).
    pub events: Option<&'a [Event]>,
    /// A new description (`Some(None)` clears it).
    pub description: Option<Option<&'a str>>,
    /// Enable (clearing the reason it was disabled) or disable it.
    pub enabled: Option<bool>,
}

/// Applies `changes`; `None` if `tenant` has no such endpoint.
pub async fn update(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
    changes: &Changes<'_>,
) -> Result<Option<Webhook>, DbError> {
    let sql = concat!(
        "UPDATE warble_webhooks SET url = COALESCE($3, url), events = COALESCE($4, events), \
         description = CASE WHEN $5 THEN $6 ELSE description END, \
         disabled_at = CASE WHEN $7 IS NULL THEN disabled_at WHEN $7 THEN NULL \
                            ELSE COALESCE(disabled_at, $8) END, \
         disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason WHEN $7 THEN NULL \
                                ELSE COALESCE(disabled_reason, 'disabled by a user') END, \
         updated_at = $8 WHERE id = $1 AND ($2 IS NULL OR tenant = $2) RETURNING ",
        webhook_columns!()
    );
    let row: Option<WebhookRow> = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(id)
            .bind(tenant)
            .bind(changes.url)
            .bind(changes.events.map(store_events))
            .bind(changes.description.is_some())
            .bind(changes.description.flatten())
            .bind(changes.enabled)
            .bind(Utc::now())
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(Into::into))
}

/// Deletes an endpoint; its pending and retrying deliveries fail ("endpoint deleted"). `None`
/// if `tenant` has no such endpoint.
pub async fn delete(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
) -> Result<Option<Webhook>, DbError> {
    let sql = concat!(
        "DELETE FROM warble_webhooks WHERE id = $1 AND ($2 IS NULL OR tenant = $2) RETURNING ",
        webhook_columns!()
    );
    let row: Option<WebhookRow> = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        let row: Option<WebhookRow> = sqlx::query_as(sql)
            .bind(id)
            .bind(tenant)
            .fetch_optional(&mut *tx)
            .await?;
        if row.is_some() {
            sqlx::query(outbox::ABANDON_OPEN)
                .bind(id)
                .bind("endpoint deleted")
                .bind(Utc::now())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        row
    });
    Ok(row.map(Into::into))
}

/// Gives an endpoint a new secret; the old one keeps signing (a second signature) for
/// `grace`. Returns the endpoint and the new secret, shown once.
pub async fn rotate(
    db: &Database,
    id: &str,
    tenant: Option<&str>,
    grace: TimeDelta,
) -> Result<Option<(Webhook, String)>, DbError> {
    let secret = signing::generate();
    let now = Utc::now();
    let sql = concat!(
        "UPDATE warble_webhooks SET previous_secret = secret, previous_expires_at = $4, \
         secret = $3, updated_at = $5 WHERE id = $1 AND ($2 IS NULL OR tenant = $2) RETURNING ",
        webhook_columns!()
    );
    let row: Option<WebhookRow> = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(id)
            .bind(tenant)
            .bind(&secret)
            .bind(now + grace)
            .bind(now)
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(|row| (row.into(), secret)))
}

/// Gives `tenant` a new default secret, which signs callbacks to jobs' own `callback_url`;
/// the previous one, if there was one, keeps signing for `grace`. Returns the secret, shown
/// once, and when the previous one stops signing (`None` for a tenant's first secret).
pub async fn rotate_tenant_secret(
    db: &Database,
    tenant: &str,
    grace: TimeDelta,
) -> Result<(String, Option<DateTime<Utc>>), DbError> {
    let secret = signing::generate();
    let now = Utc::now();
    let (previous_expires_at,): (Option<DateTime<Utc>>,) = with_pool!(db, pool => {
        sqlx::query_as(
            "INSERT INTO warble_tenant_secrets (tenant, secret, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant) DO UPDATE SET previous_secret = warble_tenant_secrets.secret, \
             previous_expires_at = $4, secret = excluded.secret, created_at = excluded.created_at \
             RETURNING previous_expires_at",
        )
        .bind(tenant)
        .bind(&secret)
        .bind(now)
        .bind(now + grace)
        .fetch_one(pool)
        .await?
    });
    Ok((secret, previous_expires_at))
}

/// Whether `tenant` has a default secret (callbacks cannot be signed without one).
pub async fn has_tenant_secret(db: &Database, tenant: &str) -> Result<bool, DbError> {
    let found: Option<(String,)> = with_pool!(db, pool => {
        sqlx::query_as("SELECT tenant FROM warble_tenant_secrets WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(pool)
            .await?
    });
    Ok(found.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_through_their_stored_form() {
        let stored = store_events(&[Event::JobFailed, Event::JobSucceeded]);
        assert_eq!(stored, ",job.succeeded,job.failed,");
        assert!(stored.contains(",job.failed,"));
        assert!(!stored.contains(",job.started,"));
        let loaded = StoredEvents::parse(&stored).unwrap();
        assert_eq!(loaded.0, [Event::JobSucceeded, Event::JobFailed]);
    }

    #[test]
    fn an_unknown_stored_event_is_an_error() {
        let error = StoredEvents::parse(",job.succeeded,job.paused,")
            .err()
            .expect("job.paused is no event");
        assert_eq!(error.to_string(), r#"unknown webhook event "job.paused""#);
    }
}
