//! Cancelling a held booking: CANCELED, and its seats back on sale at once. A paid booking is
//! not canceled here; it goes through a refund.

use sqlx::PgPool;
use uuid::Uuid;

use super::{BookingStatus, holds::release_held_seats};

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("booking not found")]
    NotFound,
    #[error("a {0:?} booking cannot be canceled")]
    NotCancelable(BookingStatus),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Cancels `booking_id` for `actor` (its owner, or anyone when `admin`). Returns its showtime.
pub async fn cancel(
    db: &PgPool,
    booking_id: Uuid,
    actor: Uuid,
    admin: bool,
) -> Result<Uuid, CancelError> {
    let mut tx = db.begin().await?;
    let booking = sqlx::query!(
        r#"SELECT user_id, showtime_id, status AS "status: BookingStatus"
           FROM bookings WHERE id = $1 FOR UPDATE"#,
        booking_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .filter(|booking| admin || booking.user_id == actor)
    .ok_or(CancelError::NotFound)?;
    if !booking.status.can_move_to(BookingStatus::Canceled)
        || booking.status == BookingStatus::Canceled
    {
        return Err(CancelError::NotCancelable(booking.status));
    }
    sqlx::query!(
        "UPDATE bookings SET status = 'CANCELED' WHERE id = $1",
        booking_id
    )
    .execute(&mut *tx)
    .await?;
    release_held_seats(&mut tx, &[booking_id]).await?;
    tx.commit().await?;
    Ok(booking.showtime_id)
}
