//! Reserve-seats: record the booking if the API accepted it without a row, then hold the seats
//! it asks for, or reject it. The booking joins its scope's next batch (see `reservations`),
//! which records, decides and announces it. Idempotent on the booking: a redelivered job finds
//! the booking recorded and decided, and the batch announces it again.

use shared::{bookings::reserve, jobs::ReserveSeats};

use crate::context::{JobContext, JobError, RunJob};

impl RunJob for ReserveSeats {
    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let id = self.booking_id;
        let scope = match self.scope {
            Some(scope) => scope,
            None => match reserve::lock_scope(&ctx.core.db, id).await? {
                Some(scope) => scope,
                None => {
                    tracing::warn!(booking_id = %id, "no such booking; nothing to reserve");
                    return Ok(());
                }
            },
        };
        let outcome = ctx
            .reservations
            .reserve(ctx, &scope.lock_name(), id, self.request)
            .await?;
        tracing::debug!(booking_id = %id, ?outcome, "reservation decided");
        Ok(())
    }
}
