//! Proving that an account owns its email address.
//!
//! Why it matters: a Google sign-in links to the account with the same email only once that
//! email is proven, so an address somebody registered with a password but never proved cannot
//! be used to take over its real owner's Google sign-in (see [`super::users::upsert_google`]).
//!
//! Shaped like phone codes ([`super::otp`]): the API records a request (limited per account)
//! and enqueues a job; the worker makes the 6-digit code, stores only its HMAC (keyed with
//! `OTP_SECRET`, bound to the request) and mails it. The signed-in owner sends the code back.
//! A request proves the address it was sent to, never one the account changed to afterwards.

use std::time::Duration;

use chrono::Utc;
use sqlx::{PgConnection, PgPool};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{AccountError, Role, otp, users::User};
use crate::{
    config::{EmailVerificationSettings, OtpSettings},
    core::Core,
    jobs::SendEmailVerification,
};

#[derive(Debug, thiserror::Error)]
pub enum VerificationError {
    #[error("this account has no email address")]
    NoEmail,
    #[error("this email address is already verified")]
    AlreadyVerified,
    #[error("a code was sent moments ago; wait before asking again")]
    Cooldown { retry_after: Duration },
    #[error("too many codes were asked for; try again later")]
    TooMany { retry_after: Duration },
    #[error("no code was sent to this address, or it was already used")]
    NoCode,
    #[error("the code has expired; ask for a new one")]
    Expired,
    #[error("too many wrong codes; ask for a new one")]
    Locked,
    #[error("the code is not correct")]
    Wrong { attempts_left: i32 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Records a request for a code to the account's current email, if the limits allow one now.
/// Runs in the caller's transaction, so registration records it with the account.
pub(crate) async fn request(
    conn: &mut PgConnection,
    settings: &EmailVerificationSettings,
    user_id: Uuid,
) -> Result<Uuid, VerificationError> {
    // The account row is locked, so concurrent requests cannot all pass the limits. The
    // cooldown is per address (a new address gets its code at once); the hourly cap is per
    // account, so changing addresses cannot turn it into a mail cannon, and per address.
    let account = sqlx::query!(
        r#"SELECT email, email_verified_at IS NOT NULL AS "verified!",
                  (SELECT max(created_at) FROM email_verifications
                    WHERE user_id = u.id AND email = u.email) AS last_sent,
                  (SELECT min(created_at) FROM email_verifications
                    WHERE user_id = u.id AND created_at > now() - interval '1 hour') AS oldest,
                  (SELECT count(*) FROM email_verifications
                    WHERE user_id = u.id AND created_at > now() - interval '1 hour') AS "count!"
           FROM users u WHERE id = $1 FOR UPDATE"#,
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(VerificationError::NoEmail)?;
    let email = account.email.ok_or(VerificationError::NoEmail)?;
    if account.verified {
        return Err(VerificationError::AlreadyVerified);
    }
    let now = Utc::now();
    let until =
        |moment: chrono::DateTime<Utc>| (moment - now).to_std().unwrap_or(Duration::from_secs(1));
    let hour = chrono::Duration::hours(1);
    if let Some(last) = account.last_sent {
        let ready = last + chrono::Duration::from_std(settings.resend_cooldown).unwrap_or(hour);
        if ready > now {
            return Err(VerificationError::Cooldown {
                retry_after: until(ready),
            });
        }
    }
    if account.count >= i64::from(settings.max_per_user_per_hour) {
        let retry_after = account
            .oldest
            .map_or(Duration::from_secs(3600), |t| until(t + hour));
        return Err(VerificationError::TooMany { retry_after });
    }
    // The same cap per address, across every account: moving an address from account to
    // account must not buy more guesses at its codes (each code allows `max_attempts`). The
    // address is locked so that accounts asking at once cannot all pass.
    let address = sqlx::query!(
        r#"SELECT pg_advisory_xact_lock(hashtextextended('email-verification:' || $1, 0)),
                  (SELECT min(created_at) FROM email_verifications
                    WHERE email = $1 AND created_at > now() - interval '1 hour') AS oldest,
                  (SELECT count(*) FROM email_verifications
                    WHERE email = $1 AND created_at > now() - interval '1 hour') AS "count!""#,
        email
    )
    .fetch_one(&mut *conn)
    .await?;
    if address.count >= i64::from(settings.max_per_user_per_hour) {
        let retry_after = address
            .oldest
            .map_or(Duration::from_secs(3600), |t| until(t + hour));
        return Err(VerificationError::TooMany { retry_after });
    }
    let expires_at = now + chrono::Duration::from_std(settings.ttl).unwrap_or(hour);
    let max_attempts = i32::try_from(settings.max_attempts).unwrap_or(i32::MAX);
    Ok(sqlx::query_scalar!(
        "INSERT INTO email_verifications (user_id, email, expires_at, max_attempts)
         VALUES ($1, $2, $3, $4) RETURNING id",
        user_id,
        email,
        expires_at,
        max_attempts
    )
    .fetch_one(&mut *conn)
    .await?)
}

/// Mails `user_id` a new code for their account's address: the request (limited per account),
/// then its send job.
pub async fn send_code(core: &Core, user_id: Uuid) -> Result<(), AccountError> {
    let mut tx = core.db.begin().await?;
    let id = request(&mut tx, &core.settings.email_verification, user_id).await?;
    tx.commit().await?;
    send(core, id).await
}

/// Queues the mail of request `id`. A request whose job cannot be queued is removed, so it
/// counts against no limit.
pub(crate) async fn send(core: &Core, id: Uuid) -> Result<(), AccountError> {
    let job = SendEmailVerification {
        verification_id: id,
    };
    if let Err(error) = core.jobs.publish(&job).await {
        tracing::error!(%error, "could not enqueue the email verification job");
        discard(&core.db, id).await?;
        return Err(AccountError::Unavailable("sending email"));
    }
    Ok(())
}

/// Checks a mailed code: the account's current email is then verified, and its profile's
/// cached copies go.
pub async fn confirm(core: &Core, user_id: Uuid, code: &str) -> Result<User, AccountError> {
    let verified = verify(&core.db, &core.settings.otp, user_id, code).await?;
    core.profile_changed(user_id).await;
    Ok(verified)
}

/// Removes a request whose job could not be enqueued, so it counts against no limit.
async fn discard(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM email_verifications WHERE id = $1 AND sent_at IS NULL",
        id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// What the send job needs to know about its request.
pub struct PendingMail {
    pub email: String,
    /// Sent already, expired, or the account has moved to another address or proved this one
    /// meanwhile: nothing to send.
    pub moot: bool,
}

pub async fn pending(db: &PgPool, id: Uuid) -> Result<Option<PendingMail>, sqlx::Error> {
    sqlx::query_as!(
        PendingMail,
        r#"SELECT v.email,
                  (v.sent_at IS NOT NULL OR v.expires_at <= now()
                   OR u.email IS DISTINCT FROM v.email OR u.email_verified_at IS NOT NULL) AS "moot!"
           FROM email_verifications v JOIN users u ON u.id = v.user_id
           WHERE v.id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Stores the hash of the code about to be sent (replacing one from an earlier attempt).
pub async fn store_code_hash(db: &PgPool, id: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE email_verifications SET code_hash = $2 WHERE id = $1 AND sent_at IS NULL",
        id,
        hash
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn mark_sent(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE email_verifications SET sent_at = now() WHERE id = $1 AND sent_at IS NULL",
        id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Checks `code` against the latest code sent to the account's current address and, if it
/// matches, marks that address verified. A wrong code counts as an attempt.
async fn verify(
    db: &PgPool,
    secrets: &OtpSettings,
    user_id: Uuid,
    code: &str,
) -> Result<User, VerificationError> {
    let mut tx = db.begin().await?;
    let request = sqlx::query!(
        r#"SELECT v.id, v.email, v.code_hash AS "code_hash!", v.attempts, v.max_attempts,
                  v.expires_at <= now() AS "expired!"
           FROM email_verifications v JOIN users u ON u.id = v.user_id
           WHERE v.user_id = $1 AND v.email = u.email AND v.sent_at IS NOT NULL
             AND v.consumed_at IS NULL
           ORDER BY v.created_at DESC LIMIT 1
           FOR UPDATE OF v"#,
        user_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(VerificationError::NoCode)?;
    if request.expired {
        return Err(VerificationError::Expired);
    }
    if request.attempts >= request.max_attempts {
        return Err(VerificationError::Locked);
    }
    let expected = otp::code_hash(secrets, request.id, code.trim());
    let matches: bool = expected
        .as_bytes()
        .ct_eq(request.code_hash.as_bytes())
        .into();
    if !matches {
        sqlx::query!(
            "UPDATE email_verifications SET attempts = attempts + 1 WHERE id = $1",
            request.id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Err(VerificationError::Wrong {
            attempts_left: request.max_attempts - request.attempts - 1,
        });
    }
    sqlx::query!(
        "UPDATE email_verifications SET consumed_at = now() WHERE id = $1",
        request.id
    )
    .execute(&mut *tx)
    .await?;
    // Only the address the code was sent to, should the account have moved on meanwhile.
    let user = sqlx::query_as!(
        User,
        r#"UPDATE users SET email_verified_at = coalesce(email_verified_at, now()), updated_at = now()
           WHERE id = $1 AND email = $2
           RETURNING id, name, email, email_verified_at IS NOT NULL AS "email_verified!",
                     phone, phone_verified_at IS NOT NULL AS "phone_verified!",
                     role AS "role: Role", created_at"#,
        user_id,
        request.email
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(VerificationError::NoCode)?;
    tx.commit().await?;
    Ok(user)
}
