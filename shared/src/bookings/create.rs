//! Recording a booking request (PENDING), idempotently, after the checks that are cheap enough
//! for the API. The reservation itself is the worker's job.
//!
//! Idempotency: the key is stored with a fingerprint of the request in the same transaction as
//! the booking it produced. A repeat with the same request gets the same booking; with another
//! request, a conflict. Two concurrent requests with one key meet on the key's primary key: the
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
    pub idempotency_key: String,
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
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

fn fingerprint(request: &BookingRequest) -> String {
    let canonical = json!({"showtime_id": request.showtime_id, "selection": request.selection});
    hex::encode(Sha256::digest(canonical.to_string().as_bytes()))
}

#[tracing::instrument(skip_all, fields(user_id = %request.user_id, showtime_id = %request.showtime_id))]
pub async fn create_pending(db: &PgPool, request: BookingRequest) -> Result<Accepted, CreateError> {
    let fingerprint = fingerprint(&request);
    if let Some(accepted) = replay(db, &request, &fingerprint).await? {
        return Ok(accepted);
    }
    check(db, &request).await?;
    let booking_id = Uuid::now_v7();
    let mut tx = db.begin().await?;
    sqlx::query!(
        "DELETE FROM idempotency_keys
         WHERE user_id = $1 AND key = $2 AND created_at <= now() - interval '24 hours'",
        request.user_id,
        request.idempotency_key
    )
    .execute(&mut *tx)
    .await?;
    let claimed = sqlx::query!(
        "INSERT INTO idempotency_keys (user_id, key, request_fingerprint)
         VALUES ($1, $2, $3) ON CONFLICT (user_id, key) DO NOTHING",
        request.user_id,
        request.idempotency_key,
        fingerprint
    )
    .execute(&mut *tx)
    .await?;
    if claimed.rows_affected() == 0 {
        // A concurrent request with this key committed first.
        tx.rollback().await?;
        return replay(db, &request, &fingerprint)
            .await?
            .ok_or(CreateError::KeyReused);
    }
    sqlx::query!(
        "INSERT INTO bookings (id, user_id, showtime_id, request, quantity)
         VALUES ($1, $2, $3, $4, $5)",
        booking_id,
        request.user_id,
        request.showtime_id,
        serde_json::to_value(&request.selection).unwrap_or_default(),
        i32::try_from(request.selection.quantity()).unwrap_or(i32::MAX)
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE idempotency_keys SET response_status = 202, response_body = $3
         WHERE user_id = $1 AND key = $2",
        request.user_id,
        request.idempotency_key,
        json!({"booking_id": booking_id})
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Accepted {
        booking_id,
        status: BookingStatus::Pending,
        replayed: false,
    })
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
           WHERE k.user_id = $1 AND k.key = $2 AND k.created_at > now() - interval '24 hours'"#,
        request.user_id,
        request.idempotency_key
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

/// The checks cheap enough to make before accepting: the worker makes them again, under locks.
async fn check(db: &PgPool, request: &BookingRequest) -> Result<(), CreateError> {
    let showtime = sqlx::query!(
        r#"SELECT status = 'ON_SALE' AND now() >= sale_starts_at AND now() < sale_ends_at AS "on_sale!",
                  max_seats_per_user
           FROM showtimes WHERE id = $1"#,
        request.showtime_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(CreateError::ShowtimeNotFound)?;
    if !showtime.on_sale {
        return Err(CreateError::NotOnSale);
    }
    match &request.selection {
        SeatSelection::Named { seat_ids } => {
            let known: Vec<Uuid> = sqlx::query_scalar!(
                "SELECT seat_id FROM showtime_seats WHERE showtime_id = $1 AND seat_id = ANY($2)",
                request.showtime_id,
                seat_ids
            )
            .fetch_all(db)
            .await?;
            if known.len() != seat_ids.len() {
                let unknown = seat_ids
                    .iter()
                    .filter(|id| !known.contains(id))
                    .copied()
                    .collect();
                return Err(CreateError::UnknownSeats(unknown));
            }
        }
        SeatSelection::BestAvailable { section_id, .. } => {
            let sold_here = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM price_tiers
                                  WHERE showtime_id = $1 AND section_id = $2) AS "exists!""#,
                request.showtime_id,
                section_id
            )
            .fetch_one(db)
            .await?;
            if !sold_here {
                return Err(CreateError::UnknownSection);
            }
        }
    }
    let live: i64 = sqlx::query_scalar!(
        r#"SELECT coalesce(sum(quantity), 0) AS "live!" FROM bookings
           WHERE user_id = $1 AND showtime_id = $2
             AND (status IN ('PENDING', 'CONFIRMED', 'REFUND_PENDING')
                  OR (status = 'RESERVED' AND hold_expires_at > now()))"#,
        request.user_id,
        request.showtime_id
    )
    .fetch_one(db)
    .await?;
    if live + i64::from(request.selection.quantity()) > i64::from(showtime.max_seats_per_user) {
        return Err(CreateError::LimitReached {
            max: showtime.max_seats_per_user,
        });
    }
    Ok(())
}

/// Bookings accepted but still PENDING after `older_than`: their job may never have reached the
/// broker, so they are published again (the reservation is idempotent on the booking).
pub async fn stale_pending(
    db: &PgPool,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        "SELECT id FROM bookings
         WHERE status = 'PENDING' AND created_at < now() - make_interval(secs => $1)
         ORDER BY created_at LIMIT $2",
        older_than.as_secs_f64(),
        limit
    )
    .fetch_all(db)
    .await
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
