//! Phone sign-in codes.
//!
//! The API records a request (rate-limited per phone and per client IP) and enqueues a send-OTP
//! job. The worker makes the 6-digit code, stores its HMAC, then sends it: the code itself is
//! never stored nor queued. Verification allows a fixed number of wrong tries per code.

use std::{net::IpAddr, time::Duration};

use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::{AccountError, PhoneNumber};
use crate::{config::OtpSettings, core::Core, jobs::SendOtp};

#[derive(Debug, thiserror::Error)]
pub enum OtpError {
    #[error("a code was sent moments ago; wait before asking again")]
    Cooldown { retry_after: Duration },
    #[error("too many codes were asked for; try again later")]
    TooMany { retry_after: Duration },
    #[error("no code was sent to this number, or it was already used")]
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

/// Records a request for a code to `phone`, if the limits allow one now.
async fn create_request(
    db: &PgPool,
    settings: &OtpSettings,
    phone: &PhoneNumber,
    ip: Option<IpAddr>,
) -> Result<Uuid, OtpError> {
    // Caps count a client's address group (an IPv6 /64 as one), and store the address itself.
    let ip_group = ip.map(crate::client_address::limit_group);
    let ip = ip.map(|ip| ip.to_string());
    let mut tx = db.begin().await?;
    // One request per phone at a time, so concurrent requests cannot all pass the limits.
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        phone.as_str()
    )
    .execute(&mut *tx)
    .await?;
    let usage = sqlx::query!(
        r#"SELECT
             (SELECT max(created_at) FROM otp_requests WHERE phone = $1) AS last_sent,
             (SELECT min(created_at) FROM otp_requests
               WHERE phone = $1 AND created_at > now() - interval '1 hour') AS phone_oldest,
             (SELECT count(*) FROM otp_requests
               WHERE phone = $1 AND created_at > now() - interval '1 hour') AS "phone_count!",
             (SELECT min(created_at) FROM otp_requests
               WHERE requester_ip <<= $2::text::inet AND created_at > now() - interval '1 hour') AS ip_oldest,
             (SELECT count(*) FROM otp_requests
               WHERE requester_ip <<= $2::text::inet AND created_at > now() - interval '1 hour') AS "ip_count!""#,
        phone.as_str(),
        ip_group
    )
    .fetch_one(&mut *tx)
    .await?;
    let now = Utc::now();
    let until =
        |moment: chrono::DateTime<Utc>| (moment - now).to_std().unwrap_or(Duration::from_secs(1));
    let hour = chrono::Duration::hours(1);
    if let Some(last) = usage.last_sent {
        let ready = last + chrono::Duration::from_std(settings.resend_cooldown).unwrap_or(hour);
        if ready > now {
            return Err(OtpError::Cooldown {
                retry_after: until(ready),
            });
        }
    }
    if usage.phone_count >= i64::from(settings.max_per_phone_per_hour) {
        let retry_after = usage
            .phone_oldest
            .map_or(Duration::from_secs(3600), |t| until(t + hour));
        return Err(OtpError::TooMany { retry_after });
    }
    if usage.ip_count >= i64::from(settings.max_per_ip_per_hour) {
        let retry_after = usage
            .ip_oldest
            .map_or(Duration::from_secs(3600), |t| until(t + hour));
        return Err(OtpError::TooMany { retry_after });
    }
    let expires_at = now + chrono::Duration::from_std(settings.ttl).unwrap_or(hour);
    let max_attempts = i32::try_from(settings.max_attempts).unwrap_or(i32::MAX);
    let id = sqlx::query_scalar!(
        "INSERT INTO otp_requests (phone, requester_ip, expires_at, max_attempts)
         VALUES ($1, $2::text::inet, $3, $4) RETURNING id",
        phone.as_str(),
        ip,
        expires_at,
        max_attempts
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(id)
}

/// Sends a sign-in code to `phone` by SMS: the request (limited per phone and per address),
/// then its send job. A request whose job cannot be queued is removed, so it counts against no
/// limit.
pub async fn send_code(
    core: &Core,
    phone: &PhoneNumber,
    ip: Option<IpAddr>,
) -> Result<(), AccountError> {
    let id = create_request(&core.db, &core.settings.otp, phone, ip).await?;
    if let Err(error) = core.jobs.publish(&SendOtp { otp_request_id: id }).await {
        tracing::error!(%error, "could not enqueue the OTP job");
        discard(&core.db, id).await?;
        return Err(AccountError::Unavailable("sending codes"));
    }
    tracing::info!(phone = %phone.masked(), "OTP requested");
    Ok(())
}

/// Removes a request whose job could not be enqueued, so it counts against no limit.
async fn discard(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM otp_requests WHERE id = $1 AND sent_at IS NULL",
        id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// A fresh 6-digit code.
pub fn new_code() -> String {
    format!("{:06}", rand::rng().random_range(0..1_000_000))
}

/// The stored form of a code: HMAC-SHA256 keyed with `OTP_SECRET`, bound to its request.
pub fn code_hash(settings: &OtpSettings, request_id: Uuid, code: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(settings.secret.expose().as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(request_id.as_bytes());
    mac.update(code.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// What the send-OTP job needs to know about its request.
pub struct PendingOtp {
    pub phone: String,
    pub already_sent: bool,
    pub expired: bool,
}

pub async fn pending(db: &PgPool, id: Uuid) -> Result<Option<PendingOtp>, sqlx::Error> {
    sqlx::query_as!(
        PendingOtp,
        r#"SELECT phone, sent_at IS NOT NULL AS "already_sent!", expires_at <= now() AS "expired!"
           FROM otp_requests WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

/// Stores the hash of the code about to be sent (replacing one from an earlier attempt).
pub async fn store_code_hash(db: &PgPool, id: Uuid, hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE otp_requests SET code_hash = $2 WHERE id = $1 AND sent_at IS NULL",
        id,
        hash
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn mark_sent(db: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE otp_requests SET sent_at = now() WHERE id = $1 AND sent_at IS NULL",
        id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Checks `code` against the latest code sent to `phone` and uses it up if it matches. A
/// wrong code counts as an attempt even though the call fails.
pub async fn verify(
    db: &PgPool,
    settings: &OtpSettings,
    phone: &PhoneNumber,
    code: &str,
) -> Result<(), OtpError> {
    let mut tx = db.begin().await?;
    let request = sqlx::query!(
        r#"SELECT id, code_hash AS "code_hash!", attempts, max_attempts,
                  expires_at <= now() AS "expired!"
           FROM otp_requests
           WHERE phone = $1 AND sent_at IS NOT NULL AND consumed_at IS NULL
           ORDER BY created_at DESC LIMIT 1
           FOR UPDATE"#,
        phone.as_str()
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(OtpError::NoCode)?;
    if request.expired {
        return Err(OtpError::Expired);
    }
    if request.attempts >= request.max_attempts {
        return Err(OtpError::Locked);
    }
    let expected = code_hash(settings, request.id, code.trim());
    let matches: bool = expected
        .as_bytes()
        .ct_eq(request.code_hash.as_bytes())
        .into();
    if matches {
        sqlx::query!(
            "UPDATE otp_requests SET consumed_at = now() WHERE id = $1",
            request.id
        )
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        return Ok(());
    }
    sqlx::query!(
        "UPDATE otp_requests SET attempts = attempts + 1 WHERE id = $1",
        request.id
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Err(OtpError::Wrong {
        attempts_left: request.max_attempts - request.attempts - 1,
    })
}
