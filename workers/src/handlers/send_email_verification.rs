//! Send-email-verification: make the code, store its hash, mail it. Idempotent on the request:
//! once its code was sent, or once the account moved to another address or proved this one, a
//! delivery does nothing. If the process dies between storing and sending, the redelivery makes
//! and mails a new code, replacing the hash, so the code the owner receives is the one that
//! verifies.

use shared::{
    accounts::{email_verification, otp},
    jobs::SendEmailVerification,
    mail::{Mail, MailError},
};

use crate::context::{JobContext, JobError, RunJob};

impl RunJob for SendEmailVerification {
    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        let id = self.verification_id;
        let Some(pending) = email_verification::pending(&ctx.core.db, id).await? else {
            // The API removes a request only when it could not enqueue this job.
            tracing::warn!(verification_id = %id, "verification request no longer exists; nothing to send");
            return Ok(());
        };
        if pending.moot {
            return Ok(());
        }
        let code = otp::new_code();
        let hash = otp::code_hash(&ctx.core.settings.otp, id, &code);
        email_verification::store_code_hash(&ctx.core.db, id, &hash).await?;
        let minutes = ctx
            .core
            .settings
            .email_verification
            .ttl
            .as_secs()
            .div_ceil(60);
        let text = format!(
            "{code} is your BMS email verification code. It expires in {minutes} minutes.\n\n\
             If you did not create a BMS account with this address, ignore this message: \
             nobody can use the account without this code."
        );
        let mail = Mail {
            to: &pending.email,
            subject: "Your BMS verification code",
            text: &text,
        };
        ctx.mail.send(&mail).await.map_err(|error| match error {
            MailError::Refused { .. } => JobError::Permanent(error.into()),
            MailError::Unavailable(_) => JobError::Transient(error.into()),
        })?;
        email_verification::mark_sent(&ctx.core.db, id).await?;
        Ok(())
    }
}
