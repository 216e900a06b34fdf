//! Scheduled sweeps (apalis-cron). Every worker replica runs them on the same schedule, so each
//! sweep is safe to run concurrently with itself: holds are expired with `SKIP LOCKED`, only
//! the replica holding the republisher's lock publishes jobs again (and those are idempotent
//! anyway), and deleting old keys twice deletes nothing more. The schedule does not depend on
//! the broker: while it is away, holds still lapse on time.

use std::collections::BTreeMap;

use apalis::prelude::{BoxDynError, Data, WorkerBuilder};
use apalis_cron::{CronScheduler, Tick};
use futures::FutureExt;
use shared::{
    bookings::{self, changes, claims, create},
    jobs::{
        Job, Refund, ReserveSeats,
        republish::{self, Republisher},
    },
    payments::refunds,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    context::JobContext,
    runtime::{WorkerFuture, cancelled},
};

/// Holds expired per transaction; a sweep keeps going until a batch comes back short.
const EXPIRY_BATCH: i64 = 500;

pub fn hold_expiry(ctx: JobContext, shutdown: CancellationToken) -> anyhow::Result<WorkerFuture> {
    let schedule: cron::Schedule = ctx.core.settings.bookings.hold_sweep_schedule.0.parse()?;
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
    // A failed or panicking sweep is logged and the schedule goes on: the next tick retries,
    // whatever dependency was away.
    let ctx = (*ctx).clone();
    match tokio::spawn(async move { sweep(&ctx).await }).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(error = %format!("{error:#}"), "hold sweep failed; the next tick tries again")
        }
        Err(_) => tracing::error!("hold sweep panicked; the next tick tries again"),
    }
    Ok(())
}

async fn sweep(ctx: &JobContext) -> anyhow::Result<()> {
    let mut total = 0;
    loop {
        let expired = bookings::expire_overdue_holds(&ctx.core.db, EXPIRY_BATCH).await?;
        total += expired.len();
        let released: Vec<Uuid> = expired.iter().map(|hold| hold.booking_id).collect();
        let showtimes: Vec<Uuid> = expired.iter().map(|hold| hold.showtime_id).collect();
        changes::bookings_changed(&ctx.core, &showtimes, &[], &released).await;
        if i64::try_from(expired.len()).unwrap_or(i64::MAX) < EXPIRY_BATCH {
            break;
        }
    }
    if total > 0 {
        tracing::info!(total, "expired holds released");
    }
    republish(ctx).await?;
    create::purge_idempotency_keys(&ctx.core.db).await?;
    republish::purge(&ctx.core.db).await?;
    Ok(())
}

