//! Settling a payment Checkout or a webhook told us about: re-read it from Razorpay, capture it
//! if it is only authorized, then in one transaction record it and confirm the booking (seats
//! SOLD, tickets issued).
//!
//! Late payments: a payment captured after its hold lapsed is a new purchase. It confirms the
//! booking only if the showtime still sells (on sale or sold out, not started), the buyer's
//! other bookings leave room under the per-buyer cap, and the seats the hold had are still free
//! (lapsed holds of other bookings on them are expired first, as a reservation would); it is
//! refunded in full otherwise. A payment for a booking that can no longer be confirmed
//! (canceled, rejected, its showtime canceled) is refunded too. Money never stays
//! without seats, and seats are never sold twice: the seat updates are conditional and the
//! schema's constraints back them.

use std::collections::BTreeSet;

use anyhow::anyhow;
use serde_json::{Value, json};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    PaymentStatus, SettleError, history_entry,
    razorpay::{Payment, Razorpay},
    refunds,
    signature::checkout_signature_valid,
};
use crate::{
    audit::AuditEntry,
    bookings::{
        BookingStatus,
        holds::{self, SeatRelease},
        tickets,
    },
    catalogue::showtimes::ShowtimeStatus,
    jobs::{PaymentSignal, VerifyPayment},
    money::Paise,
};

/// What settling did, for the status announcements and follow-up jobs of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The booking is CONFIRMED with its tickets.
    Confirmed { booking_id: Uuid, showtime_id: Uuid },
    /// The money was taken but the booking cannot have it: this refund gives it back.
    Refunding { booking_id: Uuid, refund_id: Uuid },
    /// The payment failed or does not match; nothing changed hands.
    Failed { booking_id: Uuid },
    /// An earlier delivery settled it already.
    AlreadySettled,
}

struct Stored {
    id: Uuid,
    booking_id: Uuid,
    provider_order_id: String,
    provider_payment_id: Option<String>,
    amount_paise: Paise,
    currency: String,
    status: PaymentStatus,
}

/// Settles the payment of `job`. Safe to run any number of times, concurrently or not.
#[tracing::instrument(skip_all, fields(order = %job.provider_order_id))]
pub async fn settle(
    db: &PgPool,
    razorpay: &Razorpay,
    key_secret: &str,
    job: &VerifyPayment,
) -> Result<Settled, SettleError> {
    let stored = sqlx::query_as!(
        Stored,
        r#"SELECT id, booking_id, provider_order_id, provider_payment_id,
                  amount_paise AS "amount_paise: Paise", currency::text AS "currency!", status AS "status: PaymentStatus"
           FROM payments WHERE provider_order_id = $1"#,
        job.provider_order_id
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| SettleError::Permanent(anyhow!("no payment for this order")))?;
    let source = match &job.signal {
        PaymentSignal::Checkout { signature } => {
            if !checkout_signature_valid(
                key_secret,
                &stored.provider_order_id,
                &job.provider_payment_id,
                signature,
            ) {
                record_failure(db, stored.id, "checkout", "signature mismatch").await?;
                return Ok(Settled::Failed {
                    booking_id: stored.booking_id,
                });
            }
            "checkout".to_owned()
        }
        PaymentSignal::Webhook { event_id } => format!("webhook {event_id}"),
        PaymentSignal::Reconciliation => "reconciliation".to_owned(),
    };
    if stored.status == PaymentStatus::Captured || stored.status == PaymentStatus::Refunded {
        if stored.provider_payment_id.as_deref() == Some(job.provider_payment_id.as_str()) {
            return Ok(Settled::AlreadySettled);
        }
        return Err(SettleError::Permanent(anyhow!(
            "a second payment was captured on an order already paid; refund it by hand"
        )));
    }
    let mut payment = razorpay.fetch_payment(&job.provider_payment_id).await?;
    if payment.order_id.as_deref() != Some(stored.provider_order_id.as_str()) {
        return Err(SettleError::Permanent(anyhow!(
            "the payment belongs to another order"
        )));
    }
    let amount_matches =
        payment.amount == stored.amount_paise && payment.currency == stored.currency;
    match payment.status.as_str() {
        "failed" => {
            let reason = payment
                .error_description
                .as_deref()
                .unwrap_or("payment failed");
            record_failure(db, stored.id, &source, reason).await?;
            return Ok(Settled::Failed {
                booking_id: stored.booking_id,
            });
        }
        "authorized" if !amount_matches => {
            // Never captured, so Razorpay gives the money back by itself.
            record_failure(
                db,
                stored.id,
                &source,
                "amount or currency does not match the order",
            )
            .await?;
            return Ok(Settled::Failed {
                booking_id: stored.booking_id,
            });
        }
        "authorized" => {
            payment = match razorpay
                .capture(&payment.id, stored.amount_paise, &stored.currency)
                .await
            {
                Ok(captured) => captured,
                // Captured meanwhile by a delivery we did not see finish: read what it did.
                Err(super::razorpay::RazorpayError::Refused { .. }) => {
                    razorpay.fetch_payment(&payment.id).await?
                }
                Err(error) => return Err(error.into()),
            };
            if payment.status != "captured" {
                return Err(SettleError::Transient(anyhow!(
                    "capture left the payment {}",
                    payment.status
                )));
            }
        }
        "captured" | "refunded" => {}
        other => {
            return Err(SettleError::Transient(anyhow!("payment is still {other}")));
        }
    }
    apply_capture(db, &stored, &payment, &source, amount_matches).await
}

