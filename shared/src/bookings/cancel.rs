//! A buyer (or a super admin on their behalf) cancelling a booking. What happens depends on
//! the status the booking has under its row lock, not on one read before it, because a payment
//! may be settling at the same moment:
//! - a held booking is CANCELED and its seats are on sale again at once;
//! - a paid one is refunded through a refund request, where the show's rules allow (its seats
//!   go back on sale when the refund is processed); it is never CANCELED with its seats still
//!   sold;
//! - anything else is refused.
//!
//! The settlement of a payment locks the same row first, so one of the two comes second and
//! sees what the other did: a payment settling after the cancel finds a CANCELED booking and is
//! refunded; a cancel after the payment finds it CONFIRMED and asks for the refund.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{
    BookingStatus,
    holds::{SeatRelease, release_held_seats},
};
use crate::{
    error::DomainError,
    payments::refunds::{self, RefundView, Requester},
};

#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    #[error("booking not found")]
    NotFound,
    #[error("a {0:?} booking cannot be canceled")]
    NotCancelable(BookingStatus),
    /// A paid booking whose refund was refused (the show's rules, a refund under way...).
    #[error(transparent)]
    Refund(#[from] DomainError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What a cancellation came to.
#[derive(Debug, Clone)]
pub enum Cancellation {
    /// The hold is gone; the seats of this showtime are on sale again.
    Released { showtime_id: Uuid },
    /// The booking was paid: this refund request (REFUND_PENDING) is to be carried out after
    /// the commit.
    Refunding(RefundView),
}

/// Cancels `booking_id` for `requester` (its owner, or a super admin) in the caller's
/// transaction, which may then record who asked before committing.
pub async fn cancel(
    tx: &mut PgConnection,
    booking_id: Uuid,
    requester: Requester,
    reason: &str,
) -> Result<Cancellation, CancelError> {
    let booking = sqlx::query!(
        r#"SELECT user_id, showtime_id, status AS "status: BookingStatus"
           FROM bookings WHERE id = $1 FOR UPDATE"#,
        booking_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .filter(|booking| match requester {
        Requester::Buyer(user_id) => booking.user_id == user_id,
        Requester::Admin(_) => true,
    })
    .ok_or(CancelError::NotFound)?;
    match booking.status {
        BookingStatus::Reserved => {
            sqlx::query!(
                "UPDATE bookings SET status = 'CANCELED' WHERE id = $1",
                booking_id
            )
            .execute(&mut *tx)
            .await?;
            release_held_seats(tx, &[booking_id], SeatRelease::Canceled).await?;
            Ok(Cancellation::Released {
                showtime_id: booking.showtime_id,
            })
        }
        BookingStatus::Confirmed => Ok(Cancellation::Refunding(
            refunds::request_for_booking(tx, booking_id, &[], reason, requester).await?,
        )),
        status => Err(CancelError::NotCancelable(status)),
    }
}
