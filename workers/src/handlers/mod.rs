//! The handlers of the job kinds, one module per kind. Kinds whose capability has not landed
//! yet fail with
//! [`JobError::NotSupported`], which dead-letters the job: it is kept for replay, never
//! dropped, and never reported as done.

mod reserve_seats;
mod send_otp;

use shared::jobs::{Job, Refund, VerifyPayment};

use crate::context::{JobContext, JobError, RunJob};

impl RunJob for VerifyPayment {
    async fn run(self, _ctx: &JobContext) -> Result<(), JobError> {
        Err(JobError::NotSupported(Self::NAME))
    }
}

impl RunJob for Refund {
    async fn run(self, _ctx: &JobContext) -> Result<(), JobError> {
        Err(JobError::NotSupported(Self::NAME))
    }
}