async fn apply_capture(
    db: &PgPool,
    stored: &Stored,
    payment: &Payment,
    source: &str,
    amount_matches: bool,
) -> Result<Settled, SettleError> {
    let mut tx = db.begin().await?;
    // The booking before its payment, as everywhere (the lock order in `bookings`).
    let booking = sqlx::query!(
        r#"SELECT b.status AS "status: BookingStatus", b.showtime_id, b.user_id, b.quantity,
                  b.created_by IS NOT NULL AS "manual!",
                  b.status = 'EXPIRED' OR (b.status = 'RESERVED' AND b.hold_expires_at <= now())
                      AS "late!",
                  st.status AS "showtime_status: ShowtimeStatus",
                  st.status IN ('ON_SALE', 'SOLD_OUT') AND st.starts_at > now() AS "still_selling!",
                  st.max_seats_per_user
           FROM bookings b JOIN showtimes st ON st.id = b.showtime_id
           WHERE b.id = $1 FOR UPDATE OF b"#,
        stored.booking_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let current = sqlx::query!(
        r#"SELECT status AS "status: PaymentStatus", provider_payment_id FROM payments WHERE id = $1 FOR UPDATE"#,
        stored.id
    )
    .fetch_one(&mut *tx)
    .await?;
    if current.status == PaymentStatus::Captured || current.status == PaymentStatus::Refunded {
        return Ok(Settled::AlreadySettled);
    }
    let history = history_entry(PaymentStatus::Captured, source, None);
    sqlx::query!(
        "UPDATE payments SET status = 'CAPTURED', provider_payment_id = $2, method = $3,
                captured_at = now(), failure_reason = $4,
                status_history = status_history || jsonb_build_array($5::jsonb)
         WHERE id = $1",
        stored.id,
        payment.id,
        payment.method,
        (!amount_matches).then_some("captured amount does not match the order"),
        history
    )
    .execute(&mut *tx)
    .await?;
    // Why the booking cannot have this money, if it cannot.
    let mut refusal = if !amount_matches {
        Some("the amount paid does not match the order")
    } else if booking.showtime_status == ShowtimeStatus::Canceled
        || !matches!(
            booking.status,
            BookingStatus::Reserved | BookingStatus::Expired
        )
    {
        Some("paid for a booking that can no longer be confirmed")
    } else if booking.late && !booking.still_selling {
        Some("paid after the hold lapsed, once the showtime had stopped selling")
    } else {
        None
    };
    // A late payment is a new purchase as far as the buyer's cap goes: their other bookings
    // may have filled it while this hold lapsed. Counted under the lock reservations take for
    // the same buyer and showtime, so neither can race past the other.
    if refusal.is_none() && booking.late && !booking.manual {
        let owned = seats_owned_elsewhere(
            &mut tx,
            booking.user_id,
            booking.showtime_id,
            stored.booking_id,
        )
        .await?
        .ok_or_else(|| {
            SettleError::Transient(anyhow!(
                "the buyer is reserving in this showtime right now; settling again shortly"
            ))
        })?;
        if owned + i64::from(booking.quantity) > i64::from(booking.max_seats_per_user) {
            refusal = Some("paid after the hold lapsed, past the buyer's seat limit");
        }
    }
    let confirmed = refusal.is_none()
        && sell_seats(
            &mut tx,
            stored.booking_id,
            booking.showtime_id,
            booking.status == BookingStatus::Expired,
        )
        .await?;
    crate::audit::record(
        &mut tx,
        system_entry(
            "payment.captured",
            stored.id,
            json!({"status": current.status}),
            json!({"status": PaymentStatus::Captured, "provider_payment_id": payment.id,
                   "booking_confirmed": confirmed, "source": source}),
        ),
    )
    .await?;
    let outcome = if confirmed {
        sqlx::query!(
            "UPDATE bookings SET status = 'CONFIRMED', hold_expires_at = NULL WHERE id = $1",
            stored.booking_id
        )
        .execute(&mut *tx)
        .await?;
        tickets::issue(&mut tx, &[stored.booking_id]).await?;
        Settled::Confirmed {
            booking_id: stored.booking_id,
            showtime_id: booking.showtime_id,
        }
    } else {
        if booking.late && booking.status == BookingStatus::Reserved {
            // Its hold lapsed before the sweep came by: it ends as the sweep would end it.
            sqlx::query!(
                "UPDATE bookings SET status = 'EXPIRED' WHERE id = $1",
                stored.booking_id
            )
            .execute(&mut *tx)
            .await?;
            holds::release_held_seats(&mut tx, &[stored.booking_id], SeatRelease::Lapsed).await?;
        }
        let reason = refusal.unwrap_or("paid after the hold lapsed and the seats were taken");
        let refund_id =
            refunds::request_whole(&mut tx, stored.id, stored.booking_id, reason).await?;
        Settled::Refunding {
            booking_id: stored.booking_id,
            refund_id,
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

/// Seats the buyer holds or owns in this showtime through their other bookings, once the
/// per-buyer lock of reservations (`reserve`) is held; `None` if a reservation holds it now.
///
/// Only tried, never waited for: a reservation takes that lock before it locks the lapsed
/// holds it takes over, which may be this very booking (already locked here). Waiting could
/// deadlock; the settlement rolls back and runs again instead.
async fn seats_owned_elsewhere(
    conn: &mut PgConnection,
    user_id: Uuid,
    showtime_id: Uuid,
    booking_id: Uuid,
) -> Result<Option<i64>, sqlx::Error> {
    let locked = sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtextextended($1::uuid::text || $2::text, 0)) AS "locked!""#,
        user_id,
        showtime_id.to_string()
    )
    .fetch_one(&mut *conn)
    .await?;
    if !locked {
        return Ok(None);
    }
    sqlx::query_scalar!(
        r#"SELECT coalesce(sum(quantity), 0) AS "owned!" FROM bookings
           WHERE showtime_id = $1 AND user_id = $2 AND id <> $3
             AND (status IN ('CONFIRMED', 'REFUND_PENDING')
                  OR (status = 'RESERVED' AND hold_expires_at > now()))"#,
        showtime_id,
        user_id,
        booking_id
    )
    .fetch_one(conn)
    .await
    .map(Some)
}

/// Sells the booking's seats to it: exactly the claims it holds, or, after its hold lapsed,
/// the seats that hold had (never seats it was moved away from, refunded or cancelled) if they
/// are free. All or none; `false` if any is taken.
async fn sell_seats(
    conn: &mut PgConnection,
    booking_id: Uuid,
    showtime_id: Uuid,
    lapsed: bool,
) -> Result<bool, sqlx::Error> {
    // Whoever else holds these seats is locked first, in id order, then the seats in seat
    // order (the lock order in `bookings`).
    let others: Vec<Uuid> = sqlx::query_scalar!(
        r#"SELECT DISTINCT ss.booking_id AS "booking_id!"
           FROM booking_seats bs
           JOIN showtime_seats ss ON ss.showtime_id = bs.showtime_id AND ss.seat_id = bs.seat_id
           WHERE bs.booking_id = $1 AND ss.booking_id IS NOT NULL AND ss.booking_id <> $1
             AND (bs.released_at IS NULL OR ($2 AND bs.release_reason = 'LAPSED'))"#,
        booking_id,
        lapsed
    )
    .fetch_all(&mut *conn)
    .await?;
    let locked_others: BTreeSet<Uuid> = sqlx::query_scalar!(
        "SELECT id FROM bookings WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &others
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .collect();
    let seats = sqlx::query!(
        r#"SELECT ss.seat_id, ss.status::text AS "status!", ss.booking_id, ss.hold_expires_at <= now() AS lapsed
           FROM booking_seats bs
           JOIN showtime_seats ss ON ss.showtime_id = bs.showtime_id AND ss.seat_id = bs.seat_id
           WHERE bs.booking_id = $1
             AND (bs.released_at IS NULL OR ($2 AND bs.release_reason = 'LAPSED'))
           ORDER BY ss.seat_id
           FOR UPDATE OF ss"#,
        booking_id,
        lapsed
    )
    .fetch_all(&mut *conn)
    .await?;
    if seats.is_empty() {
        return Ok(false);
    }
    let mut lapsed_holders = Vec::new();
    for seat in &seats {
        match (seat.status.as_str(), seat.booking_id) {
            ("AVAILABLE", _) => {}
            ("RESERVED", Some(holder)) if holder == booking_id => {}
            (_, Some(holder)) if holder != booking_id && !locked_others.contains(&holder) => {
                // The seat changed hands between the read and the locks: try again from the start.
                return Err(sqlx::Error::Protocol(
                    "a seat changed hands during the settlement".into(),
                ));
            }
            ("RESERVED", Some(holder)) if seat.lapsed == Some(true) => lapsed_holders.push(holder),
            _ => return Ok(false),
        }
    }
    if !lapsed_holders.is_empty() {
        lapsed_holders.sort_unstable();
        lapsed_holders.dedup();
        sqlx::query!(
            "UPDATE bookings SET status = 'EXPIRED' WHERE id = ANY($1) AND status = 'RESERVED'",
            &lapsed_holders
        )
        .execute(&mut *conn)
        .await?;
        holds::release_held_seats(conn, &lapsed_holders, SeatRelease::Lapsed).await?;
    }
    let seat_ids: Vec<Uuid> = seats.iter().map(|seat| seat.seat_id).collect();
    let sold = sqlx::query!(
        "UPDATE showtime_seats SET status = 'SOLD', booking_id = $2, hold_expires_at = NULL
         WHERE showtime_id = $1 AND seat_id = ANY($3)
           AND (status = 'AVAILABLE' OR (status = 'RESERVED' AND booking_id = $2))",
        showtime_id,
        booking_id,
        &seat_ids
    )
    .execute(&mut *conn)
    .await?;
    if sold.rows_affected() != seat_ids.len() as u64 {
        return Err(sqlx::Error::Protocol(
            "a locked seat changed under the settlement".into(),
        ));
    }
    // A lapsed booking's claims were released; the seats are its own again.
    sqlx::query!(
        "UPDATE booking_seats SET released_at = NULL, release_reason = NULL
         WHERE booking_id = $1 AND seat_id = ANY($2)",
        booking_id,
        &seat_ids
    )
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// An audit entry of a change made by the system itself (no user behind it).
fn system_entry(
    action: &'static str,
    payment_id: Uuid,
    before: Value,
    after: Value,
) -> AuditEntry<'static> {
    AuditEntry {
        actor_id: None,
        actor_role: None,
        action,
        resource_type: "payment",
        resource_id: payment_id.to_string(),
        ip: None,
        request_id: None,
        before: Some(before),
        after: Some(after),
    }
}

/// Records a failed attempt on a payment that is not captured (a captured one stays so).
pub async fn record_failure(
    db: &PgPool,
    payment_id: Uuid,
    source: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    let history = history_entry(PaymentStatus::Failed, source, Some(reason));
    let mut tx = db.begin().await?;
    let failed = sqlx::query!(
        "UPDATE payments SET status = 'FAILED', failure_reason = $2,
                status_history = status_history || jsonb_build_array($3::jsonb)
         WHERE id = $1 AND status IN ('CREATED', 'AUTHORIZED', 'FAILED')",
        payment_id,
        reason,
        history
    )
    .execute(&mut *tx)
    .await?;
    if failed.rows_affected() > 0 {
        crate::audit::record(
            &mut tx,
            system_entry(
                "payment.failed",
                payment_id,
                json!({}),
                json!({"reason": reason, "source": source}),
            ),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
