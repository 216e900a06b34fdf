//! What an admin does to bookings on a user's behalf: book named seats outside the sale window
//! and past the per-buyer cap (free of charge for comps), move a booking to other seats, and
//! cancel a paid booking without a refund.
//!
//! A manual booking goes through the same reservation path as a buyer's (a PENDING booking and
//! its reserve-seats job), so it meets the same locks, conditional updates and constraints: it
//! can never take a seat someone else holds. Moving seats takes only free seats, under row
//! locks, in one transaction.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::PgConnection;
use uuid::Uuid;

use serde_json::json;

use super::{
    BookingStatus, SeatSelection, changes,
    holds::{self, SeatRelease},
    tickets,
    view::BookingView,
};
use crate::{
    audit::{self, Actor, AuditEntry, Reason},
    core::Core,
    error::DomainError,
    jobs::{ReservationScope, ReserveSeats},
    validation::FieldError,
};

/// An admin's booking of named seats for a user.
#[derive(Debug, Clone)]
pub struct ManualOrder {
    pub user_id: Uuid,
    pub showtime_id: Uuid,
    pub selection: SeatSelection,
    /// Free tickets: confirmed as soon as the seats are held, no payment.
    pub comp: bool,
    pub reason: Reason,
}

/// Books `order` for its user: a PENDING booking and its audit entry in one transaction, then
/// its reserve-seats job (the sweep publishes it again if this fails). Returns the booking id,
/// whose status tells how the reservation went.
pub async fn book(core: &Core, actor: &Actor, order: &ManualOrder) -> Result<Uuid, DomainError> {
    let mut tx = core.db.begin().await?;
    let booking_id = record_pending(&mut tx, actor.user_id, order).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            after: Some(
                json!({"user_id": order.user_id, "showtime_id": order.showtime_id,
                               "seats": order.selection.named_seats(), "comp": order.comp,
                               "reason": order.reason.as_str()}),
            ),
            ..actor.entry("booking.manual_created", "booking", booking_id)
        },
    )
    .await?;
    tx.commit().await?;
    let job = ReserveSeats {
        booking_id,
        scope: Some(ReservationScope {
            showtime_id: order.showtime_id,
            section_id: None,
        }),
        request: None,
    };
    if let Err(error) = core.jobs.publish(&job).await {
        tracing::error!(%error, %booking_id, "reservation job not published yet; the sweep will");
    }
    Ok(booking_id)
}

/// Moves a held or confirmed booking to `seat_ids`, audited; then the showtime's availability
/// is dropped and the booking announced. Returns the booking as it now stands.
pub async fn move_seats(
    core: &Core,
    actor: &Actor,
    booking_id: Uuid,
    seat_ids: &[Uuid],
    reason: &Reason,
) -> Result<BookingView, DomainError> {
    let mut tx = core.db.begin().await?;
    let (showtime_id, before) = move_in(&mut tx, booking_id, seat_ids).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            before: Some(json!({"seats": before})),
            after: Some(json!({"seats": seat_ids, "reason": reason.as_str()})),
            ..actor.entry("booking.seats_moved", "booking", booking_id)
        },
    )
    .await?;
    tx.commit().await?;
    changed(core, showtime_id, booking_id).await
}

/// Cancels a booking without a refund, audited; then its seats are on sale again. Returns the
/// booking as it now stands.
pub async fn cancel_without_refund(
    core: &Core,
    actor: &Actor,
    booking_id: Uuid,
    reason: &Reason,
) -> Result<BookingView, DomainError> {
    let mut tx = core.db.begin().await?;
    let showtime_id = cancel_in(&mut tx, booking_id).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            after: Some(json!({"reason": reason.as_str()})),
            ..actor.entry("booking.canceled_without_refund", "booking", booking_id)
        },
    )
    .await?;
    tx.commit().await?;
    changed(core, showtime_id, booking_id).await
}

async fn changed(
    core: &Core,
    showtime_id: Uuid,
    booking_id: Uuid,
) -> Result<BookingView, DomainError> {
    changes::seats_changed(core, showtime_id, booking_id)
        .await?
        .ok_or(DomainError::NotFound("booking"))
}

