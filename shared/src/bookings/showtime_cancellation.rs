//! What cancelling a showtime does to the people who booked it, in the transaction that
//! cancels it (`catalogue::showtimes::cancel`):
//! - every hold is released (CANCELED, seats back);
//! - every paid booking becomes REFUND_PENDING with a refund request for what is left of its
//!   payment (whole-booking refunds, carried out by refund jobs);
//! - a confirmed booking that cost nothing (a comp) is canceled with its tickets;
//! - PENDING bookings are REJECTED (NOT_ON_SALE), and the reservation worker turns away any
//!   request for a canceled showtime that comes later, admins' included;
//! - every one of these is audited, one entry per booking.
//!
//! Its orders become unpayable: no order is made for a booking that is not held, and a payment
//! that lands anyway is refunded by its settlement (the showtime is canceled).
//!
//! Bulk, idempotent and resumable: the requests are rows written with the cancellation, all or
//! none; their jobs are published after the commit ([`publish_refunds`]), the sweep publishes
//! any whose job was lost, and cancelling the showtime again publishes every refund still open
//! (and asks for any missing).

use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    BookingStatus, changes,
    holds::{SeatRelease, release_held_seats},
    manual,
};
use crate::{
    audit::{self, Actor},
    core::Core,
    jobs::Refund,
    money::Paise,
};

/// The reason recorded on the refunds a cancellation asks for.
pub const REFUND_REASON: &str = "the showtime was canceled";

/// What a showtime's cancellation did to its bookings.
#[derive(Debug, Clone, Default)]
pub struct CanceledBookings {
    pub showtime_id: Uuid,
    /// Requests not decided yet, rejected.
    pub turned_away: Vec<Uuid>,
    /// Holds released.
    pub released: Vec<Uuid>,
    /// Paid bookings now being refunded.
    pub refunding: Vec<Uuid>,
    /// Free bookings canceled.
    pub comps: Vec<Uuid>,
    /// Every refund of the showtime still to be carried out, new or from an earlier attempt.
    pub open_refunds: Vec<Uuid>,
}

/// Cancels, refunds or leaves every booking of `showtime_id`, in the caller's transaction (which
/// holds the showtime's row lock). `by` says who, for the audit log.
pub(crate) async fn cancel_bookings(
    tx: &mut PgConnection,
    showtime_id: Uuid,
    by: &Actor,
) -> Result<CanceledBookings, sqlx::Error> {
    // The bookings acted on, in id order (the lock order in `bookings`).
    let bookings = sqlx::query!(
        r#"SELECT id, status AS "status: BookingStatus" FROM bookings
           WHERE showtime_id = $1 AND status IN ('PENDING', 'RESERVED', 'CONFIRMED')
           ORDER BY id FOR UPDATE"#,
        showtime_id
    )
    .fetch_all(&mut *tx)
    .await?;
    // Requests not decided yet are turned away here rather than left to a worker that may have
    // read the showtime on sale a moment ago.
    let turned_away: Vec<Uuid> = bookings
        .iter()
        .filter(|b| b.status == BookingStatus::Pending)
        .map(|b| b.id)
        .collect();
    sqlx::query!(
        "UPDATE bookings SET status = 'REJECTED', reject_reason = 'NOT_ON_SALE' WHERE id = ANY($1)",
        &turned_away
    )
    .execute(&mut *tx)
    .await?;
    let held: Vec<Uuid> = bookings
        .iter()
        .filter(|b| b.status == BookingStatus::Reserved)
        .map(|b| b.id)
        .collect();
    let confirmed: Vec<Uuid> = bookings
        .iter()
        .filter(|b| b.status == BookingStatus::Confirmed)
        .map(|b| b.id)
        .collect();

    sqlx::query!(
        "UPDATE bookings SET status = 'CANCELED' WHERE id = ANY($1)",
        &held
    )
    .execute(&mut *tx)
    .await?;
    release_held_seats(tx, &held, SeatRelease::Canceled).await?;

    // Their payments next, with what is left to give back once refunds under way are done.
    let paid = sqlx::query!(
        r#"SELECT p.booking_id, p.id AS payment_id,
                  (p.amount_paise - p.refunded_paise
                    - coalesce((SELECT sum(r.amount_paise) FROM refunds r
                                WHERE r.payment_id = p.id AND r.status IN ('REQUESTED', 'PENDING')), 0)
                  )::bigint AS "left!"
           FROM payments p
           WHERE p.booking_id = ANY($1) AND p.status = 'CAPTURED'
           ORDER BY p.booking_id FOR UPDATE"#,
        &confirmed
    )
    .fetch_all(&mut *tx)
    .await?;
    let refunding: Vec<_> = paid.iter().filter(|p| p.left > 0).collect();
    let refunding_ids: Vec<Uuid> = refunding.iter().map(|p| p.booking_id).collect();
    let comps: Vec<Uuid> = confirmed
        .iter()
        .filter(|id| !paid.iter().any(|p| p.booking_id == **id))
        .copied()
        .collect();

    sqlx::query!(
        "UPDATE bookings SET status = 'REFUND_PENDING' WHERE id = ANY($1)",
        &refunding_ids
    )
    .execute(&mut *tx)
    .await?;
    let requested = sqlx::query!(
        r#"INSERT INTO refunds (payment_id, booking_id, amount_paise, reason, requested_by)
           SELECT request.payment_id, request.booking_id, request.amount, $4, $5
           FROM unnest($1::uuid[], $2::uuid[], $3::bigint[])
                AS request (payment_id, booking_id, amount)
           RETURNING id, booking_id, amount_paise"#,
        &refunding.iter().map(|p| p.payment_id).collect::<Vec<_>>(),
        &refunding_ids,
        &refunding.iter().map(|p| p.left).collect::<Vec<_>>(),
        REFUND_REASON,
        by.user_id
    )
    .fetch_all(&mut *tx)
    .await?;
    for comp in &comps {
        manual::cancel_in(tx, *comp)
            .await
            .map_err(|error| match error {
                crate::error::DomainError::Database(error) => error,
                other => sqlx::Error::Protocol(format!("a comp could not be canceled: {other}")),
            })?;
    }

    let entries = |action| by.entry(action, "booking", "");
    let why = json!({"reason": REFUND_REASON});
    let each = |ids: &[Uuid]| -> Vec<(String, serde_json::Value)> {
        ids.iter().map(|id| (id.to_string(), why.clone())).collect()
    };
    audit::record_each(tx, &entries("booking.rejected"), &each(&turned_away)).await?;
    audit::record_each(tx, &entries("booking.canceled"), &each(&held)).await?;
    audit::record_each(
        tx,
        &entries("booking.canceled_without_refund"),
        &each(&comps),
    )
    .await?;
    let refunds: Vec<(String, serde_json::Value)> = requested
        .iter()
        .map(|refund| {
            (
                refund.booking_id.to_string(),
                json!({"refund_id": refund.id, "amount_paise": refund.amount_paise,
                       "reason": REFUND_REASON}),
            )
        })
        .collect();
    audit::record_each(tx, &entries("booking.refund_requested"), &refunds).await?;

    let open_refunds = sqlx::query_scalar!(
        "SELECT r.id FROM refunds r JOIN bookings b ON b.id = r.booking_id
         WHERE b.showtime_id = $1 AND r.status IN ('REQUESTED', 'PENDING')
         ORDER BY r.created_at",
        showtime_id
    )
    .fetch_all(&mut *tx)
    .await?;
    Ok(CanceledBookings {
        showtime_id,
        turned_away,
        released: held,
        refunding: refunding_ids,
        comps,
        open_refunds,
    })
}

