//! Scheduled sweeps (apalis-cron). Every worker replica runs them on the same schedule, so each
//! sweep is safe to run concurrently with itself: see `shared::bookings::expire_overdue_holds`.

use apalis::prelude::{BoxDynError, Data, WorkerBuilder};
use apalis_cron::{CronScheduler, Tick};
use futures::FutureExt;
use tokio_util::sync::CancellationToken;

use crate::{context::JobContext, runtime::WorkerFuture};

/// Holds expired per transaction; a sweep keeps going until a batch comes back short.
const EXPIRY_BATCH: i64 = 500;

pub fn hold_expiry(ctx: JobContext, shutdown: CancellationToken) -> anyhow::Result<WorkerFuture> {
    let schedule: cron::Schedule = ctx.settings.bookings.hold_sweep_schedule.0.parse()?;
    let worker = WorkerBuilder::new("hold-expiry-sweep")
        .backend(CronScheduler::new(schedule))
        .data(ctx)
        .build(expire_holds);
    Ok(async move {
        worker
            .run_until(async move {
                shutdown.cancelled().await;
                Ok::<(), std::io::Error>(())
            })
            .await
            .map_err(|error| anyhow::anyhow!("hold expiry sweep stopped: {error}"))
    }
    .boxed())
}

async fn expire_holds(_tick: Tick, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let mut total = 0;
    loop {
        let expired = shared::bookings::expire_overdue_holds(&ctx.db, EXPIRY_BATCH).await?;
        total += expired.len();
        for hold in &expired {
            tracing::info!(booking_id = %hold.booking_id, showtime_id = %hold.showtime_id, "hold expired");
        }
        if i64::try_from(expired.len()).unwrap_or(i64::MAX) < EXPIRY_BATCH {
            break;
        }
    }
    if total > 0 {
        tracing::info!(total, "hold expiry sweep done");
    }
    Ok(())
}
