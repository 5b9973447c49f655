//! The database: SQLite (embedded, the default) or Postgres, chosen by the URL. Holds the job
//! records (`warble_*` tables, our migrations) and apalis's queue tables (its migrations).

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::config::DatabaseArgs;

/// Our own migrations are tracked in their own table: apalis keeps its SQLite migrations in
/// sqlx's default `_sqlx_migrations`, and two migrators sharing a table reject each other's
/// versions as unknown.
const MIGRATIONS_TABLE: &str = "warble_migrations";

/// The first statement of a transaction that checks, then writes, for tenant `$1` (counts its
/// webhook endpoints, looks for a live admin): upserting the tenant's row locks it until the
/// transaction ends (on SQLite, the first write takes the database's write lock), so the same
/// transactions on other connections and replicas wait, and their reads, made after, see this
/// one's writes. Quotas do the same with the key's usage row (`job::insert`).
pub const LOCK_TENANT: &str = "INSERT INTO warble_tenants (tenant) VALUES ($1) \
     ON CONFLICT (tenant) DO UPDATE SET tenant = excluded.tenant";

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL is neither `sqlite:` nor `postgres:`.
    #[error("database URL must start with sqlite:// or postgres://")]
    BadUrl,
    /// A query or connection failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Setting up apalis's tables failed.
    #[error("setting up the queue tables: {0}")]
    Queue(String),
}

impl DbError {
    /// Whether the database is unreachable or overloaded, so that the same request may work
    /// later (503 with `Retry-After`), rather than a fault in the query or the data, which a
    /// retry would meet again (constraint violations, decode errors, a row that is not
    /// there).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Sqlx(err) => unavailable(err),
            Self::BadUrl | Self::Migrate(_) | Self::Queue(_) => false,
        }
    }
}

/// See [`DbError::is_unavailable`]. Database errors are judged by their code: Postgres's
/// SQLSTATE classes 08 (connection), 53 (insufficient resources), 57P01–57P03 (shutting
/// down, starting up), 40001/40P01 (serialization failure, deadlock: try again), and
/// SQLite's primary result codes BUSY, LOCKED, IOERR, FULL and CANTOPEN.
fn unavailable(err: &sqlx::Error) -> bool {
    use sqlx::Error;
    match err {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed
        | Error::BeginFailed => true,
        Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // Extended codes carry the primary one in their low byte.
                let primary = code.parse::<i32>().unwrap_or_default() & 0xff;
                [5, 6, 10, 13, 14].contains(&primary)
            } else {
                code.starts_with("08")
                    || code.starts_with("53")
                    || ["57P01", "57P02", "57P03", "40001", "40P01"].contains(&code.as_ref())
            }
        }
        _ => false,
    }
}

/// A stored name that no variant of the enum read from it has: a row written by a newer
/// version, or by hand. Reading it fails (a decode error of the query) rather than passing
/// for some other state, which would act on a job or delivery as if it were in that state.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    /// What was read, e.g. `job status`.
    pub kind: &'static str,
    /// The stored text.
    pub value: String,
}

/// Implements [`sqlx::Type`] and [`sqlx::Decode`] for `$ty`, read from a text column (on
/// either database) through `$parse`, a `fn(&str) -> Result<$ty, UnknownValue>`: text it
/// refuses fails the query with a decode error naming the column.
macro_rules! decoded_from_text {
    ($ty:ty, $parse:expr) => {
        impl<DB: sqlx::Database> sqlx::Type<DB> for $ty
        where
            str: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <str as sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <str as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $ty
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                let text = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                Ok($parse(text)?)
            }
        }
    };
}
pub(crate) use decoded_from_text;

/// Stores an enum, which lists its variants in `ALL`, as the text of its `as_str()`, and
/// reads it back from that text only: a `parse` that returns [`UnknownValue`] for any other
/// text, and [`decoded_from_text`].
macro_rules! stored_as_text {
    ($ty:ty, $kind:literal) => {
        impl $ty {
            /// The variant stored as `text`.
            pub(crate) fn parse(text: &str) -> Result<Self, $crate::db::UnknownValue> {
                Self::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str() == text)
                    .ok_or_else(|| $crate::db::UnknownValue {
                        kind: $kind,
                        value: text.to_string(),
                    })
            }
        }

        $crate::db::decoded_from_text!($ty, <$ty>::parse);
    };
}
pub(crate) use stored_as_text;

/// A connection pool on one of the two supported databases.
#[derive(Debug, Clone)]
pub enum Database {
    /// Embedded SQLite.
    Sqlite(SqlitePool),
    /// A Postgres server.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds. The same SQL serves both
/// databases (`$1` placeholders, `RETURNING`, `ON CONFLICT` work in each), so every query is
/// written once.
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Database::Sqlite($pool) => $body,
            $crate::db::Database::Postgres($pool) => $body,
        }
    };
}

impl Database {
    /// Connects (creating a SQLite file and its directory if needed). Does not migrate.
    pub async fn connect(args: &DatabaseArgs) -> Result<Self, DbError> {
        let url = args.database_url.as_str();
        let acquire = Duration::from_secs(10);
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL in WAL mode loses no committed transaction on a process crash.
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            if let Some(dir) = options.get_filename().parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(args.database_max_connections.max(1))
                .acquire_timeout(acquire)
                .connect_with(options)
                .await?;
            Ok(Self::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(args.database_max_connections.max(1))
                .acquire_timeout(acquire)
                .connect(url)
                .await?;
            Ok(Self::Postgres(pool))
        } else {
            Err(DbError::BadUrl)
        }
    }

    /// Applies apalis's and our migrations. Safe to run from several processes at once.
    pub async fn migrate(&self) -> Result<(), DbError> {
        let mut ours = match self {
            Self::Sqlite(pool) => {
                apalis_sqlite::SqliteStorage::<()>::setup(pool)
                    .await
                    .map_err(|e| DbError::Queue(e.to_string()))?;
                sqlx::migrate!("../migrations/sqlite")
            }
            Self::Postgres(pool) => {
                apalis_postgres::PostgresStorage::<()>::setup(pool)
                    .await
                    .map_err(|e| DbError::Queue(e.to_string()))?;
                sqlx::migrate!("../migrations/postgres")
            }
        };
        ours.dangerous_set_table_name(MIGRATIONS_TABLE);
        run(&ours, self).await
    }

    /// Checks that the database answers, for readiness probes.
    pub async fn ping(&self) -> Result<(), DbError> {
        with_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// `sqlite` or `postgres`, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

async fn run(migrator: &Migrator, db: &Database) -> Result<(), DbError> {
    with_pool!(db, pool => migrator.run(pool).await?);
    Ok(())
}