/// Records a PENDING manual booking of named seats, for its reservation job to hold.
async fn record_pending(
    conn: &mut PgConnection,
    admin_id: Uuid,
    order: &ManualOrder,
) -> Result<Uuid, DomainError> {
    let ManualOrder {
        user_id,
        showtime_id,
        ref selection,
        comp,
        ..
    } = *order;
    let user_ok = sqlx::query_scalar!(
        r#"SELECT disabled_at IS NULL AS "ok!" FROM users WHERE id = $1"#,
        user_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| FieldError::new("user_id", "no such user"))?;
    if !user_ok {
        return Err(FieldError::new("user_id", "this account is disabled").into());
    }
    let named = selection.named_seats();
    let showtime = sqlx::query!(
        r#"SELECT status::text IN ('CANCELED', 'COMPLETED') AS "closed!",
                  ARRAY(SELECT seat_id FROM showtime_seats
                        WHERE showtime_id = st.id AND seat_id = ANY($2)) AS "known!"
           FROM showtimes st WHERE id = $1"#,
        showtime_id,
        named
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| FieldError::new("showtime_id", "no such showtime"))?;
    if showtime.closed {
        return Err(DomainError::conflict(
            "SHOWTIME_CLOSED",
            "this showtime is canceled or over",
        ));
    }
    if showtime.known.len() != named.len() {
        return Err(
            FieldError::new("seat_ids", "some seats are not on sale for this showtime").into(),
        );
    }
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO bookings (id, user_id, showtime_id, request, quantity, created_by, comp)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        user_id,
        showtime_id,
        serde_json::to_value(selection).unwrap_or_default(),
        i32::try_from(selection.quantity()).unwrap_or(i32::MAX),
        admin_id,
        comp
    )
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Moves a held or confirmed booking to other seats of its showtime, as many as it has: the
/// old ones go back on sale, the new ones must be free. Its price stays as it was, seat by seat
/// (each new seat is priced as the seat it replaces). Returns the showtime and the seats before.
async fn move_in(
    conn: &mut PgConnection,
    booking_id: Uuid,
    seat_ids: &[Uuid],
) -> Result<(Uuid, Vec<Uuid>), DomainError> {
    let booking = sqlx::query!(
        r#"SELECT showtime_id, status AS "status: BookingStatus", hold_expires_at
           FROM bookings WHERE id = $1 FOR UPDATE"#,
        booking_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DomainError::NotFound("booking"))?;
    let sold = match booking.status {
        BookingStatus::Confirmed => true,
        BookingStatus::Reserved
            if booking
                .hold_expires_at
                .is_some_and(|d| d > chrono::Utc::now()) =>
        {
            false
        }
        status => {
            return Err(DomainError::conflict(
                "NOT_MOVABLE",
                format!("a {status:?} booking has no seats to move"),
            ));
        }
    };
    // The seats it has now, with the price paid for each.
    let paid: BTreeMap<Uuid, i64> = sqlx::query!(
        "SELECT seat_id, price_paise FROM booking_seats WHERE booking_id = $1 AND released_at IS NULL",
        booking_id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|row| (row.seat_id, row.price_paise))
    .collect();
    let old: BTreeSet<Uuid> = paid.keys().copied().collect();
    let new: BTreeSet<Uuid> = seat_ids.iter().copied().collect();
    if new.len() != seat_ids.len() {
        return Err(FieldError::new("seat_ids", "must not name a seat twice").into());
    }
    if new.len() != old.len() {
        return Err(FieldError::new(
            "seat_ids",
            format!("name {} seats, as many as the booking has", old.len()),
        )
        .into());
    }
    let release: Vec<Uuid> = old.difference(&new).copied().collect();
    let take: Vec<Uuid> = new.difference(&old).copied().collect();
    // The seats given up and the seats taken, locked together in seat order (see
    // `bookings::locking`); then the taken ones must be free.
    let touched: Vec<Uuid> = release.iter().chain(&take).copied().collect();
    let free: BTreeSet<Uuid> = sqlx::query!(
        r#"SELECT seat_id, status = 'AVAILABLE' AS "free!" FROM showtime_seats
           WHERE showtime_id = $1 AND seat_id = ANY($2)
           ORDER BY seat_id FOR UPDATE"#,
        booking.showtime_id,
        &touched
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .filter(|seat| seat.free)
    .map(|seat| seat.seat_id)
    .collect();
    if !take.iter().all(|seat| free.contains(seat)) {
        return Err(DomainError::conflict(
            "SEAT_TAKEN",
            "some of these seats are not free in this showtime",
        ));
    }
    sqlx::query!(
        "UPDATE showtime_seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
         WHERE showtime_id = $1 AND booking_id = $2 AND seat_id = ANY($3)",
        booking.showtime_id,
        booking_id,
        &release
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE booking_seats SET released_at = now(), release_reason = 'MOVED'
         WHERE booking_id = $1 AND seat_id = ANY($2) AND released_at IS NULL",
        booking_id,
        &release
    )
    .execute(&mut *conn)
    .await?;
    tickets::void(conn, booking_id, &release).await?;
    let hold = if sold { None } else { booking.hold_expires_at };
    sqlx::query!(
        "UPDATE showtime_seats SET status = CASE WHEN $4 THEN 'SOLD'::seat_status ELSE 'RESERVED' END,
                booking_id = $2, hold_expires_at = $5
         WHERE showtime_id = $1 AND seat_id = ANY($3) AND status = 'AVAILABLE'",
        booking.showtime_id,
        booking_id,
        &take,
        sold,
        hold
    )
    .execute(&mut *conn)
    .await?;
    // Each seat taken carries the price paid for a seat given up, so the booking still adds
    // up to what was paid (or will be), and a later refund of some seats gives back what they
    // cost the buyer, whatever the new seats' tier.
    let prices: Vec<i64> = release
        .iter()
        .map(|seat| paid.get(seat).copied().unwrap_or_default())
        .collect();
    sqlx::query!(
        "INSERT INTO booking_seats (booking_id, showtime_id, seat_id, price_paise)
         SELECT $1, $2, taken.seat_id, taken.price_paise
         FROM unnest($3::uuid[], $4::bigint[]) AS taken (seat_id, price_paise)
         ON CONFLICT (booking_id, seat_id)
         DO UPDATE SET released_at = NULL, release_reason = NULL, price_paise = EXCLUDED.price_paise",
        booking_id,
        booking.showtime_id,
        &take,
        &prices
    )
    .execute(&mut *conn)
    .await?;
    if sold {
        tickets::issue(conn, &[booking_id]).await?;
    }
    Ok((booking.showtime_id, old.into_iter().collect()))
}

/// Cancels a confirmed booking without giving the money back (its seats go back on sale, its
/// tickets are void); a held one is simply canceled. Returns the showtime.
pub(crate) async fn cancel_in(
    conn: &mut PgConnection,
    booking_id: Uuid,
) -> Result<Uuid, DomainError> {
    let booking = sqlx::query!(
        r#"SELECT showtime_id, status AS "status: BookingStatus" FROM bookings WHERE id = $1 FOR UPDATE"#,
        booking_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(DomainError::NotFound("booking"))?;
    if !matches!(
        booking.status,
        BookingStatus::Confirmed | BookingStatus::Reserved
    ) {
        return Err(DomainError::conflict(
            "NOT_CANCELABLE",
            format!("a {:?} booking cannot be canceled", booking.status),
        ));
    }
    sqlx::query!(
        "UPDATE bookings SET status = 'CANCELED', hold_expires_at = NULL WHERE id = $1",
        booking_id
    )
    .execute(&mut *conn)
    .await?;
    holds::release_held_seats(conn, &[booking_id], SeatRelease::Canceled).await?;
    let released = sqlx::query_scalar!(
        r#"WITH sold AS (
               SELECT showtime_id, seat_id FROM showtime_seats
               WHERE booking_id = $1 AND status = 'SOLD'
               ORDER BY showtime_id, seat_id
               FOR UPDATE
           )
           UPDATE showtime_seats AS s SET status = 'AVAILABLE', booking_id = NULL
           FROM sold WHERE s.showtime_id = sold.showtime_id AND s.seat_id = sold.seat_id
           RETURNING s.seat_id AS "seat_id!""#,
        booking_id
    )
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE booking_seats SET released_at = now(), release_reason = 'CANCELED'
         WHERE booking_id = $1 AND released_at IS NULL",
        booking_id
    )
    .execute(&mut *conn)
    .await?;
    tickets::void(conn, booking_id, &released).await?;
    Ok(booking.showtime_id)
}
