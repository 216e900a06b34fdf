//! Background jobs: the typed contract between the producers (API, webhooks, other jobs) and
//! the workers that consume them.
//!
//! A job kind is a payload type implementing [`Job`]. Its `NAME` names its queue, so producer
//! and consumer meet through [`QueueTopology`], the one place queue names and arguments are
//! made. Delivery is at least once: every handler is idempotent on [`Job::idempotency_key`].

pub mod admin;
mod kinds;
mod publisher;
pub mod republish;
mod topology;

use serde::{Serialize, de::DeserializeOwned};

pub use kinds::{
    NewBooking, PaymentSignal, Refund, ReservationScope, ReserveSeats, SendEmailVerification,
    SendOtp, VerifyPayment,
};
pub use publisher::{JobPublisher, PublishError};
pub use topology::QueueTopology;

/// A kind of background job. The payload is the message body, as JSON.
pub trait Job: Serialize + DeserializeOwned + Clone + Send + Sync + Unpin + 'static {
    /// Stable name of the kind; it names the queue, so renaming it strands queued jobs.
    const NAME: &'static str;

    /// Whether the kind also has partition queues, fed through a consistent-hash exchange by
    /// [`Job::partition_key`], so that jobs with the same key meet in one worker process.
    const PARTITIONED: bool = false;

    /// Two deliveries with the same key are the same piece of work.
    fn idempotency_key(&self) -> String;

    /// For a partitioned kind: the key the exchange hashes to choose the job's partition.
    /// `None` sends the job to the kind's plain queue, which every worker consumes.
    fn partition_key(&self) -> Option<String> {
        None
    }
}
