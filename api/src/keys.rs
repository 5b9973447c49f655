//! API keys: who may call the API, with which role, on behalf of which tenant.
//!
//! A key is `wbl_` and 64 hex characters (32 random bytes). Only its SHA-256 is stored, with
//! the first 12 characters as a visible prefix; the secret is shown once, when it is made.
//! Looking a key up by its hash needs no constant-time comparison: the database never sees
//! the secret, and the hash of a guess tells nothing about a real key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ulid::Ulid;
use utoipa::ToSchema;

use warble_jobs::db::{Database, DbError};
use warble_jobs::quota::{QuotaRow, Quotas};
use warble_jobs::with_pool;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything: every tenant's jobs, keys, workers.
    Admin,
    /// Its own tenant's jobs.
    User,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::User => "user",
        }
    }

    fn parse(s: &str) -> Self {
        // Anything unexpected gets the lesser role.
        if s == "admin" {
            Self::Admin
        } else {
            Self::User
        }
    }
}

/// A key as listed: never its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiKey {
    /// ULID.
    #[schema(example = "01JDR7Q9V3X8M2K4T6N0P5B1CZ")]
    pub id: String,
    /// For people.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// Who its jobs belong to.
    pub tenant: String,
    /// The first characters of the secret, to tell keys apart.
    #[schema(example = "wbl_3f9a1c0e")]
    pub prefix: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked; a revoked key is refused.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Its limits.
    pub quotas: Quotas,
}

/// Who is calling, once their key or token is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key (for a token: the key it was exchanged for).
    pub key_id: String,
    /// Its role.
    pub role: Role,
    /// Its tenant.
    pub tenant: String,
}

impl Caller {
    /// The tenant whose jobs this caller may see: `None` (all of them) for admins.
    pub fn scope(&self) -> Option<&str> {
        match self.role {
            Role::Admin => None,
            Role::User => Some(&self.tenant),
        }
    }
}

/// Length of the visible prefix.
const PREFIX_LEN: usize = 12;

/// Shortest secret accepted from configuration (`WARBLE_ADMIN_KEY`).
pub const MIN_SECRET_LEN: usize = 32;

/// A new random secret.
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source");
    format!("wbl_{}", warble_jobs::hex(&bytes))
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    warble_jobs::hex(&Sha256::digest(secret.as_bytes()))
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: String,
    name: String,
    role: String,
    tenant: String,
    prefix: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    quotas: QuotaRow,
}

impl From<KeyRow> for ApiKey {
    fn from(row: KeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            role: Role::parse(&row.role),
            tenant: row.tenant,
            prefix: row.prefix,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
            quotas: row.quotas.into(),
        }
    }
}

/// The columns of [`KeyRow`], as a literal so that queries stay `&'static str`.
macro_rules! key_columns {
    () => {
        "id, name, role, tenant, prefix, created_at, revoked_at, quota_concurrent_jobs, \
         quota_audio_seconds_per_day, quota_upload_bytes"
    };
}

/// Stores a key with a new random secret and returns it with the secret. The tenant defaults
/// to the key's own id: a tenant of its own.
pub async fn create(
    db: &Database,
    name: &str,
    role: Role,
    tenant: Option<&str>,
    quotas: Quotas,
) -> Result<(ApiKey, String), DbError> {
    let (key, secret) = new_key(name, role, tenant, quotas, None);
    // 256 random bits are never already stored: the insert cannot be skipped.
    insert(db, &key, &secret, false).await?;
    Ok((key, secret))
}

/// A key for `secret` (a new random one if `None`), not stored yet.
fn new_key(
    name: &str,
    role: Role,
    tenant: Option<&str>,
    quotas: Quotas,
    secret: Option<&str>,
) -> (ApiKey, String) {
    let secret = secret.map_or_else(generate, str::to_string);
    let id = Ulid::generate().to_string();
    let key = ApiKey {
        tenant: tenant.map_or_else(|| id.clone(), str::to_string),
        id,
        name: name.to_string(),
        role,
        prefix: secret.chars().take(PREFIX_LEN).collect(),
        created_at: Utc::now(),
        revoked_at: None,
        quotas,
    };
    (key, secret)
}

