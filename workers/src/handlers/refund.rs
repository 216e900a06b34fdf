//! Refund: carry out one refund request through Razorpay (see `shared::payments::refunds`),
//! then tell the buyer and put released seats back on sale. Idempotent on the request: its id
//! is Razorpay's idempotency key, and its outcome is applied once.

use shared::{
    bookings::changes,
    jobs::Refund,
    payments::{
        SettleError,
        refunds::{self, RefundOutcome},
        webhooks,
    },
};

use crate::context::{JobContext, JobError, RunJob};

impl RunJob for Refund {
    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let outcome = match refunds::carry_out(&ctx.core.db, &ctx.razorpay, self.refund_id).await {
            Ok(outcome) => outcome,
            Err(SettleError::Transient(error)) => return Err(JobError::Transient(error)),
            Err(SettleError::Permanent(error)) => {
                if let Some(event_id) = &self.event_id {
                    webhooks::mark_processed(&ctx.core.db, event_id, Some(&error.to_string()))
                        .await?;
                }
                return Err(JobError::Permanent(error));
            }
        };
        match outcome {
            RefundOutcome::Processed {
                booking_id,
                showtime_id,
            } => {
                tracing::info!(refund_id = %self.refund_id, %booking_id, "refund processed");
                changes::bookings_changed(&ctx.core, &[showtime_id], &[], &[booking_id]).await;
            }
            RefundOutcome::Failed { booking_id } => {
                tracing::warn!(refund_id = %self.refund_id, %booking_id, "refund failed");
                changes::bookings_changed(&ctx.core, &[], &[], &[booking_id]).await;
            }
            RefundOutcome::Pending | RefundOutcome::AlreadyDone => {}
        }
        if let Some(event_id) = &self.event_id {
            webhooks::mark_processed(&ctx.core.db, event_id, None).await?;
        }
        Ok(())
    }
}
