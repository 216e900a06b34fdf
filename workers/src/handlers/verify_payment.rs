//! Verify-payment: settle what Checkout or a webhook reported (see `shared::payments::settle`),
//! then tell the buyer and follow up. Idempotent on the payment: a redelivery, a second signal
//! or a racing worker finds it settled and does nothing more.

use shared::{
    bookings::changes,
    jobs::{Job, PaymentSignal, Refund, VerifyPayment},
    payments::{
        SettleError,
        settle::{self, Settled},
        webhooks,
    },
};

use crate::context::{JobContext, JobError, RunJob};

impl RunJob for VerifyPayment {
    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let key_secret = ctx.core.settings.razorpay.key_secret.expose();
        let outcome = settle::settle(&ctx.core.db, &ctx.razorpay, key_secret, &self).await;
        let event_id = match &self.signal {
            PaymentSignal::Webhook { event_id } => Some(event_id.as_str()),
            PaymentSignal::Checkout { .. } | PaymentSignal::Reconciliation => None,
        };
        let settled = match outcome {
            Ok(settled) => settled,
            Err(SettleError::Transient(error)) => return Err(JobError::Transient(error)),
            Err(SettleError::Permanent(error)) => {
                if let Some(event_id) = event_id {
                    webhooks::mark_processed(&ctx.core.db, event_id, Some(&error.to_string()))
                        .await?;
                }
                return Err(JobError::Permanent(error));
            }
        };
        match settled {
            Settled::Confirmed {
                booking_id,
                showtime_id,
            } => {
                tracing::info!(%booking_id, "payment captured; booking confirmed");
                changes::bookings_changed(&ctx.core, &[showtime_id], &[], &[booking_id]).await;
            }
            Settled::Refunding {
                booking_id,
                refund_id,
            } => {
                tracing::warn!(%booking_id, %refund_id, "payment captured for a booking that cannot keep it; refunding");
                ctx.core
                    .jobs
                    .publish(&Refund {
                        refund_id,
                        event_id: None,
                    })
                    .await
                    .map_err(|error| JobError::Transient(error.into()))?;
                changes::bookings_changed(&ctx.core, &[], &[], &[booking_id]).await;
            }
            Settled::Failed { booking_id } => {
                tracing::info!(%booking_id, "payment failed; the hold stays as it was");
            }
            Settled::AlreadySettled => {
                tracing::debug!(job = Self::NAME, "already settled");
            }
        }
        if let Some(event_id) = event_id {
            webhooks::mark_processed(&ctx.core.db, event_id, None).await?;
        }
        Ok(())
    }
}