/// After the commit: tells every buyer whose booking changed, and publishes the refund jobs.
/// A job that cannot be published now is published by the sweep. Thousands of bookings take a
/// while: this runs on a task of its own, which neither holds the editor's answer nor stops
/// when they hang up.
pub(crate) fn publish_refunds(core: &Core, canceled: CanceledBookings) {
    let core = core.clone();
    tokio::spawn(async move {
        let changed: Vec<Uuid> = canceled
            .turned_away
            .iter()
            .chain(&canceled.released)
            .chain(&canceled.refunding)
            .chain(&canceled.comps)
            .copied()
            .collect();
        changes::bookings_changed(&core, &[canceled.showtime_id], &[], &changed).await;
        for refund_id in &canceled.open_refunds {
            let job = Refund {
                refund_id: *refund_id,
                event_id: None,
            };
            if let Err(error) = core.jobs.publish(&job).await {
                tracing::warn!(%error, %refund_id, "refund job not published yet; the sweep will");
                break;
            }
        }
    });
}

/// How the refunds of a showtime stand: what was asked for, what Razorpay has paid back, what
/// failed.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RefundProgress {
    pub showtime_id: Uuid,
    /// Refund requests not carried out yet (requested or pending at Razorpay).
    pub open: i64,
    pub processed: i64,
    pub failed: i64,
    pub requested_paise: Paise,
    pub processed_paise: Paise,
    pub failed_paise: Paise,
    /// Bookings still waiting for their money: being refunded, or (the showtime canceled)
    /// paid and not refunded, as after a refund Razorpay failed. Cancelling the showtime again
    /// asks for their refunds anew.
    pub bookings_awaiting_refund: i64,
}

pub async fn refund_progress(
    db: &PgPool,
    showtime_id: Uuid,
) -> Result<Option<RefundProgress>, sqlx::Error> {
    sqlx::query_as!(
        RefundProgress,
        r#"SELECT st.id AS showtime_id,
                  count(r.id) FILTER (WHERE r.status IN ('REQUESTED', 'PENDING')) AS "open!",
                  count(r.id) FILTER (WHERE r.status = 'PROCESSED') AS "processed!",
                  count(r.id) FILTER (WHERE r.status = 'FAILED') AS "failed!",
                  coalesce(sum(r.amount_paise), 0)::bigint AS "requested_paise!: Paise",
                  coalesce(sum(r.amount_paise) FILTER (WHERE r.status = 'PROCESSED'), 0)::bigint
                      AS "processed_paise!: Paise",
                  coalesce(sum(r.amount_paise) FILTER (WHERE r.status = 'FAILED'), 0)::bigint
                      AS "failed_paise!: Paise",
                  (SELECT count(*) FROM bookings
                    WHERE showtime_id = st.id
                      AND (status = 'REFUND_PENDING'
                           OR (status = 'CONFIRMED' AND st.status = 'CANCELED')))
                      AS "bookings_awaiting_refund!"
           FROM showtimes st
           LEFT JOIN bookings b ON b.showtime_id = st.id
           LEFT JOIN refunds r ON r.booking_id = b.id
           WHERE st.id = $1
           GROUP BY st.id"#,
        showtime_id
    )
    .fetch_optional(db)
    .await
}
