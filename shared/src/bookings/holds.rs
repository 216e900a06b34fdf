//! Releasing seat holds whose deadline has passed.
//!
//! This sweep only tidies up: the reservation path already treats a hold past its deadline as
//! free. Every worker replica runs the sweep on its schedule; `FOR UPDATE SKIP LOCKED` lets
//! them run at once without waiting on each other or expiring a booking twice.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
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
    let mut tx = db.begin().await?;
    let expired = sqlx::query_as!(
        ExpiredHold,
        r#"
        WITH overdue AS (
            SELECT id
            FROM bookings
            WHERE status = 'RESERVED' AND hold_expires_at <= now()
            ORDER BY hold_expires_at
            LIMIT $1
            FOR UPDATE SKIP LOCKED
        )
        UPDATE bookings AS b
        SET status = 'EXPIRED'
        FROM overdue
        WHERE b.id = overdue.id
        RETURNING b.id AS "booking_id!", b.showtime_id AS "showtime_id!",
                  b.hold_expires_at AS "hold_expired_at!"
        "#,
        batch
    )
    .fetch_all(&mut *tx)
    .await?;
    let ids: Vec<Uuid> = expired.iter().map(|hold| hold.booking_id).collect();
    release_held_seats(&mut tx, &ids, SeatRelease::Lapsed).await?;
    tx.commit().await?;
    Ok(expired)
}

/// Why a booking let its seats go (`seat_release_reason` in the schema). A payment that lands
/// after its hold lapsed may take back only `Lapsed` seats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "seat_release_reason", rename_all = "SCREAMING_SNAKE_CASE")]
pub(crate) enum SeatRelease {
    Lapsed,
    Canceled,
    Refunded,
    Moved,
}

/// Gives the seats held by `booking_ids` back: AVAILABLE again, and their claims released. The
/// one place a hold ends, whether it lapsed, was taken over or was cancelled.
pub(crate) async fn release_held_seats(
    conn: &mut PgConnection,
    booking_ids: &[Uuid],
    why: SeatRelease,
) -> Result<(), sqlx::Error> {
    if booking_ids.is_empty() {
        return Ok(());
    }
    // Seats locked in (showtime, seat) order, as everywhere (the lock order in `bookings`).
    sqlx::query!(
        "WITH held AS (
             SELECT showtime_id, seat_id FROM showtime_seats
             WHERE booking_id = ANY($1) AND status = 'RESERVED'
             ORDER BY showtime_id, seat_id
             FOR UPDATE
         )
         UPDATE showtime_seats AS s
         SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
         FROM held WHERE s.showtime_id = held.showtime_id AND s.seat_id = held.seat_id",
        booking_ids
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE booking_seats SET released_at = now(), release_reason = $2
         WHERE booking_id = ANY($1) AND released_at IS NULL",
        booking_ids,
        why as SeatRelease
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}
