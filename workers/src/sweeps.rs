//! Scheduled sweeps (apalis-cron). Every worker replica runs them on the same schedule, so each
//! sweep is safe to run concurrently with itself: holds are expired with `SKIP LOCKED`, a
//! republished reservation or refund is idempotent, and deleting old keys twice deletes
//! nothing more.

use std::collections::BTreeSet;

use apalis::prelude::{BoxDynError, Data, WorkerBuilder};
use apalis_cron::{CronScheduler, Tick};
use futures::FutureExt;
use shared::{
    bookings::{self, availability, create, view},
    jobs::{Refund, ReserveSeats},
    payments::refunds,
};
use tokio_util::sync::CancellationToken;

use crate::{
    context::JobContext,
    runtime::{WorkerFuture, cancelled},
};

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
            .run_until(cancelled(shutdown))
            .await
            .map_err(|error| anyhow::anyhow!("hold expiry sweep stopped: {error}"))
    }
    .boxed())
}

async fn expire_holds(_tick: Tick, ctx: Data<JobContext>) -> Result<(), BoxDynError> {
    let settings = &ctx.settings.bookings;
    let mut showtimes = BTreeSet::new();
    let mut total = 0;
    loop {
        let expired = bookings::expire_overdue_holds(&ctx.db, EXPIRY_BATCH).await?;
        total += expired.len();
        for hold in &expired {
            showtimes.insert(hold.showtime_id);
            view::announce(&ctx.db, &ctx.redis, hold.booking_id, settings.status_ttl).await;
        }
        if i64::try_from(expired.len()).unwrap_or(i64::MAX) < EXPIRY_BATCH {
            break;
        }
    }
    for showtime_id in showtimes {
        availability::invalidate(&ctx.redis, showtime_id).await;
    }
    if total > 0 {
        tracing::info!(total, "expired holds released");
    }
    // Bookings accepted while the broker was unreachable never got their job: send it now.
    let stale =
        create::stale_pending(&ctx.db, settings.republish_pending_after, EXPIRY_BATCH).await?;
    for booking_id in stale {
        if let Err(error) = ctx
            .jobs
            .publish(&ReserveSeats {
                booking_id,
                scope: None,
            })
            .await
        {
            tracing::warn!(%error, "could not republish a pending booking; next sweep tries again");
            break;
        }
        tracing::info!(%booking_id, "republished a pending booking");
    }
    // Refunds whose job was never published, or whose outcome never arrived.
    let open = refunds::stale_open(&ctx.db, settings.republish_pending_after, EXPIRY_BATCH).await?;
    for refund_id in open {
        if let Err(error) = ctx
            .jobs
            .publish(&Refund {
                refund_id,
                event_id: None,
            })
            .await
        {
            tracing::warn!(%error, "could not republish a refund; next sweep tries again");
            break;
        }
    }
    create::purge_idempotency_keys(&ctx.db).await?;
    Ok(())
}
