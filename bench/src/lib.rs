//! The flash-sale benchmark: stages an on-sale against real API and worker processes on this
//! machine, measures it, checks the invariants afterwards, and measures in the same run the
//! limits it is compared with (the database's single-seat conditional UPDATE, and a bare axum
//! JSON endpoint).
//!
//! Everything runs on loopback and every loop is bounded in count and in time.

pub mod chaos;
mod load;
pub mod logins;
pub mod plans;
mod processes;
mod raw;
mod reads;
mod report;
mod stages;

use std::{collections::HashMap, path::PathBuf, time::Duration};

use anyhow::Context;
use shared::config::Settings;
use sqlx::{Connection, PgConnection};
use test_support::fixtures;
use url::Url;

pub use processes::serve_bare;
pub use report::Report;

/// One benchmark run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seats in the showtime (S).
    pub seats: u32,
    /// Sections the seats are spread over.
    pub sections: u32,
    /// Showtimes on sale at once, each with `seats` seats; buyer `i` books showtime `i % K`.
    pub showtimes: u32,
    /// Buyers, each submitting one booking (B).
    pub buyers: u32,
    /// Buyers in flight at once (C).
    pub concurrency: usize,
    /// Worker processes.
    pub workers: u32,
    /// Share of buyers asking for named seats in the hot spot; the rest ask best-available.
    pub named_share: f64,
    /// The hot spot: the first this-many seats of the front section.
    pub hot_seats: u32,
    /// The booking load stops after this long, finished or not.
    pub max_duration: Duration,
    /// How long each read-path measurement runs.
    pub read_duration: Duration,
    /// Where the `api` and `workers` binaries are.
    pub bin_dir: PathBuf,
    /// Settings for the processes (the database is replaced by a fresh one per run).
    pub settings: HashMap<String, String>,
    /// Where the processes' logs go (their stdout), with `RUST_LOG` for them; `None` discards.
    pub logs: Option<(PathBuf, String)>,
}

/// A fresh database (migrated), Redis and queue prefixes and the settings of one run: the
/// processes' settings and a pool on that database.
async fn prepare(config: &Config) -> anyhow::Result<(HashMap<String, String>, sqlx::PgPool)> {
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
    let mut values = config.settings.clone();
    let database_url = fresh_database(&values["DATABASE_URL"], &run_id).await?;
    values.insert("DATABASE_URL".into(), database_url);
    values.insert("REDIS_KEY_PREFIX".into(), format!("bench-{run_id}"));
    values.insert("RABBITMQ_QUEUE_PREFIX".into(), format!("bench-{run_id}"));
    values.insert("RABBITMQ_QUEUE_EXPIRES".into(), "10m".into());
    // No hold may lapse during the run: expiries would muddle the counts.
    values.insert("HOLD_DURATION".into(), "2h".into());
    values.insert("MAX_SEATS_PER_BOOKING".into(), "10".into());
    values.insert("LOG_FORMAT".into(), "json".into());
    let filter = config
        .logs
        .as_ref()
        .map_or("warn", |(_, filter)| filter.as_str());
    values.insert("RUST_LOG".into(), filter.into());
    let settings = Settings::from_map(&values).context("benchmark settings")?;
    let db = shared::db::pool(&settings.database)?;
    shared::db::migrate(&db).await?;
    Ok((values, db))
}

/// Runs the whole benchmark and returns its report. Fails if an invariant breaks.
pub async fn run(config: Config) -> anyhow::Result<Report> {
    let (values, db) = prepare(&config).await?;
    let settings = Settings::from_map(&values).context("benchmark settings")?;

    let layout = layout(config.seats, config.sections);
    let mut showtimes = Vec::new();
    for _ in 0..config.showtimes.max(1) {
        showtimes.push(fixtures::showtime_on_sale(&db, &layout).await);
    }
    let raw_showtime = fixtures::showtime_on_sale(&db, &layout).await;
    let buyers = fixtures::buyers(&db, &settings, config.buyers as usize).await;

    let raw = raw::single_seat_updates(&db, &raw_showtime, config.concurrency).await?;

    let stack = processes::Stack::start(&config, &values).await?;
    let load = load::flash_sale(&config, &stack.api_url, &showtimes, &buyers).await;
    let mut invariants = test_support::invariants::SaleInvariants::default();
    for showtime in &showtimes {
        let sale = test_support::invariants::check_sale(&db, showtime.showtime_id)
            .await
            .map_err(|broken| anyhow::anyhow!("invariant broken: {broken}"))?;
        invariants.seats += sale.seats;
        invariants.held += sale.held;
        invariants.sold += sale.sold;
        invariants.free += sale.free;
    }
    let stages = stages::breakdown(&db, &load.moments).await?;
    let reads = reads::measure(&config, &stack, &showtimes[0], &load.decided).await?;
    let memory = stack.peak_memory();
    stack.stop().await;
    drop_database(&values["DATABASE_URL"]).await;

    Ok(Report::new(
        &config, raw, load, reads, memory, invariants, stages,
    ))
}

/// An HTTP client that keeps a connection per buyer in flight.
fn client(concurrency: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}

/// Sections of equal size, rows of at most 50 seats.
fn layout(seats: u32, sections: u32) -> Vec<(i32, i32)> {
    let per_section = (seats / sections.max(1)).max(1);
    let per_row = per_section.min(50);
    let rows = per_section.div_ceil(per_row);
    // Whole rows: the total may round up slightly; the report uses the real count.
    vec![(rows as i32, per_row as i32); sections.max(1) as usize]
}

async fn fresh_database(url: &str, run_id: &str) -> anyhow::Result<String> {
    let mut server: Url = url.parse()?;
    let name = format!("bms_bench_{run_id}");
    server.set_path("/postgres");
    let mut conn = PgConnection::connect(server.as_str()).await?;
    sqlx::query(&format!(r#"CREATE DATABASE "{name}""#))
        .execute(&mut conn)
        .await?;
    server.set_path(&format!("/{name}"));
    Ok(server.to_string())
}

async fn drop_database(url: &str) {
    let Ok(mut server) = url.parse::<Url>() else {
        return;
    };
    let name = server.path().trim_start_matches('/').to_owned();
    server.set_path("/postgres");
    if let Ok(mut conn) = PgConnection::connect(server.as_str()).await {
        let _ = sqlx::query(&format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#))
            .execute(&mut conn)
            .await;
    }
}
