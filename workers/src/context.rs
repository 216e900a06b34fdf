//! What a job handler can reach, and how it reports failure.

use shared::{
    config::Settings,
    core::Core,
    jobs::{Job, admin::QueueAdmin},
    mail::MailClient,
    payments::razorpay::Razorpay,
    sms::SmsClient,
};

use crate::reservations::{ReservationBatcher, SharedBatcher};

#[derive(Clone)]
pub struct JobContext {
    /// The stores, the job publisher, the caches and the settings, as every use case of
    /// `shared` takes them.
    pub core: Core,
    /// Queue depths, so the sweep does not republish over copies still waiting.
    pub queues: QueueAdmin,
    pub sms: SmsClient,
    pub mail: MailClient,
    pub razorpay: Razorpay,
    /// Groups reserve-seats jobs of one scope into one transaction.
    pub reservations: SharedBatcher,
}

impl JobContext {
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().build()?;
        Ok(Self {
            queues: QueueAdmin::new(&settings.rabbitmq),
            sms: SmsClient::new(&settings.twilio, http.clone()),
            mail: MailClient::new(&settings.sendgrid, http.clone()),
            razorpay: Razorpay::new(&settings.razorpay, http),
            reservations: SharedBatcher::new(ReservationBatcher::new(usize::from(
                settings.jobs.concurrency.reserve_seats,
            ))),
            core: Core::new(settings)?,
        })
    }
}

/// Why a job did not complete. The variant decides between another attempt and the
/// dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Might work next time (a dependency hiccup): retried with backoff.
    #[error(transparent)]
    Transient(anyhow::Error),
    /// Will never work as it stands (bad payload, broken invariant): dead-lettered at once.
    #[error(transparent)]
    Permanent(anyhow::Error),
}

impl JobError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transient(_))
    }

    /// Whether this failure is a dependency being away (the database or Redis unreachable),
    /// which is waited out rather than counted as a failed attempt.
    pub fn is_outage(&self) -> bool {
        match self {
            Self::Transient(error) => error
                .chain()
                .any(|cause| shared::health::outage(cause).is_some()),
            Self::Permanent(_) => false,
        }
    }
}

impl From<sqlx::Error> for JobError {
    fn from(error: sqlx::Error) -> Self {
        Self::Transient(error.into())
    }
}

/// The work behind a job kind. Every implementation is idempotent on the job's
/// idempotency key, because delivery is at least once.
pub trait RunJob: Job {
    fn run(self, ctx: &JobContext) -> impl Future<Output = Result<(), JobError>> + Send;
}
