//! `workers` runs every job kind's worker and the cron sweeps until SIGTERM or Ctrl-C.

use std::process::ExitCode;

use shared::{config::Settings, telemetry};
use workers::startup::Application;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("workers: {error}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init("info,sqlx=warn");
    let outcome = async {
        Application::build(settings)
            .await?
            .run_until_stopped(shared::shutdown::signal())
            .await
    };
    match outcome.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("workers: {error:#}");
            ExitCode::FAILURE
        }
    }
}
