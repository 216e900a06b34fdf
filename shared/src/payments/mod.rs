//! Payments through Razorpay: orders for held bookings, verification of what Checkout and
//! webhooks report, captures, refunds and reconciliation.
//!
//! Money moves exactly once however often a signal arrives, because every step is a forward
//! move of a state machine applied under a row lock: a payment only goes CREATED -> AUTHORIZED
//! -> CAPTURED -> REFUNDED (or to FAILED, from which a retried UPI payment may still succeed), a
//! refund REQUESTED -> PENDING -> PROCESSED | FAILED, and the database refuses any other move.
//! A webhook is only a trigger: the worker re-reads the payment or refund from Razorpay and
//! acts on that ([`settle`], [`refunds`]).

pub mod checkout;
pub mod razorpay;
pub mod reconcile;
pub mod refunds;
pub mod settle;
pub mod signature;
pub mod webhooks;

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "payment_status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PaymentStatus {
    Created,
    Authorized,
    Captured,
    Failed,
    Refunded,
}

impl PaymentStatus {
    /// Forward moves only; `payment_transition_allowed` in the schema mirrors this table.
    pub fn can_move_to(self, next: Self) -> bool {
        use PaymentStatus::*;
        self == next
            || matches!(
                (self, next),
                (Created, Authorized | Captured | Failed)
                    | (Authorized, Captured | Failed)
                    | (Failed, Authorized | Captured)
                    | (Captured, Refunded)
            )
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "refund_status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefundStatus {
    Requested,
    Pending,
    Processed,
    Failed,
}

impl RefundStatus {
    /// Statuses no job moves on by itself. A FAILED refund may still become PROCESSED, but only
    /// on Razorpay's word (a webhook, then a read-back).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Processed | Self::Failed)
    }

    /// Forward moves only; `refund_transition_allowed` in the schema mirrors this table.
    /// FAILED -> PROCESSED is forward too: money Razorpay did pay back, though a run of ours
    /// had recorded the refund failed, must show as refunded.
    pub fn can_move_to(self, next: Self) -> bool {
        use RefundStatus::*;
        self == next
            || matches!(
                (self, next),
                (Requested, Pending | Processed | Failed)
                    | (Pending, Processed | Failed)
                    | (Failed, Processed)
            )
    }
}

/// Why a payment or refund job did not finish: worth another attempt, or never going to work.
#[derive(Debug, thiserror::Error)]
pub enum SettleError {
    #[error(transparent)]
    Transient(anyhow::Error),
    #[error(transparent)]
    Permanent(anyhow::Error),
}

impl From<sqlx::Error> for SettleError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(error.into())
    }
}

impl From<razorpay::RazorpayError> for SettleError {
    fn from(error: razorpay::RazorpayError) -> Self {
        match error {
            razorpay::RazorpayError::Unavailable(_) | razorpay::RazorpayError::NotNow { .. } => {
                Self::Transient(error.into())
            }
            razorpay::RazorpayError::Refused { .. } => Self::Permanent(error.into()),
        }
    }
}

/// One entry of a payment's status history: what it became, when, and what said so.
pub(crate) fn history_entry(
    status: PaymentStatus,
    source: &str,
    detail: Option<&str>,
) -> serde_json::Value {
    serde_json::json!({
        "status": status,
        "at": chrono::Utc::now(),
        "source": source,
        "detail": detail,
    })
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::*;

    #[test]
    fn refunds_move_forward_and_a_failure_can_still_turn_out_paid() {
        use super::RefundStatus::*;
        assert!(Requested.can_move_to(Pending) && Pending.can_move_to(Processed));
        assert!(Failed.can_move_to(Processed));
        assert!(!Processed.can_move_to(Failed) && !Failed.can_move_to(Pending));
        assert!(!Processed.can_move_to(Requested));
    }

    #[test]
    fn payments_move_forward_only() {
        assert!(Created.can_move_to(Captured) && Failed.can_move_to(Captured));
        assert!(!Captured.can_move_to(Failed) && !Refunded.can_move_to(Captured));
        assert!(!Captured.can_move_to(Authorized));
    }
}
