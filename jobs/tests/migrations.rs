//! The two migration folders must describe one schema: every query is written once for both
//! databases, so a column, key or index added to one folder only is a bug that shows on the
//! other database alone, at run time. Both folders are applied to fresh databases and their
//! tables compared through the databases' own catalogs. Migrations that change stored data
//! are applied to rows written as the version before them wrote them.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use sqlx::migrate::Migrator;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use warble_jobs::db::Database;
use warble_jobs::webhook::outbox::{self, DeliveryStatus};
use warble_jobs::with_pool;

/// What the schema says, one fact a line: `warble_jobs.status` → `text not null`,
/// `warble_jobs primary key` → `(id)`, `warble_jobs index warble_jobs_status_id` →
/// `(status, id)`. Facts are comparable across the two databases.
type Facts = BTreeMap<String, String>;

/// An index as either catalog describes it.
struct Index {
    name: String,
    columns: Vec<String>,
    unique: bool,
    partial: bool,
    /// Made for a `UNIQUE` constraint: its name is the database's own, so it is compared by
    /// its columns only.
    for_constraint: bool,
}

#[tokio::test]
async fn sqlite_and_postgres_migrations_describe_the_same_schema() {
    let postgres = support::postgres::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}/warble.db", dir.path().display());
    let Database::Sqlite(sqlite) = support::connect(&sqlite_url).await else {
        unreachable!("a sqlite: URL");
    };
    let Database::Postgres(postgres) = support::connect(&postgres.url).await else {
        unreachable!("a postgres: URL");
    };
    // The folders as they are on disk, not as compiled into the library.
    let folders = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    let migrator = |name: &str| Migrator::new(folders.join(name));
    migrator("sqlite")
        .await
        .unwrap()
        .run(&sqlite)
        .await
        .unwrap();
    migrator("postgres")
        .await
        .unwrap()
        .run(&postgres)
        .await
        .unwrap();

    let sqlite = sqlite_facts(&sqlite).await;
    let postgres = postgres_facts(&postgres).await;
    // Each kind of fact was read from both catalogs: a query that found nothing would agree
    // with the other database's nothing.
    for (key, fact) in [
        ("warble_jobs.status", "text not null"),
        ("warble_jobs.created_at", "text not null"),
        ("warble_usage primary key", "(key_id, day)"),
        ("warble_jobs unique (idempotency_key)", "constraint"),
        (
            "warble_jobs index warble_jobs_not_enqueued",
            "(enqueued) partial",
        ),
    ] {
        for (name, facts) in [("sqlite", &sqlite), ("postgres", &postgres)] {
            assert_eq!(
                facts.get(key).map(String::as_str),
                Some(fact),
                "{name}: {key}"
            );
        }
    }
    let keys: BTreeSet<&String> = sqlite.keys().chain(postgres.keys()).collect();
    let differences: Vec<String> = keys
        .into_iter()
        .filter(|key| sqlite.get(*key) != postgres.get(*key))
        .map(|key| {
            let show = |fact: Option<&String>| fact.map_or("nothing".into(), |f| f.clone());
            format!(
                "{key}: sqlite {}, postgres {}",
                show(sqlite.get(key)),
                show(postgres.get(key))
            )
        })
        .collect();
    assert!(
        differences.is_empty(),
        "migrations/sqlite and migrations/postgres differ:\n{}",
        differences.join("\n")
    );
}

/// Our tables: apalis keeps its queue in tables of its own, and the migrator its record of
/// applied migrations; neither is written by these folders.
const OURS: &str = "LIKE 'warble\\_%' ESCAPE '\\' AND name <> 'warble_migrations'";

async fn sqlite_facts(pool: &SqlitePool) -> Facts {
    let tables: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name {OURS}"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    let mut facts = Facts::new();
    for table in tables {
        let columns: Vec<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT name, type, \"notnull\", pk FROM pragma_table_info($1) ORDER BY cid",
        )
        .bind(&table)
        .fetch_all(pool)
        .await
        .unwrap();
        let mut primary_key: Vec<(i64, String)> = Vec::new();
        for (name, declared, not_null, pk) in columns {
            let ty = match declared.to_uppercase().as_str() {
                "TEXT" => Some("text"),
                // SQLite's INTEGER is 64 bits, whatever the declaration says.
                "INTEGER" | "BIGINT" => Some("64-bit integer"),
                "REAL" | "DOUBLE PRECISION" => Some("64-bit float"),
                "BOOLEAN" => Some("boolean"),
                _ => None,
            };
            if pk > 0 {
                primary_key.push((pk, name.clone()));
            }
            // SQLite lets a key column of a table with rowids hold NULL; Postgres does not,
            // and no row of ours has one.
            column(
                &mut facts,
                &table,
                &name,
                ty.ok_or(&declared),
                not_null != 0 || pk > 0,
            );
        }
        primary_key.sort();
        let primary_key: Vec<String> = primary_key.into_iter().map(|(_, name)| name).collect();
        facts.insert(format!("{table} primary key"), list(&primary_key));

        let indexes: Vec<(String, i64, String, i64)> = sqlx::query_as(
            "SELECT name, \"unique\", origin, partial FROM pragma_index_list($1) \
             WHERE origin <> 'pk'",
        )
        .bind(&table)
        .fetch_all(pool)
        .await
        .unwrap();
        for (name, unique, origin, partial) in indexes {
            let columns =
                sqlx::query_scalar("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                    .bind(&name)
                    .fetch_all(pool)
                    .await
                    .unwrap();
            let index = Index {
                name,
                columns,
                unique: unique != 0,
                partial: partial != 0,
                for_constraint: origin == "u",
            };
            index.describe(&mut facts, &table);
        }
    }
    facts
}