/// Bookings accepted while the broker was unreachable never got their job, and refunds may
/// have lost theirs: publish them again, from one replica at a time (`jobs::republish`).
async fn republish(ctx: &JobContext) -> anyhow::Result<()> {
    let Some(mut leader) = Republisher::try_lead(&ctx.core.db).await? else {
        return Ok(());
    };
    let depths = tokio::time::timeout(std::time::Duration::from_secs(10), ctx.queues.health());
    let waiting: BTreeMap<&'static str, u32> = match depths.await {
        Ok(Ok(queues)) => queues
            .into_iter()
            .map(|queue| (queue.kind, queue.ready))
            .collect(),
        outcome => {
            // The broker is away: nothing can be published this round anyway.
            tracing::debug!(?outcome, "queues not readable; republishing waits");
            leader.release().await;
            return Ok(());
        }
    };
    let after = ctx.core.settings.bookings.republish_pending_after;
    let outcome = async {
        // Those whose publish failed go out now; those that only look stale wait while copies
        // of their kind are still queued.
        let gated = still_queued(&waiting, ReserveSeats::NAME);
        let stale: Vec<Uuid> = create::stale_pending(&ctx.core.db, after, EXPIRY_BATCH)
            .await?
            .into_iter()
            .filter(|stale| stale.never_published || !gated)
            .map(|stale| stale.booking_id)
            .collect();
        let jobs = stale.iter().map(|&booking_id| ReserveSeats {
            booking_id,
            scope: None,
            request: None,
        });
        let sent = publish_all(ctx, jobs).await;
        leader.record(ReserveSeats::NAME, &stale[..sent]).await?;
        if sent > 0 {
            tracing::info!(count = sent, "republished pending bookings");
        }
        republish_accepted(ctx, after, !gated).await;
        if !still_queued(&waiting, Refund::NAME) {
            let open = refunds::stale_open(&ctx.core.db, after, EXPIRY_BATCH).await?;
            let jobs = open.iter().map(|&refund_id| Refund {
                refund_id,
                event_id: None,
            });
            let sent = publish_all(ctx, jobs).await;
            leader.record(Refund::NAME, &open[..sent]).await?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    leader.release().await;
    outcome
}

/// Bookings the API accepted whose row no worker recorded: published again if the broker
/// never confirmed their job (the API died in between), or, once the reservation queues have
/// run dry, if their confirmed job never reached a worker's batch (see `claims`).
async fn republish_accepted(ctx: &JobContext, older_than: std::time::Duration, queues_dry: bool) {
    let mut overdue =
        match claims::unpublished(&ctx.core.redis, older_than, EXPIRY_BATCH as usize).await {
            Ok(overdue) => overdue,
            Err(error) => {
                tracing::debug!(%error, "accepted jobs not readable; republishing waits");
                return;
            }
        };
    if queues_dry {
        match claims::unrecorded(&ctx.core.redis, older_than, EXPIRY_BATCH as usize).await {
            Ok(unrecorded) => overdue.extend(unrecorded),
            Err(error) => tracing::debug!(%error, "accepted jobs not readable; republishing waits"),
        }
    }
    let mut sent = 0;
    let mut dropped = Vec::new();
    for (booking_id, job_json) in overdue {
        let job = job_json.and_then(|json| serde_json::from_str::<ReserveSeats>(&json).ok());
        let Some(job) = job.filter(|job| !outlived_its_claim(job)) else {
            // Recorded meanwhile (its job already gone), unreadable, or older than its claim.
            dropped.push(booking_id);
            continue;
        };
        if let Err(error) = ctx.core.jobs.publish(&job).await {
            tracing::warn!(%error, "could not republish an accepted booking; the next sweep tries again");
            break;
        }
        claims::published(&ctx.core.redis, booking_id).await;
        sent += 1;
    }
    if !dropped.is_empty() {
        tracing::error!(
            booking_ids = ?dropped,
            "accepted bookings given up: their jobs are gone, unreadable, or older than their claim"
        );
        claims::settled(&ctx.core.redis, &dropped).await;
    }
    if sent > 0 {
        tracing::info!(
            count = sent,
            "republished bookings accepted but not recorded"
        );
    }
}

/// A job kept longer than its key's claim is given up: it has been published again for a day
/// and never recorded, so it never will be (its showtime deleted since, say).
fn outlived_its_claim(job: &ReserveSeats) -> bool {
    job.request.as_ref().is_none_or(|request| {
        chrono::Utc::now() - request.accepted_at
            > chrono::Duration::from_std(claims::CLAIM_TTL).unwrap_or(chrono::Duration::MAX)
    })
}

fn still_queued(waiting: &BTreeMap<&'static str, u32>, kind: &str) -> bool {
    waiting.get(kind).is_some_and(|ready| *ready > 0)
}

/// Publishes in order until one fails; how many went out.
async fn publish_all<J: Job>(ctx: &JobContext, jobs: impl Iterator<Item = J>) -> usize {
    let mut sent = 0;
    for job in jobs {
        if let Err(error) = ctx.core.jobs.publish(&job).await {
            tracing::warn!(%error, job = J::NAME, "could not republish; the next sweep tries again");
            break;
        }
        sent += 1;
    }
    sent
}
