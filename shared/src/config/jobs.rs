//! The workers: attempts and backoff, concurrency per job kind, and their HTTP port.

use std::time::Duration;

use super::{
    SettingsError,
    reader::{Reader, positive},
    values::HumanDuration,
};

#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Attempts in one worker before a job is dead-lettered (the first run included).
    pub max_attempts: u32,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub concurrency: JobConcurrency,
    /// Where a worker process serves `/metrics` and `/health` (0: any free port).
    pub http_port: u16,
}

/// Jobs of each kind one worker process runs at once.
#[derive(Debug, Clone, Copy)]
pub struct JobConcurrency {
    pub reserve_seats: u16,
    pub verify_payment: u16,
    pub refund: u16,
    pub send_otp: u16,
    pub send_email_verification: u16,
}

impl JobSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let jobs = JobSettings {
            max_attempts: env.or_with("JOB_MAX_ATTEMPTS", 5, positive)?,
            backoff_min: env
                .or("JOB_BACKOFF_MIN", HumanDuration(Duration::from_millis(200)))?
                .0,
            backoff_max: env
                .or("JOB_BACKOFF_MAX", HumanDuration(Duration::from_secs(30)))?
                .0,
            concurrency: JobConcurrency {
                reserve_seats: env.or_with("WORKER_CONCURRENCY_RESERVE_SEATS", 256, positive)?,
                verify_payment: env.or_with("WORKER_CONCURRENCY_VERIFY_PAYMENT", 16, positive)?,
                refund: env.or_with("WORKER_CONCURRENCY_REFUND", 4, positive)?,
                send_otp: env.or_with("WORKER_CONCURRENCY_SEND_OTP", 8, positive)?,
                send_email_verification: env.or_with(
                    "WORKER_CONCURRENCY_SEND_EMAIL_VERIFICATION",
                    8,
                    positive,
                )?,
            },
            http_port: env.or("WORKERS_HTTP_PORT", 9100)?,
        };
        if jobs.backoff_min > jobs.backoff_max {
            return Err(SettingsError::Malformed {
                name: "JOB_BACKOFF_MIN",
                reason: "must not be longer than JOB_BACKOFF_MAX".into(),
            });
        }
        Ok(jobs)
    }
}
