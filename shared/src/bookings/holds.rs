//! Releasing seat holds whose deadline has passed.
//!
//! This sweep only tidies up: the reservation path already treats a hold past its deadline as
//! free. Every worker replica runs the sweep on its schedule; `FOR UPDATE SKIP LOCKED` lets
//! them run at once without waiting on each other or expiring a booking twice.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// A booking the sweep expired, for status updates and cache invalidation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredHold {
    pub booking_id: Uuid,
    pub showtime_id: Uuid,
    pub hold_expired_at: DateTime<Utc>,
}

/// Expires up to `batch` overdue holds in one transaction and frees their seats.
#[tracing::instrument(skip(db))]
pub async fn expire_overdue_holds(
    db: &PgPool,
    batch: i64,
) -> Result<Vec<ExpiredHold>, sqlx::Error> {
    sqlx::query_as!(
        ExpiredHold,
        r#"
        WITH overdue AS (
            SELECT id
            FROM bookings
            WHERE status = 'RESERVED' AND hold_expires_at <= now()
            ORDER BY hold_expires_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        ),
        expired AS (
            UPDATE bookings AS b
            SET status = 'EXPIRED'
            FROM overdue
            WHERE b.id = overdue.id
            RETURNING b.id, b.showtime_id, b.hold_expires_at
        ),
        freed_seats AS (
            UPDATE showtime_seats AS s
            SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
            FROM expired
            WHERE s.booking_id = expired.id AND s.status = 'RESERVED'
        ),
        released_claims AS (
            UPDATE booking_seats AS bs
            SET released_at = now()
            FROM expired
            WHERE bs.booking_id = expired.id AND bs.released_at IS NULL
        )
        SELECT id AS "booking_id!", showtime_id AS "showtime_id!",
               hold_expires_at AS "hold_expired_at!"
        FROM expired
        "#,
        batch
    )
    .fetch_all(db)
    .await
}
