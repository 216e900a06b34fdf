//! Batching reservations: in each worker process, one task per lock scope (a showtime for named
//! seats, a section for best available) takes every reservation job waiting for that scope,
//! takes the scope's Redis lock once, and decides them all in one transaction
//! (`shared::bookings::reserve::reserve_batch`). Under load a batch holds hundreds of bookings,
//! and a commit, a lock and each round trip are paid once for all of them; when it is quiet a
//! batch holds one, and nothing waits.
//!
//! A scope's task stops after a quiet minute. A job whose request reaches a stopping task gets
//! no answer and fails transiently, so it is retried: nothing is lost.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use shared::{
    bookings::{
        RejectReason, changes, claims, lock,
        reserve::{self, Reservation},
    },
    jobs::NewBooking,
};
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::context::{JobContext, JobError};

/// Most bookings decided in one transaction.
const MAX_BATCH: usize = 256;
const IDLE_AFTER: Duration = Duration::from_secs(60);

struct Request {
    booking_id: Uuid,
    /// The request, for a booking the API accepted without a row: the batch records it.
    new: Option<NewBooking>,
    reply: oneshot::Sender<Result<Reservation, BatchFailed>>,
}

/// Why a batch was not decided, shared by every job in it.
#[derive(Clone)]
struct BatchFailed {
    message: String,
    /// The database was unreachable: the jobs wait for it instead of spending attempts.
    outage: bool,
}

pub struct ReservationBatcher {
    scopes: Mutex<HashMap<String, mpsc::Sender<Request>>>,
    /// Jobs the process works on at once, whichever queue or partition they came from.
    slots: Semaphore,
}

impl ReservationBatcher {
    /// A batcher deciding at most `slots` reservations at once (`WORKER_CONCURRENCY_RESERVE_SEATS`).
    pub fn new(slots: usize) -> Self {
        Self {
            scopes: Mutex::default(),
            slots: Semaphore::new(slots),
        }
    }

    /// Queues `booking_id` (with its request, if it has no row yet) on its scope and waits for
    /// its batch to be decided.
    pub async fn reserve(
        &self,
        ctx: &JobContext,
        scope: &str,
        booking_id: Uuid,
        new: Option<NewBooking>,
    ) -> Result<Reservation, JobError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| JobError::Transient(anyhow::anyhow!("reservation slots closed")))?;
        let (reply, answer) = oneshot::channel();
        let sender = self.sender(ctx, scope);
        sender
            .send(Request {
                booking_id,
                new,
                reply,
            })
            .await
            .map_err(|_| JobError::Transient(anyhow::anyhow!("reservation queue closed")))?;
        answer
            .await
            .map_err(|_| JobError::Transient(anyhow::anyhow!("reservation batch abandoned")))?
            .map_err(|failed| {
                JobError::Transient(if failed.outage {
                    sqlx::Error::Io(std::io::Error::other(failed.message)).into()
                } else {
                    anyhow::anyhow!(failed.message)
                })
            })
    }

    fn sender(&self, ctx: &JobContext, scope: &str) -> mpsc::Sender<Request> {
        let Ok(mut scopes) = self.scopes.lock() else {
            // A poisoned map: serve this request on a task of its own.
            return spawn_scope(ctx.clone(), scope.to_owned());
        };
        match scopes.get(scope) {
            Some(sender) if !sender.is_closed() => sender.clone(),
            _ => {
                // Scopes whose task stopped after a quiet minute are forgotten.
                scopes.retain(|_, sender| !sender.is_closed());
                let sender = spawn_scope(ctx.clone(), scope.to_owned());
                scopes.insert(scope.to_owned(), sender.clone());
                sender
            }
        }
    }
}

fn spawn_scope(ctx: JobContext, scope: String) -> mpsc::Sender<Request> {
    let (sender, receiver) = mpsc::channel(MAX_BATCH * 4);
    tokio::spawn(run_scope(ctx, scope, receiver));
    sender
}

