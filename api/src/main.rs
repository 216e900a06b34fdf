//! `api` serves the HTTP API; `api migrate` brings the schema up to date; `api demo-data`
//! loads the demo catalogue and admin; `api openapi` prints the OpenAPI document.

use std::process::ExitCode;

use api::startup::Application;
use shared::{
    config::{Environment, Settings},
    telemetry,
};

/// mimalloc gives memory back to the system soon after it is freed. With glibc's allocator a
/// sign-in rush kept hundreds of MiB for good: each argon2 hash allocates its 19 MiB, and
/// glibc's adaptive mmap threshold then keeps serving (and keeping) those sizes from its
/// arenas (BENCHMARKS.md, "A sign-in rush").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    if command.as_deref() == Some("openapi") {
        // Needs no settings: the document describes the routes, not a deployment.
        return match api::startup::document().to_pretty_json() {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("api: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("api: {error}");
            return ExitCode::FAILURE;
        }
    };
    telemetry::init("info,sqlx=warn");
    let outcome = match command.as_deref() {
        None | Some("serve") => serve(settings).await,
        Some("migrate") => migrate(&settings).await,
        Some("demo-data") => demo_data(&settings).await,
        Some(other) => Err(anyhow::anyhow!(
            "unknown command {other:?}; expected serve, migrate, demo-data or openapi"
        )),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("api: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let application = Application::build(settings).await?;
    application
        .run_until_stopped(shared::shutdown::signal())
        .await?;
    Ok(())
}

async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    shared::db::create_if_missing(&settings.database).await?;
    let db = shared::db::pool(&settings.database)?;
    shared::db::migrate(&db).await?;
    println!("migrations applied");
    Ok(())
}

async fn demo_data(settings: &Settings) -> anyhow::Result<()> {
    if settings.environment == Environment::Production {
        anyhow::bail!(
            "refusing to load demo data in production (APP_ENV=production): it creates an \
             admin with a known password"
        );
    }
    let password =
        std::env::var("DEMO_ADMIN_PASSWORD").unwrap_or_else(|_| "demo-admin-password".into());
    let db = shared::db::pool(&settings.database)?;
    let (demo, created) = shared::demo::load(&db, &password).await?;
    if created {
        println!(
            "demo data loaded: {} seats in the on-sale showtime",
            demo.seats
        );
        println!("  admin:  {} / {password}", shared::demo::ADMIN_EMAIL);
    } else {
        println!(
            "demo data was already loaded ({} seats in the venue)",
            demo.seats
        );
        println!(
            "  admin:  {} (password as set when first loaded)",
            shared::demo::ADMIN_EMAIL
        );
    }
    println!("  venue:              {}", demo.venue_id);
    println!("  show:               {}", demo.show_id);
    println!("  showtime (on sale): {}", demo.on_sale_showtime_id);
    println!("  showtime (draft):   {}", demo.draft_showtime_id);
    Ok(())
}
