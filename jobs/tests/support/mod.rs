//! What warble-jobs' tests share: a migrated database of each kind.

// Each test crate uses some of these.
#![allow(dead_code, unused_macros)]

pub mod postgres;
pub mod prerequisite;

use warble_jobs::config::DatabaseArgs;
use warble_jobs::db::Database;
use warble_jobs::job::{self, Inserted, Job, NewJob};

/// A pool on `url`, with no migrations applied.
pub async fn connect(url: &str) -> Database {
    let args = DatabaseArgs {
        database_url: url.to_string(),
        database_max_connections: 4,
    };
    Database::connect(&args).await.unwrap()
}

/// A pool on `url` after the migrations every process applies at start.
pub async fn migrated(url: &str) -> Database {
    let db = connect(url).await;
    db.migrate().await.unwrap();
    db
}

/// Records a queued job of `tenant`, as an upload of 12.5 s of audio would.
pub async fn queued(db: &Database, tenant: &str, callback_url: Option<&str>) -> Job {
    let id = ulid::Ulid::generate();
    let new = NewJob {
        id,
        decoder: None,
        metadata: None,
        filename: Some("talk.wav".into()),
        content_type: Some("audio/wav".into()),
        audio_key: job::audio_key(id),
        audio_sha256: "0".repeat(64),
        audio_bytes: 1000,
        duration: Some(12.5),
        idempotency_key: None,
        tenant: tenant.into(),
        callback_url: callback_url.map(Into::into),
        key_id: format!("key-of-{tenant}"),
        quotas: Default::default(),
        batch_id: None,
        features: Default::default(),
    };
    match job::insert(db, &new).await.unwrap() {
        Inserted::Created(stored) => stored.job,
        other => panic!("a new job without quotas is created, not {other:?}"),
    }
}

/// Runs each `async fn(Database)` scenario once on a fresh SQLite file and once on a fresh
/// Postgres database (failing when Postgres is unreachable), as
/// separate tests.
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let dir = tempfile::tempdir().unwrap();
                    let url = format!("sqlite://{}/warble.db", dir.path().display());
                    super::$scenario($crate::support::migrated(&url).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let database = $crate::support::postgres::TestDatabase::create().await;
                    super::$scenario($crate::support::migrated(&database.url).await).await;
                }
            )*
        }
    };
}
