//! A fresh Postgres database for one test, dropped when the test ends, whether it passed or
//! panicked. Shared by warble-common's tests and the API's (`api/tests/common/mod.rs`
//! includes this file by path, as test crates cannot depend on each other's helpers).

use std::time::Duration;

/// The server every test database is made on.
fn admin_url() -> String {
    std::env::var("WARBLE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database of its own on the Postgres server of `WARBLE_TEST_POSTGRES_URL` (default: the
/// local `test` database). Dropping it drops the database.
#[derive(Debug)]
pub struct TestDatabase {
    /// Where to connect to it.
    pub url: String,
    name: String,
}

impl TestDatabase {
    /// Makes one. Fails the test, saying how to get a server, when none can be reached.
    pub async fn create() -> Self {
        let admin_url = admin_url();
        let admin = sqlx::postgres::PgPoolOptions::new()
            .acquire_timeout(Duration::from_secs(3))
            .connect(&admin_url)
            .await;
        let admin = admin.unwrap_or_else(|err| {
            super::prerequisite::missing(
                &format!("Postgres (none answers at {admin_url}: {err})"),
                "start PostgreSQL 13+ with a user that may create databases, or set WARBLE_TEST_POSTGRES_URL",
            )
        });
        let name = format!(
            "warble_test_{}",
            ulid::Ulid::generate().to_string().to_lowercase()
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .unwrap();
        admin.close().await;
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        Self {
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for TestDatabase {
    /// `WITH (FORCE)` (Postgres 13+) ends the connections still open on it: pools the test
    /// dropped close theirs in the background, and a process the test started may outlive it.
    /// The test's runtime cannot block on a future here, so a thread with its own does.
    fn drop(&mut self) {
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime
                .block_on(async {
                    use sqlx::Connection;
                    let mut admin = sqlx::PgConnection::connect(&admin_url()).await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut admin)
                    .await?;
                    admin.close().await
                })
                .map_err(|err| err.to_string())
        })
        .join()
        .unwrap_or_else(|_| Err("the thread dropping it panicked".into()));
        if let Err(err) = dropped {
            // A second panic while the test unwinds would abort the whole test binary.
            if std::thread::panicking() {
                eprintln!("test database {} left behind: {err}", self.name);
            } else {
                panic!("test database {} left behind: {err}", self.name);
            }
        }
    }
}
