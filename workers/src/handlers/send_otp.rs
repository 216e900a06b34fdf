//! Send-OTP: make the code, store its hash, text it. Idempotent on the OTP request: once a
//! code was sent, a redelivery does nothing. If the process dies between storing and sending,
//! the redelivery makes and sends a new code, replacing the hash, so the code a buyer receives
//! is always the one that verifies.

use shared::{accounts::otp, jobs::SendOtp, sms::SmsError};

use crate::context::{JobContext, JobError, RunJob};

impl RunJob for SendOtp {
    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let id = self.otp_request_id;
        let Some(pending) = otp::pending(&ctx.core.db, id).await? else {
            // The API removes a request only when it could not enqueue this job.
            tracing::warn!(otp_request_id = %id, "OTP request no longer exists; nothing to send");
            return Ok(());
        };
        if pending.already_sent || pending.expired {
            return Ok(());
        }
        let settings = &ctx.core.settings.otp;
        let code = otp::new_code();
        otp::store_code_hash(&ctx.core.db, id, &otp::code_hash(settings, id, &code)).await?;
        let minutes = settings.ttl.as_secs().div_ceil(60);
        let body = format!(
            "{code} is your BMS sign-in code. It expires in {minutes} minutes. Never share it."
        );
        ctx.sms
            .send(&pending.phone, &body)
            .await
            .map_err(|error| match error {
                SmsError::Refused { .. } => JobError::Permanent(error.into()),
                SmsError::Unavailable(_) => JobError::Transient(error.into()),
            })?;
        otp::mark_sent(&ctx.core.db, id).await?;
        Ok(())
    }
}
