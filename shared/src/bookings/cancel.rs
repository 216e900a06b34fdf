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
    BookingStatus, changes,
    holds::{SeatRelease, release_held_seats},
    view::BookingView,
};
use crate::{
    audit::Actor,
    core::Core,
    error::DomainError,
    payments::refunds::{self, RefundView, Requester},
};

/// What a cancellation came to, with the booking as it now stands.
#[derive(Debug, Clone)]
pub enum Canceled {
    /// The hold is gone (CANCELED); its seats are on sale again.
    Released(BookingView),
    /// The booking was paid: a refund is under way (REFUND_PENDING).
    Refunding(BookingView),
}

/// Cancels `booking_id` for `actor`: its owner, or a super admin on their behalf (anyone else
/// is told it does not exist). A refund request is audited in the same transaction; after the
/// commit the seats go back on sale, or the refund starts.
pub async fn cancel(core: &Core, actor: &Actor, booking_id: Uuid) -> Result<Canceled, DomainError> {
    let requester = Requester::of(actor);
    let reason = match requester {
        Requester::Admin(_) => "canceled by an admin",
        Requester::Buyer(_) => "canceled by the buyer",
    };
    let mut tx = core.db.begin().await?;
    match decide(&mut tx, booking_id, requester, reason).await? {
        Decision::Released { showtime_id } => {
            tx.commit().await?;
            let view = changes::seats_changed(core, showtime_id, booking_id)
                .await?
                .ok_or(DomainError::NotFound("booking"))?;
            Ok(Canceled::Released(view))
        }
        Decision::Refunding(refund) => {
            refunds::record_request(&mut tx, actor, &refund).await?;
            tx.commit().await?;
            Ok(Canceled::Refunding(refunds::start(core, &refund).await?))
        }
    }
}

/// What the booking's status under its lock decided.
enum Decision {
    Released {
        showtime_id: Uuid,
    },
    /// This refund request (REFUND_PENDING) is to be carried out after the commit.
    Refunding(RefundView),
}

async fn decide(
    tx: &mut PgConnection,
    booking_id: Uuid,
    requester: Requester,
    reason: &str,
) -> Result<Decision, DomainError> {
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
    .ok_or(DomainError::NotFound("booking"))?;
    match booking.status {
        BookingStatus::Reserved => {
            sqlx::query!(
                "UPDATE bookings SET status = 'CANCELED' WHERE id = $1",
                booking_id
            )
            .execute(&mut *tx)
            .await?;
            release_held_seats(tx, &[booking_id], SeatRelease::Canceled).await?;
            Ok(Decision::Released {
                showtime_id: booking.showtime_id,
            })
        }
        BookingStatus::Confirmed => Ok(Decision::Refunding(
            refunds::request_for_booking(tx, booking_id, &[], reason, requester).await?,
        )),
        status => Err(DomainError::conflict(
            "NOT_CANCELABLE",
            match status {
                BookingStatus::Pending => {
                    "the reservation is still being decided; try again in a moment".into()
                }
                BookingStatus::RefundPending => "a refund of this booking is under way".into(),
                other => format!("a {other:?} booking cannot be canceled"),
            },
        )),
    }
}
