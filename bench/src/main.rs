//! `flash-sale` stages an on-sale against release builds of the API and workers on this machine
//! and prints what it measured. Settings come from the environment and `.env`, as for the API;
//! each run uses a fresh database on the configured server and drops it afterwards.
//!
//! `cargo build --release -p api -p workers -p bench && target/release/flash-sale --help`

use std::{collections::HashMap, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Stage a flash sale and measure it against the hardware's own limits")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[arg(long, default_value_t = 10_000)]
    seats: u32,
    #[arg(long, default_value_t = 4)]
    sections: u32,
    /// Showtimes on sale at once, each with --seats seats; buyers are dealt out among them.
    #[arg(long, default_value_t = 1)]
    showtimes: u32,
    #[arg(long, default_value_t = 40_000)]
    buyers: u32,
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    #[arg(long, default_value_t = 1)]
    workers: u32,
    /// Share of buyers asking for named seats near the stage.
    #[arg(long, default_value_t = 0.3)]
    named_share: f64,
    #[arg(long, default_value_t = 200)]
    hot_seats: u32,
    /// Seconds after which the booking load stops.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// Seconds each read-path measurement runs.
    #[arg(long, default_value_t = 10)]
    read_seconds: u64,
    /// Directory of the api, workers and flash-sale binaries (default: this binary's).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// Also print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Keep the processes' logs in this directory (with --log-filter as their RUST_LOG).
    #[arg(long)]
    logs: Option<PathBuf>,
    #[arg(long, default_value = "warn,workers::reservations=debug")]
    log_filter: String,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the bare JSON endpoint the read path is compared with (started by the benchmark).
    BareServer {
        #[arg(long)]
        port: u16,
    },
    /// Seed a million sold tickets in a fresh database and print the stats queries' plans.
    StatsPlans,
    /// A sign-in rush: accounts register then sign in from --concurrency clients, with the
    /// configured argon2 cost; prints the API's memory before, at peak and after.
    Logins {
        #[arg(long, default_value_t = 2_000)]
        accounts: u32,
    },
    /// The flash sale while a worker is killed and RabbitMQ, Redis and PostgreSQL restart
    /// under it (this machine's own services: never on a shared machine); fails if a check
    /// fails. See `bench/src/chaos.rs`.
    Chaos,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::StatsPlans) = cli.command {
        let _ = dotenvy::dotenv();
        return match bench::plans::run().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("flash-sale: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(Command::BareServer { port }) = cli.command {
        return match bench::serve_bare(port).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("flash-sale: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    // A missing .env is normal outside development.
    let _ = dotenvy::dotenv();
    let settings: HashMap<String, String> = std::env::vars().collect();
    if let Err(error) = shared::config::Settings::from_map(&settings) {
        eprintln!("flash-sale: {error}");
        return ExitCode::FAILURE;
    }
    let bin_dir = cli.bin_dir.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(PathBuf::from))
            .unwrap_or_default()
    });
    let config = bench::Config {
        seats: cli.seats,
        sections: cli.sections,
        showtimes: cli.showtimes.max(1),
        buyers: cli.buyers,
        concurrency: cli.concurrency,
        workers: cli.workers,
        named_share: cli.named_share,
        hot_seats: cli.hot_seats,
        max_duration: Duration::from_secs(cli.max_seconds),
        read_duration: Duration::from_secs(cli.read_seconds),
        bin_dir,
        settings,
        logs: cli.logs.clone().map(|dir| (dir, cli.log_filter.clone())),
    };
    match cli.command {
        Some(Command::Logins { accounts }) => {
            return finish(bench::logins::run(config, accounts).await, cli.json, |_| {
                true
            });
        }
        Some(Command::Chaos) => {
            return finish(bench::chaos::run(config).await, cli.json, |report| {
                report.failures.is_empty()
            });
        }
        _ => {}
    }
    finish(bench::run(config).await, cli.json, |_| true)
}

/// Prints a run's report (and as JSON with `--json`); fails if the run failed or `passed`
/// says its report does not pass.
fn finish<R: std::fmt::Display + serde::Serialize>(
    outcome: anyhow::Result<R>,
    json: bool,
    passed: impl Fn(&R) -> bool,
) -> ExitCode {
    match outcome {
        Ok(report) => {
            println!("{report}");
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            }
            if passed(&report) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("flash-sale: FAILED: {error:#}");
            ExitCode::FAILURE
        }
    }
}