async fn postgres_facts(pool: &PgPool) -> Facts {
    let tables: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT name FROM (SELECT tablename::text AS name FROM pg_tables \
         WHERE schemaname = current_schema()) ours WHERE name {OURS}"
    )))
    .fetch_all(pool)
    .await
    .unwrap();
    let mut facts = Facts::new();
    for table in tables {
        let columns: Vec<(String, String, bool)> = sqlx::query_as(
            "SELECT attname::text, format_type(atttypid, atttypmod), attnotnull \
             FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 \
             AND NOT attisdropped ORDER BY attnum",
        )
        .bind(&table)
        .fetch_all(pool)
        .await
        .unwrap();
        for (name, declared, not_null) in columns {
            let ty = match declared.split('(').next().unwrap() {
                "text" | "character varying" => Some("text"),
                // Times are TIMESTAMPTZ here and RFC 3339 TEXT on SQLite, which has no time
                // type; both read as chrono's DateTime<Utc>.
                "timestamp with time zone" => Some("text"),
                "bigint" => Some("64-bit integer"),
                "double precision" => Some("64-bit float"),
                "boolean" => Some("boolean"),
                _ => None,
            };
            column(&mut facts, &table, &name, ty.ok_or(&declared), not_null);
        }

        let indexes: Vec<(String, Vec<String>, bool, bool, bool, bool)> = sqlx::query_as(
            "SELECT i.relname::text, \
               ARRAY(SELECT a.attname::text \
                     FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                     JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum \
                     ORDER BY k.ord), \
               ix.indisprimary, ix.indisunique, ix.indpred IS NOT NULL, \
               EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid) \
             FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
             WHERE ix.indrelid = to_regclass($1)",
        )
        .bind(&table)
        .fetch_all(pool)
        .await
        .unwrap();
        for (name, columns, primary, unique, partial, for_constraint) in indexes {
            if primary {
                facts.insert(format!("{table} primary key"), list(&columns));
                continue;
            }
            let index = Index {
                name,
                columns,
                unique,
                partial,
                for_constraint,
            };
            index.describe(&mut facts, &table);
        }
    }
    facts
}

/// A column's fact: its type as both databases read it (`Err`: the type as declared, which
/// no mapping covers, so it matches nothing), and whether it may be NULL.
fn column(facts: &mut Facts, table: &str, name: &str, ty: Result<&str, &String>, not_null: bool) {
    let ty = ty.map_or_else(|declared| format!("{declared} (unmapped)"), String::from);
    let null = if not_null { "not null" } else { "null" };
    facts.insert(format!("{table}.{name}"), format!("{ty} {null}"));
}

/// `(a, b)`.
fn list(columns: &[String]) -> String {
    format!("({})", columns.join(", "))
}

impl Index {
    fn describe(self, facts: &mut Facts, table: &str) {
        let columns = list(&self.columns);
        if self.for_constraint {
            facts.insert(format!("{table} unique {columns}"), "constraint".into());
        } else {
            let mut what = columns;
            if self.unique {
                what.push_str(" unique");
            }
            if self.partial {
                what.push_str(" partial");
            }
            facts.insert(format!("{table} index {}", self.name), what);
        }
    }
}

/// The migration that added `retrying`: before it, a delivery waiting for its next attempt
/// after a failed one was `pending`, like one never attempted.
const RETRYING: i64 = 20261130000002;

#[tokio::test]
async fn upgrading_makes_deliveries_waiting_for_a_retry_retrying() {
    let postgres = support::postgres::TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}/warble.db", dir.path().display());
    let folders = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations");
    for (folder, url) in [("sqlite", &sqlite_url), ("postgres", &postgres.url)] {
        let db = support::connect(url).await;
        let migrator = Migrator::new(folders.join(folder)).await.unwrap();
        with_pool!(&db, pool => migrator.run_to(RETRYING - 1, pool).await.unwrap());
        for (id, status, attempts) in [
            ("never", "pending", 0),
            ("waiting", "pending", 2),
            ("done", "delivered", 1),
            ("gave-up", "failed", 8),
        ] {
            with_pool!(&db, pool => {
                sqlx::query(
                    "INSERT INTO warble_deliveries (id, tenant, url, event, job_id, payload, \
                     status, attempts, created_at) \
                     VALUES ($1, 'acme', 'https://example.com/hook', 'job.failed', 'j', '{}', \
                     $2, $3, $4)",
                )
                .bind(id)
                .bind(status)
                .bind(attempts)
                .bind(chrono::Utc::now())
                .execute(pool)
                .await
                .unwrap();
            });
        }
        with_pool!(&db, pool => migrator.run(pool).await.unwrap());

        let mut statuses: Vec<(String, DeliveryStatus)> =
            outbox::list(&db, None, None, None, None, None, 10)
                .await
                .unwrap()
                .into_iter()
                .map(|delivery| (delivery.id, delivery.status))
                .collect();
        statuses.sort_by(|a, b| a.0.cmp(&b.0));
        let expected = [
            ("done", DeliveryStatus::Delivered),
            ("gave-up", DeliveryStatus::Failed),
            ("never", DeliveryStatus::Pending),
            ("waiting", DeliveryStatus::Retrying),
        ]
        .map(|(id, status)| (id.to_string(), status));
        assert_eq!(statuses, expected, "{folder}");
    }
}
