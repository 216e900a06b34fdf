//! The PostgreSQL pool and the schema migrations (embedded from `migrations/`).

use std::str::FromStr;

use sqlx::{
    ConnectOptions, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};
use tracing::log::LevelFilter;

use crate::config::DatabaseSettings;

/// Every migration of the schema, compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A pool that connects on first use, so a process can start while Postgres is down and
/// report it through `/health` instead of crashing.
pub fn pool(settings: &DatabaseSettings) -> Result<PgPool, sqlx::Error> {
    // Every statement at TRACE; the slow ones at WARN with their duration. Only the SQL text is
    // logged, never the values bound to it.
    let options = PgConnectOptions::from_str(settings.url.expose())?
        .log_statements(LevelFilter::Trace)
        .log_slow_statements(LevelFilter::Warn, settings.slow_query_threshold);
    Ok(PgPoolOptions::new()
        .max_connections(settings.pool_size)
        .acquire_timeout(settings.connect_timeout)
        .connect_lazy_with(options))
}

/// One connection of its own on the same database, for a background loop that must keep its
/// rhythm when every connection of `pool` is taken by requests (a sale's peak): queued behind
/// them, it would fall late, and its lateness would add load of its own.
pub fn dedicated_connection(pool: &PgPool) -> PgPool {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(pool.options().get_acquire_timeout())
        .connect_lazy_with(pool.connect_options().as_ref().clone())
}

/// Creates the database named in the settings if the server does not have it yet.
pub async fn create_if_missing(settings: &DatabaseSettings) -> Result<(), sqlx::Error> {
    use sqlx::migrate::MigrateDatabase;
    let url = settings.url.expose();
    if !sqlx::Postgres::database_exists(url).await? {
        sqlx::Postgres::create_database(url).await?;
    }
    Ok(())
}

/// Brings the schema up to date. Applying it twice changes nothing the second time.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Whether `error` is a unique violation of the named constraint or index. Lets callers turn
/// the database's own check into a precise answer instead of checking first and racing.
pub fn is_unique_violation(error: &sqlx::Error, constraint: &str) -> bool {
    error.as_database_error().is_some_and(|e| {
        e.kind() == sqlx::error::ErrorKind::UniqueViolation && e.constraint() == Some(constraint)
    })
}

/// Whether `error` means the database could not be reached or dropped the connection (a
/// restart, a failover, a network cut), rather than that the statement was wrong. Callers
/// answer such errors with "try again shortly", never as a bug.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception. 57P01-57P03: the server is shutting down, crashed
        // or not yet accepting connections.
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}
