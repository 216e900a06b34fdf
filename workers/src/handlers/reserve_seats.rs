//! Reserve-seats: hold the seats a PENDING booking asked for, or reject it. Idempotent on the
//! booking: a redelivered job finds the booking decided and only announces it again.

use shared::{
    bookings::{
        BookingStatus, availability, lock,
        reserve::{self, Reservation},
        view,
    },
    jobs::ReserveSeats,
};

use crate::context::{JobContext, JobError, RunJob};

impl RunJob for ReserveSeats {
    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let id = self.booking_id;
        let settings = &ctx.settings.bookings;
        let Some((status, scope)) = reserve::lock_scope(&ctx.db, id).await? else {
            tracing::warn!(booking_id = %id, "no such booking; nothing to reserve");
            return Ok(());
        };
        if status != BookingStatus::Pending {
            view::announce(&ctx.db, &ctx.redis, id, settings.status_ttl).await;
            return Ok(());
        }
        let held = lock::acquire(&ctx.redis, &scope, settings).await;
        let outcome = reserve::reserve(&ctx.db, id, settings.hold_duration).await;
        if let Some(lock) = held {
            lock.release().await;
        }
        match outcome? {
            Reservation::Reserved {
                showtime_id,
                expired,
                ..
            } => {
                availability::invalidate(&ctx.redis, showtime_id).await;
                for other in expired {
                    view::announce(&ctx.db, &ctx.redis, other, settings.status_ttl).await;
                }
                tracing::info!(booking_id = %id, "seats reserved");
            }
            Reservation::Rejected { reason, .. } => {
                tracing::info!(booking_id = %id, ?reason, "booking rejected");
            }
            Reservation::AlreadyDecided(_) | Reservation::Missing => {}
        }
        view::announce(&ctx.db, &ctx.redis, id, settings.status_ttl).await;
        Ok(())
    }
}
