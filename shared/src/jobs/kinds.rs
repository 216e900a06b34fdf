//! The payloads of the job kinds the system runs. They carry ids, not data: the handler reads
//! the current state from Postgres, so a late or repeated delivery acts on the truth.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Job;
use crate::bookings::SeatSelection;

/// Hold the seats a booking asks for, or reject it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReserveSeats {
    pub booking_id: Uuid,
    /// Where the booking is, so the worker knows which lock and batch it joins without a
    /// query. Absent, the worker looks it up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ReservationScope>,
    /// The request itself, when the API accepted it without writing it to Postgres (the
    /// steady state): the worker records the booking in the transaction that decides it.
    /// Absent, the booking is already a PENDING row (accepted while Redis or the broker was
    /// away, made by an admin, or published again by the sweep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<NewBooking>,
}

/// A booking request as the API accepted it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewBooking {
    pub user_id: Uuid,
    pub showtime_id: Uuid,
    pub selection: SeatSelection,
    pub idempotency_key: String,
    /// Of the request's showtime and seats: a booking is recorded only if its key was not
    /// used for another request.
    pub fingerprint: String,
    pub accepted_at: DateTime<Utc>,
}

/// The showtime of a booking, and its section when it asks for best available.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReservationScope {
    pub showtime_id: Uuid,
    pub section_id: Option<Uuid>,
}

impl ReservationScope {
    /// The name of the lock (and batch) a reservation takes.
    pub fn lock_name(&self) -> String {
        match self.section_id {
            Some(section_id) => format!("showtime:{}:section:{section_id}", self.showtime_id),
            None => format!("showtime:{}", self.showtime_id),
        }
    }
}

impl Job for ReserveSeats {
    const NAME: &'static str = "reserve-seats";
    /// Jobs of one lock scope go to one partition, so one worker process batches them all and
    /// takes the scope's lock once per batch, instead of two processes taking turns at it.
    const PARTITIONED: bool = true;

    fn idempotency_key(&self) -> String {
        self.booking_id.to_string()
    }

    fn partition_key(&self) -> Option<String> {
        self.scope.as_ref().map(ReservationScope::lock_name)
    }
}

/// How we learnt that a payment may have been made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum PaymentSignal {
    /// The buyer's client returned from checkout with the provider's signature.
    Checkout { signature: String },
    /// The provider told us through a webhook event we stored.
    Webhook { event_id: String },
    /// An admin asked Razorpay what was paid against the order (a missed webhook).
    Reconciliation,
}

/// Confirm (or fail) a payment, and the booking it pays for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyPayment {
    pub provider_order_id: String,
    pub provider_payment_id: String,
    pub signal: PaymentSignal,
}

impl Job for VerifyPayment {
    const NAME: &'static str = "verify-payment";

    fn idempotency_key(&self) -> String {
        self.provider_payment_id.clone()
    }
}

/// Ask the provider to carry out a refund request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refund {
    pub refund_id: Uuid,
    /// The webhook event that asked for this run, marked applied when it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

impl Job for Refund {
    const NAME: &'static str = "refund";

    fn idempotency_key(&self) -> String {
        self.refund_id.to_string()
    }
}

/// Make, send and record the code of one OTP request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOtp {
    pub otp_request_id: Uuid,
}

impl Job for SendOtp {
    const NAME: &'static str = "send-otp";

    fn idempotency_key(&self) -> String {
        self.otp_request_id.to_string()
    }
}

/// Make, mail and record the code of one email verification request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendEmailVerification {
    pub verification_id: Uuid,
}

impl Job for SendEmailVerification {
    const NAME: &'static str = "send-email-verification";

    fn idempotency_key(&self) -> String {
        self.verification_id.to_string()
    }
}