/// Stores `key`; `false` if its secret is already stored, or, with `first_admin`, if a live
/// admin key exists. The check and the write are one transaction under the key's tenant's
/// lock, so API replicas starting together on a fresh database make one first admin, not one
/// each.
async fn insert(
    db: &Database,
    key: &ApiKey,
    secret: &str,
    first_admin: bool,
) -> Result<bool, DbError> {
    let inserted = with_pool!(db, pool => {
        let mut tx = pool.begin().await?;
        if first_admin {
            sqlx::query(warble_jobs::db::LOCK_TENANT)
                .bind(&key.tenant)
                .execute(&mut *tx)
                .await?;
            let (admins,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM warble_api_keys WHERE role = 'admin' AND revoked_at IS NULL",
            )
            .fetch_one(&mut *tx)
            .await?;
            if admins > 0 {
                return Ok(false);
            }
        }
        let inserted = sqlx::query(
            "INSERT INTO warble_api_keys (id, name, role, tenant, prefix, sha256, created_at, \
             quota_concurrent_jobs, quota_audio_seconds_per_day, quota_upload_bytes) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (sha256) DO NOTHING",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(key.role.as_str())
        .bind(&key.tenant)
        .bind(&key.prefix)
        .bind(hash(secret))
        .bind(key.created_at)
        .bind(key.quotas.concurrent_jobs.map(i64::from))
        .bind(key.quotas.audio_seconds_per_day.map(|v| v as i64))
        .bind(key.quotas.upload_bytes.map(|v| v as i64))
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        inserted
    });
    Ok(inserted)
}

/// Every key, newest first.
pub async fn list(db: &Database) -> Result<Vec<ApiKey>, DbError> {
    let sql = concat!(
        "SELECT ",
        key_columns!(),
        " FROM warble_api_keys ORDER BY id DESC"
    );
    let rows: Vec<KeyRow> = with_pool!(db, pool => {
        sqlx::query_as(sql).fetch_all(pool).await?
    });
    Ok(rows.into_iter().map(Into::into).collect())
}

/// One key by id.
pub async fn get(db: &Database, id: &str) -> Result<Option<ApiKey>, DbError> {
    let sql = concat!(
        "SELECT ",
        key_columns!(),
        " FROM warble_api_keys WHERE id = $1"
    );
    let row: Option<KeyRow> = with_pool!(db, pool => {
        sqlx::query_as(sql).bind(id).fetch_optional(pool).await?
    });
    Ok(row.map(Into::into))
}

/// Revokes a key (again is a no-op) and returns it; `None` if there is no such key.
pub async fn revoke(db: &Database, id: &str) -> Result<Option<ApiKey>, DbError> {
    let sql = concat!(
        "UPDATE warble_api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 \
         RETURNING ",
        key_columns!()
    );
    let row: Option<KeyRow> = with_pool!(db, pool => {
        sqlx::query_as(sql)
            .bind(id)
            .bind(Utc::now())
            .fetch_optional(pool)
            .await?
    });
    Ok(row.map(Into::into))
}

/// The caller a secret belongs to, if it is a live key.
pub async fn authenticate(db: &Database, secret: &str) -> Result<Option<Caller>, DbError> {
    let row: Option<(String, String, String)> = with_pool!(db, pool => {
        sqlx::query_as(
            "SELECT id, role, tenant FROM warble_api_keys \
             WHERE sha256 = $1 AND revoked_at IS NULL",
        )
        .bind(hash(secret))
        .fetch_optional(pool)
        .await?
    });
    Ok(row.map(|(key_id, role, tenant)| Caller {
        key_id,
        role: Role::parse(&role),
        tenant,
    }))
}

/// Makes sure an admin can get in on a fresh install: stores `configured` (from
/// `WARBLE_ADMIN_KEY`) as an admin key unless that secret is already known (a revoked one
/// stays revoked); without it, and with no live admin key, makes one. Returns a secret made
/// here, to be shown once.
pub async fn bootstrap_admin(
    db: &Database,
    configured: Option<&str>,
) -> Result<Option<String>, DbError> {
    // Replicas may start together: each check is made with its write, in one transaction.
    let (name, first_admin) = match configured {
        Some(_) => ("WARBLE_ADMIN_KEY", false),
        None => ("first admin", true),
    };
    let (key, secret) = new_key(
        name,
        Role::Admin,
        Some("admin"),
        Quotas::default(),
        configured,
    );
    if !insert(db, &key, &secret, first_admin).await? {
        // The configured secret is known (a revoked one stays revoked), or an admin exists.
        return Ok(None);
    }
    audit_startup(db, &key).await?;
    // A configured secret is the operator's already; only a made one is shown.
    Ok(first_admin.then_some(secret))
}

/// Records a key made at start-up.
async fn audit_startup(db: &Database, key: &ApiKey) -> Result<(), DbError> {
    let detail = serde_json::json!({ "name": key.name, "role": key.role, "tenant": key.tenant });
    crate::audit::record(db, "startup", "key.create", &key.id, detail).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashed() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        assert_eq!(a.len(), 68);
        assert!(a.starts_with("wbl_"));
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
    }
}