async fn run_scope(ctx: JobContext, scope: String, mut requests: mpsc::Receiver<Request>) {
    let settings = &ctx.core.settings.bookings;
    // While the scope is known to have no free seat, its requests are turned away without
    // reading seats: SOLD_OUT for a section's best available, SEAT_TAKEN for named seats.
    let full_reason = if scope.contains(":section:") {
        RejectReason::SoldOut
    } else {
        RejectReason::SeatTaken
    };
    let mut full_until: Option<chrono::DateTime<chrono::Utc>> = None;
    loop {
        let Ok(Some(first)) = tokio::time::timeout(IDLE_AFTER, requests.recv()).await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let ids: Vec<Uuid> = batch.iter().map(|r| r.booking_id).collect();
        let requests: Vec<(Uuid, Option<NewBooking>)> = batch
            .iter_mut()
            .map(|r| (r.booking_id, r.new.take()))
            .collect();
        let started = Instant::now();
        let held = lock::acquire(&ctx.core.redis, &scope, settings).await;
        let locked = Instant::now();
        metrics::histogram!("reservation_lock_wait_seconds")
            .record((locked - started).as_secs_f64());
        let sold_out = full_until.is_some_and(|until| until > chrono::Utc::now());
        let decided = reserve::reserve_batch(
            &ctx.core.db,
            &requests,
            settings.hold_duration,
            sold_out.then_some(full_reason),
        )
        .await;
        let committed = Instant::now();
        if let Some(lock) = held {
            lock.release().await;
        }
        match decided {
            Ok(decisions) => {
                // Their rows are committed: the API's copies of their jobs are no longer needed.
                let recorded: Vec<Uuid> = requests
                    .iter()
                    .filter(|(_, request)| request.is_some())
                    .map(|(id, _)| *id)
                    .collect();
                claims::settled(&ctx.core.redis, &recorded).await;
                if !sold_out {
                    full_until = match full_reason {
                        RejectReason::SoldOut => {
                            decisions.sold_out.first().map(|(_, until)| *until)
                        }
                        _ => decisions.full_until,
                    };
                }
                let mut outcomes: HashMap<Uuid, Reservation> =
                    decisions.outcomes.into_iter().collect();
                // Announced before the jobs are answered (and acknowledged), so a status is never
                // lost to a crash between the two. Rejections come with their views; the rest
                // are read.
                let announced: std::collections::HashSet<Uuid> =
                    decisions.rejected.iter().map(|view| view.id).collect();
                let mut changed: Vec<Uuid> = ids
                    .iter()
                    .filter(|id| !announced.contains(id))
                    .copied()
                    .collect();
                changed.extend(decisions.expired);
                let showtimes: Vec<Uuid> = decisions.showtimes.iter().copied().collect();
                changes::bookings_changed(&ctx.core, &showtimes, &decisions.rejected, &changed)
                    .await;
                tracing::debug!(
                    scope,
                    batch = ids.len(),
                    sold_out,
                    lock_ms = (locked - started).as_secs_f64() * 1000.0,
                    transaction_ms = (committed - locked).as_secs_f64() * 1000.0,
                    announce_ms = committed.elapsed().as_secs_f64() * 1000.0,
                    "reservation batch"
                );
                for request in batch {
                    let outcome = outcomes
                        .remove(&request.booking_id)
                        .unwrap_or(Reservation::Missing);
                    count_reservation(&outcome);
                    let _ = request.reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                tracing::warn!(%error, scope, batch = ids.len(), "reservation batch failed");
                let failed = BatchFailed {
                    message: error.to_string(),
                    outage: shared::db::is_unavailable(&error),
                };
                for request in batch {
                    let _ = request.reply.send(Err(failed.clone()));
                }
            }
        }
    }
}

fn count_reservation(outcome: &Reservation) {
    match outcome {
        Reservation::Reserved { .. } => {
            metrics::counter!("reservations_total", "outcome" => "reserved").increment(1);
        }
        Reservation::Rejected { reason, .. } => {
            let reason = format!("{reason:?}");
            metrics::counter!("reservations_total", "outcome" => "rejected", "reason" => reason)
                .increment(1);
        }
        Reservation::AlreadyDecided(_) | Reservation::Missing => {}
    }
}

/// The context's batcher, shared by every reserve-seats job of the process.
pub type SharedBatcher = Arc<ReservationBatcher>;
