//! Recording a booking request (PENDING) in Postgres, idempotently: the accept path's fallback
//! when Redis or the broker is away ([`super::accept`]). In the steady state the worker records
//! the booking instead, in the transaction that decides it. The reservation itself is always
//! the worker's job.
//!
//! Idempotency: the key is stored with a fingerprint of the request in the same statement as
//! the booking it produced. A repeat with the same request gets the same booking, whatever the
//! checks would say now (they ran when it was made); with another request, a conflict. Two concurrent requests with one key meet on the key's primary key: the
//! second waits for the first to commit, then finds its booking. Keys are kept 24 hours.

use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use super::{BookingStatus, SeatSelection};

pub struct BookingRequest {
    pub user_id: Uuid,
    pub showtime_id: Uuid,
    pub selection: SeatSelection,
    pub idempotency_key: IdempotencyKey,
}

/// The key a client sends with each booking attempt, so a retry answers the booking the first
/// attempt made: 1 to 255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Option<Self> {
        let key = raw.trim();
        (!key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()))
            .then(|| Self(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl BookingRequest {
    /// What must be equal for a retry with the same key to be the same request.
    pub fn fingerprint(&self) -> String {
        let canonical = json!({"showtime_id": self.showtime_id, "selection": self.selection});
        hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub booking_id: Uuid,
    pub status: BookingStatus,
    /// The key was seen before: this is the booking the first request made.
    pub replayed: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("showtime not found")]
    ShowtimeNotFound,
    #[error("this showtime is not on sale")]
    NotOnSale,
    #[error("some seats do not exist in this showtime: {0:?}")]
    UnknownSeats(Vec<Uuid>),
    #[error("this showtime has no such section")]
    UnknownSection,
    #[error("at most {max} seats per buyer for this showtime")]
    LimitReached { max: i32 },
    #[error("this idempotency key was used for a different request")]
    KeyReused,
    /// Neither the broker nor Postgres could take the booking.
    #[error("{0} cannot take bookings right now")]
    Unavailable(&'static str),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Checks and records `request` as the PENDING booking `booking_id`, or finds the booking its
/// key already made.
#[tracing::instrument(skip_all, fields(user_id = %request.user_id, showtime_id = %request.showtime_id))]
pub async fn create_pending(
    db: &PgPool,
    request: &BookingRequest,
    booking_id: Uuid,
) -> Result<Accepted, CreateError> {
    let fingerprint = request.fingerprint();
    // A retry answers with the booking its key already made, before any check: the sale may
    // have ended, or this very booking may have reached the buyer's cap, since it was made.
    if let Some(accepted) = replay(db, request, &fingerprint).await? {
        return Ok(accepted);
    }
    check(db, request).await?;
    // One statement: the key is claimed (or a day-old one reclaimed) and the booking inserted
    // together, or neither is.
    let inserted = sqlx::query_scalar!(
        r#"WITH claimed AS (
               INSERT INTO idempotency_keys
                   (user_id, key, request_fingerprint, response_status, response_body)
               VALUES ($1, $2, $3, 202, jsonb_build_object('booking_id', $4::uuid))
               ON CONFLICT (user_id, key) DO UPDATE
                   SET request_fingerprint = EXCLUDED.request_fingerprint,
                       response_status = EXCLUDED.response_status,
                       response_body = EXCLUDED.response_body,
                       created_at = now()
                   WHERE idempotency_keys.created_at <= now() - interval '24 hours'
               RETURNING 1
           )
           INSERT INTO bookings (id, user_id, showtime_id, request, quantity)
           SELECT $4, $1, $5, $6, $7 FROM claimed
           RETURNING id"#,
        request.user_id,
        request.idempotency_key.as_str(),
        fingerprint,
        booking_id,
        request.showtime_id,
        serde_json::to_value(&request.selection).unwrap_or_default(),
        i32::try_from(request.selection.quantity()).unwrap_or(i32::MAX)
    )
    .fetch_optional(db)
    .await?;
    if inserted.is_some() {
        return Ok(Accepted {
            booking_id,
            status: BookingStatus::Pending,
            replayed: false,
        });
    }
    // The key is taken (and concurrent users of it have committed): the same request gets the
    // same booking, another request a conflict.
    replay(db, request, &fingerprint)
        .await?
        .ok_or(CreateError::KeyReused)
}

/// Records a request the API already checked (in process) as the PENDING booking
/// `booking_id`, with its key: what the API does when the broker cannot take its job. Whatever
/// was recorded before under the same key or id stays as it was.
pub async fn record_checked(
    db: &PgPool,
    request: &BookingRequest,
    booking_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"WITH claimed AS (
               INSERT INTO idempotency_keys
                   (user_id, key, request_fingerprint, response_status, response_body)
               VALUES ($1, $2, $3, 202, jsonb_build_object('booking_id', $4::uuid))
               ON CONFLICT (user_id, key) DO NOTHING
           )
           INSERT INTO bookings (id, user_id, showtime_id, request, quantity)
           VALUES ($4, $1, $5, $6, $7)
           ON CONFLICT (id) DO NOTHING"#,
        request.user_id,
        request.idempotency_key.as_str(),
        request.fingerprint(),
        booking_id,
        request.showtime_id,
        serde_json::to_value(&request.selection).unwrap_or_default(),
        i32::try_from(request.selection.quantity()).unwrap_or(i32::MAX)
    )
    .execute(db)
    .await?;
    Ok(())
}

/// The booking this key made, if the request is the same; `KeyReused` if it is another.
pub async fn replayed(
    db: &PgPool,
    request: &BookingRequest,
) -> Result<Option<Accepted>, CreateError> {
    replay(db, request, &request.fingerprint()).await
}

async fn replay(
    db: &PgPool,
    request: &BookingRequest,
    fingerprint: &str,
) -> Result<Option<Accepted>, CreateError> {
    let Some(stored) = sqlx::query!(
        r#"SELECT k.request_fingerprint, b.id AS "booking_id?", b.status AS "status?: BookingStatus"
           FROM idempotency_keys k
           LEFT JOIN bookings b ON b.id = (k.response_body ->> 'booking_id')::uuid
           WHERE k.user_id = $1 AND k.key = $2"#,
        request.user_id,
        request.idempotency_key.as_str()
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    if stored.request_fingerprint != fingerprint {
        return Err(CreateError::KeyReused);
    }
    match (stored.booking_id, stored.status) {
        (Some(booking_id), Some(status)) => Ok(Some(Accepted {
            booking_id,
            status,
            replayed: true,
        })),
        _ => Ok(None),
    }
}

/// The checks cheap enough to make before accepting, in one query: the worker makes them
/// again, under locks.
async fn check(db: &PgPool, request: &BookingRequest) -> Result<(), CreateError> {
    let named = request.selection.named_seats();
    let section = request.selection.section_id();
    let facts = sqlx::query!(
        r#"SELECT st.status = 'ON_SALE' AND now() >= st.sale_starts_at AND now() < st.sale_ends_at
                      AS "on_sale!",
                  st.max_seats_per_user,
                  ARRAY(SELECT seat_id FROM showtime_seats
                        WHERE showtime_id = st.id AND seat_id = ANY($2)) AS "known_seats!",
                  EXISTS (SELECT 1 FROM price_tiers
                          WHERE showtime_id = st.id AND section_id = $3) AS "section_sold_here!",
                  (SELECT coalesce(sum(quantity), 0) FROM bookings
                   WHERE user_id = $4 AND showtime_id = st.id
                     AND (status IN ('PENDING', 'CONFIRMED', 'REFUND_PENDING')
                          OR (status = 'RESERVED' AND hold_expires_at > now()))) AS "live!"
           FROM showtimes st WHERE st.id = $1"#,
        request.showtime_id,
        named,
        section,
        request.user_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(CreateError::ShowtimeNotFound)?;
    if !facts.on_sale {
        return Err(CreateError::NotOnSale);
    }
    if facts.known_seats.len() != named.len() {
        let unknown = named
            .iter()
            .filter(|id| !facts.known_seats.contains(id))
            .copied()
            .collect();
        return Err(CreateError::UnknownSeats(unknown));
    }
    if section.is_some() && !facts.section_sold_here {
        return Err(CreateError::UnknownSection);
    }
    if facts.live + i64::from(request.selection.quantity()) > i64::from(facts.max_seats_per_user) {
        return Err(CreateError::LimitReached {
            max: facts.max_seats_per_user,
        });
    }
    Ok(())
}

/// A PENDING booking whose job must be published again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stale {
    pub booking_id: Uuid,
    /// Its publish failed for certain; otherwise it only looks stale (its copy may be queued).
    pub never_published: bool,
}

/// Bookings whose publish failed, and bookings still PENDING after `older_than` whose last
/// republish (if any) is older than `older_than` doubled per republish: their job may never
/// have reached the broker, so it is published again (the reservation is idempotent).
pub async fn stale_pending(
    db: &PgPool,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<Stale>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"SELECT b.id AS "id!", r.times IS NOT DISTINCT FROM 0 AS "never_published!"
             FROM bookings b
             LEFT JOIN republished_jobs r ON r.kind = $3 AND r.job_id = b.id
            WHERE b.status = 'PENDING'
              AND (r.times = 0
                   OR (b.created_at < now() - make_interval(secs => $1)
                       AND (r.job_id IS NULL
                            OR r.republished_at < now() - make_interval(secs => $1 * power(2, least(r.times, 6))))))
            ORDER BY b.created_at LIMIT $2"#,
        older_than.as_secs_f64(),
        limit,
        <crate::jobs::ReserveSeats as crate::jobs::Job>::NAME
    )
    .fetch_all(db)
    .await?
    .into_iter()
    .map(|row| Stale {
        booking_id: row.id,
        never_published: row.never_published,
    })
    .collect())
}

/// Forgets idempotency keys older than a day.
pub async fn purge_idempotency_keys(db: &PgPool) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query!("DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'")
            .execute(db)
            .await?
            .rows_affected(),
    )
}
