//! Refunds: requested by an admin (a whole booking or some of its seats), by a buyer canceling
//! a paid booking where the show's rules allow, or automatically for a payment that cannot be
//! kept; carried out by the refund job through Razorpay's refunds API.
//!
//! A request is a row first, whose id is the idempotency key Razorpay receives, so however
//! often the job runs there is one refund at Razorpay per request. Whatever reports the outcome
//! (the API's answer, a webhook, a later fetch) applies it under the refund's row lock, once.
//! A processed refund releases its seats for resale (AVAILABLE again) and voids their tickets.

use anyhow::anyhow;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    PaymentStatus, RefundStatus, SettleError, history_entry,
    razorpay::{Razorpay, RazorpayError, RefundEntity},
};
use crate::{
    accounts::Role,
    audit::{self, Actor, AuditEntry, Reason},
    bookings::{BookingStatus, changes, view::BookingView},
    core::Core,
    error::DomainError,
    jobs::Refund,
    money::Paise,
    validation::FieldError,
};

/// Who asks for a refund, which decides the rules that apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// The buyer canceling their own paid booking: only within the show's refund window.
    Buyer(Uuid),
    /// An admin: any confirmed booking, whole or by seats.
    Admin(Uuid),
}

impl Requester {
    /// A super admin asks as an admin; anyone else as a buyer.
    pub fn of(actor: &Actor) -> Self {
        if actor.role.includes(Role::SuperAdmin) {
            Self::Admin(actor.user_id)
        } else {
            Self::Buyer(actor.user_id)
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RefundView {
    pub id: Uuid,
    pub booking_id: Uuid,
    pub payment_id: Uuid,
    pub amount_paise: Paise,
    pub status: RefundStatus,
    /// The seats refunded; empty for the whole payment.
    pub seat_ids: Vec<Uuid>,
    pub reason: String,
    pub provider_refund_id: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
}

/// A refund asked for by `actor`, start to finish. A super admin may refund any confirmed
/// booking, whole or by seats; anyone else only their own, within the show's refund window.
/// The request and its audit entry are written in one transaction, then the booking's new status (REFUND_PENDING) announced, then the refund job
/// published (the sweep publishes it again if this fails). Announced before the job, so the
/// worker's later announcement of the outcome is the one that stays. Returns the request and
/// the booking as it now stands.
pub async fn request(
    core: &Core,
    actor: &Actor,
    booking_id: Uuid,
    seat_ids: &[Uuid],
    reason: &Reason,
) -> Result<(RefundView, BookingView), DomainError> {
    let requester = Requester::of(actor);
    let mut tx = core.db.begin().await?;
    let refund =
        request_for_booking(&mut tx, booking_id, seat_ids, reason.as_str(), requester).await?;
    record_request(&mut tx, actor, &refund).await?;
    tx.commit().await?;
    let view = start(core, &refund).await?;
    Ok((refund, view))
}

/// The audit entry of a refund request, in the request's transaction.
pub(crate) async fn record_request(
    tx: &mut PgConnection,
    actor: &Actor,
    refund: &RefundView,
) -> Result<(), sqlx::Error> {
    audit::record(
        tx,
        AuditEntry {
            after: Some(
                json!({"refund_id": refund.id, "amount_paise": refund.amount_paise,
                               "seat_ids": refund.seat_ids, "reason": refund.reason}),
            ),
            ..actor.entry("booking.refund_requested", "booking", refund.booking_id)
        },
    )
    .await
}

/// After a refund request committed: the booking's new status announced, then the refund job
/// published. Returns the booking as it now stands.
pub(crate) async fn start(core: &Core, refund: &RefundView) -> Result<BookingView, DomainError> {
    let view = changes::status_changed(core, refund.booking_id)
        .await?
        .ok_or(DomainError::NotFound("booking"))?;
    let job = Refund {
        refund_id: refund.id,
        event_id: None,
    };
    if let Err(error) = core.jobs.publish(&job).await {
        tracing::error!(%error, refund_id = %refund.id, "refund job not published yet; the sweep will");
    }
    Ok(view)
}

/// Asks for a refund of a confirmed booking, whole (`seat_ids` empty) or of some seats, in the
/// caller's transaction (which also records who asked). Returns the request, to be carried
/// out by a refund job after the commit.
#[tracing::instrument(skip(tx))]
pub(crate) async fn request_for_booking(
    tx: &mut PgConnection,
    booking_id: Uuid,
    seat_ids: &[Uuid],
    reason: &str,
    requester: Requester,
) -> Result<RefundView, DomainError> {
    let booking = sqlx::query!(
        r#"SELECT b.user_id, b.status AS "status: BookingStatus", st.starts_at, sh.refund_cutoff_hours
           FROM bookings b
           JOIN showtimes st ON st.id = b.showtime_id
           JOIN events e ON e.id = st.event_id
           JOIN shows sh ON sh.id = e.show_id
           WHERE b.id = $1 FOR UPDATE OF b"#,
        booking_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .filter(|booking| match requester {
        Requester::Buyer(user_id) => booking.user_id == user_id,
        Requester::Admin(_) => true,
    })
    .ok_or(DomainError::NotFound("booking"))?;
    if booking.status != BookingStatus::Confirmed {
        return Err(DomainError::conflict(
            "NOT_REFUNDABLE",
            format!("a {:?} booking cannot be refunded", booking.status),
        ));
    }
    if let Requester::Buyer(_) = requester {
        let Some(hours) = booking.refund_cutoff_hours else {
            return Err(DomainError::conflict(
                "NOT_REFUNDABLE",
                "this show does not refund cancellations",
            ));
        };
        if Utc::now() > booking.starts_at - chrono::Duration::hours(i64::from(hours)) {
            return Err(DomainError::conflict(
                "REFUND_WINDOW_CLOSED",
                format!("cancellations are refunded until {hours} hours before the show"),
            ));
        }
    }
    let payment = sqlx::query!(
        r#"SELECT id, amount_paise AS "amount_paise: Paise",
                  refunded_paise AS "refunded_paise: Paise"
           FROM payments WHERE booking_id = $1 AND status = 'CAPTURED' FOR UPDATE"#,
        booking_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| {
        DomainError::conflict("NOT_PAID", "this booking has no captured payment to refund")
    })?;
    let open = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM refunds WHERE payment_id = $1 AND status IN ('REQUESTED', 'PENDING')) AS "open!""#,
        payment.id
    )
    .fetch_one(&mut *tx)
    .await?;
    if open {
        return Err(DomainError::conflict(
            "REFUND_IN_PROGRESS",
            "a refund of this booking is under way",
        ));
    }
    let live: Vec<(Uuid, Paise)> = sqlx::query!(
        r#"SELECT seat_id, price_paise AS "price_paise: Paise" FROM booking_seats
           WHERE booking_id = $1 AND released_at IS NULL"#,
        booking_id
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| (row.seat_id, row.price_paise))
    .collect();
    let mut wanted: Vec<Uuid> = seat_ids.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    if wanted.len() != seat_ids.len() {
        return Err(FieldError::new("seat_ids", "a seat is listed twice").into());
    }
    if let Some(unknown) = wanted
        .iter()
        .find(|seat| !live.iter().any(|(id, _)| id == *seat))
    {
        return Err(FieldError::new(
            "seat_ids",
            format!("seat {unknown} is not a live seat of this booking"),
        )
        .into());
    }
    let whole = wanted.is_empty() || wanted.len() == live.len();
    let (amount, stored_seats) = if whole {
        (
            payment.amount_paise.saturating_sub(payment.refunded_paise),
            Vec::new(),
        )
    } else {
        let amount = live
            .iter()
            .filter(|(id, _)| wanted.contains(id))
            .map(|(_, price)| *price)
            .sum();
        (amount, wanted)
    };
    if amount == Paise::ZERO {
        return Err(DomainError::conflict(
            "NOTHING_TO_REFUND",
            "these seats cost nothing",
        ));
    }
    if whole {
        sqlx::query!(
            "UPDATE bookings SET status = 'REFUND_PENDING' WHERE id = $1",
            booking_id
        )
        .execute(&mut *tx)
        .await?;
    }
    let requested_by = match requester {
        Requester::Buyer(id) | Requester::Admin(id) => id,
    };
    Ok(insert(
        tx,
        payment.id,
        booking_id,
        amount,
        &stored_seats,
        reason,
        Some(requested_by),
    )
    .await?)
}

/// Asks for a refund of everything left of a payment, inside the caller's transaction (a payment
/// the booking cannot keep).
pub(crate) async fn request_whole(
    conn: &mut PgConnection,
    payment_id: Uuid,
    booking_id: Uuid,
    reason: &str,
) -> Result<Uuid, sqlx::Error> {
    let amount = sqlx::query_scalar!(
        r#"SELECT amount_paise - refunded_paise AS "left: Paise" FROM payments WHERE id = $1"#,
        payment_id
    )
    .fetch_one(&mut *conn)
    .await?
    .unwrap_or_default();
    Ok(
        insert(conn, payment_id, booking_id, amount, &[], reason, None)
            .await?
            .id,
    )
}

async fn insert(
    conn: &mut PgConnection,
    payment_id: Uuid,
    booking_id: Uuid,
    amount: Paise,
    seat_ids: &[Uuid],
    reason: &str,
    requested_by: Option<Uuid>,
) -> Result<RefundView, sqlx::Error> {
    sqlx::query_as!(
        RefundView,
        r#"INSERT INTO refunds (payment_id, booking_id, amount_paise, seat_ids, reason, requested_by)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id, booking_id, payment_id, amount_paise AS "amount_paise: Paise",
                     status AS "status: RefundStatus", seat_ids, reason, provider_refund_id,
                     failure_reason, created_at, processed_at"#,
        payment_id,
        booking_id,
        amount.get(),
        seat_ids,
        reason,
        requested_by
    )
    .fetch_one(conn)
    .await
}

/// What carrying out a refund came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Razorpay refunded it; seats released (if any) for this showtime.
    Processed { booking_id: Uuid, showtime_id: Uuid },
    /// Razorpay refused or failed it; a whole booking's refund leaves it CONFIRMED again.
    Failed { booking_id: Uuid },
    /// Razorpay is still processing it; its webhook will tell.
    Pending,
    /// Applied before.
    AlreadyDone,
}

/// Brings a refund request in line with Razorpay: asks for it if not asked yet (idempotently),
/// or reads where it stands, then applies the outcome once.
///
/// Nothing is recorded FAILED on a guess. "Not now" answers (409 while another run of the same
/// request is being processed, 429, 5xx, 401 while keys rotate) and timeouts are retried. A
/// refusal is checked first against the refunds Razorpay holds for the payment, in case an
/// earlier run's refund went through and only its answer was lost. A FAILED refund is read
/// back whenever a job runs for it (a `refund.processed` webhook), and becomes PROCESSED if
/// Razorpay says so.
#[tracing::instrument(skip(db, razorpay))]
pub async fn carry_out(
    db: &PgPool,
    razorpay: &Razorpay,
    refund_id: Uuid,
) -> Result<RefundOutcome, SettleError> {
    let refund = sqlx::query!(
        r#"SELECT r.status AS "status: RefundStatus", r.amount_paise AS "amount_paise: Paise",
                  r.booking_id, r.provider_refund_id, p.provider_payment_id
           FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1"#,
        refund_id
    )
    .fetch_optional(db)
    .await?
    .ok_or_else(|| SettleError::Permanent(anyhow!("no such refund request")))?;
    if refund.status == RefundStatus::Processed {
        return Ok(RefundOutcome::AlreadyDone);
    }
    let payment_id = refund
        .provider_payment_id
        .ok_or_else(|| SettleError::Permanent(anyhow!("the payment was never captured")))?;
    let ours = refund_id.to_string();
    if refund.status == RefundStatus::Failed {
        let entity = match &refund.provider_refund_id {
            Some(provider_refund_id) => Some(razorpay.fetch_refund(provider_refund_id).await?),
            None => made_for(razorpay, &payment_id, &ours).await?,
        };
        return match entity {
            Some(entity) if entity.status == "processed" => {
                finish(db, refund_id, Some(&entity.id), Ok(())).await
            }
            _ => Ok(RefundOutcome::AlreadyDone),
        };
    }
    let entity = match &refund.provider_refund_id {
        Some(provider_refund_id) => razorpay.fetch_refund(provider_refund_id).await?,
        None => {
            let notes = json!({"refund_id": refund_id, "booking_id": refund.booking_id});
            match razorpay
                .refund(&payment_id, refund.amount_paise, &ours, notes)
                .await
            {
                Ok(entity) => entity,
                Err(RazorpayError::Refused { description, .. }) => {
                    match made_for(razorpay, &payment_id, &ours).await? {
                        Some(entity) => entity,
                        None => return finish(db, refund_id, None, Err(description)).await,
                    }
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    match entity.status.as_str() {
        "processed" => finish(db, refund_id, Some(&entity.id), Ok(())).await,
        "failed" => {
            finish(
                db,
                refund_id,
                Some(&entity.id),
                Err("Razorpay failed the refund".into()),
            )
            .await
        }
        _ => {
            // Touched even while it stays pending, so the sweep asks again only later.
            sqlx::query!(
                "UPDATE refunds SET status = 'PENDING', provider_refund_id = $2, updated_at = now()
                 WHERE id = $1 AND status IN ('REQUESTED', 'PENDING')",
                refund_id,
                entity.id
            )
            .execute(db)
            .await?;
            Ok(RefundOutcome::Pending)
        }
    }
}

/// The refund Razorpay made for our request `refund_id`, if it made one.
async fn made_for(
    razorpay: &Razorpay,
    payment_id: &str,
    refund_id: &str,
) -> Result<Option<RefundEntity>, RazorpayError> {
    Ok(razorpay
        .payment_refunds(payment_id)
        .await?
        .into_iter()
        .find(|entity| entity.answers(refund_id)))
}

/// Applies a final outcome under the refund's row lock: once, whoever gets there first.
async fn finish(
    db: &PgPool,
    refund_id: Uuid,
    provider_refund_id: Option<&str>,
    outcome: Result<(), String>,
) -> Result<RefundOutcome, SettleError> {
    let mut tx = db.begin().await?;
    let refund = sqlx::query!(
        r#"SELECT r.status AS "status: RefundStatus", r.payment_id, r.booking_id, r.amount_paise, r.seat_ids,
                  b.showtime_id, b.status AS "booking_status: BookingStatus"
           FROM refunds r JOIN bookings b ON b.id = r.booking_id
           WHERE r.id = $1 FOR UPDATE OF r, b"#,
        refund_id
    )
    .fetch_one(&mut *tx)
    .await?;
    // Applied once; only Razorpay's word that a refund was processed moves a FAILED one on.
    let next = if outcome.is_ok() {
        RefundStatus::Processed
    } else {
        RefundStatus::Failed
    };
    if refund.status == next || !refund.status.can_move_to(next) {
        return Ok(RefundOutcome::AlreadyDone);
    }
    if let Err(reason) = outcome {
        sqlx::query!(
            "UPDATE refunds SET status = 'FAILED', failure_reason = $2,
                    provider_refund_id = coalesce($3, provider_refund_id)
             WHERE id = $1",
            refund_id,
            reason,
            provider_refund_id
        )
        .execute(&mut *tx)
        .await?;
        crate::audit::record(
            &mut tx,
            refund_entry("refund.failed", refund_id, json!({"reason": reason})),
        )
        .await?;
        if refund.seat_ids.is_empty() && refund.booking_status == BookingStatus::RefundPending {
            sqlx::query!(
                "UPDATE bookings SET status = 'CONFIRMED' WHERE id = $1",
                refund.booking_id
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        return Ok(RefundOutcome::Failed {
            booking_id: refund.booking_id,
        });
    }
    sqlx::query!(
        "UPDATE refunds SET status = 'PROCESSED', processed_at = now(),
                provider_refund_id = coalesce($2, provider_refund_id)
         WHERE id = $1",
        refund_id,
        provider_refund_id
    )
    .execute(&mut *tx)
    .await?;
    let history = history_entry(
        PaymentStatus::Refunded,
        "refund",
        Some(&refund_id.to_string()),
    );
    // Razorpay never pays back more than was captured, so our books cannot either. Should they
    // disagree (a refund recorded FAILED, a second one asked for, then the first reported
    // processed after all), the payment is counted refunded in full and the gap is put in the
    // audit log for a person, rather than the job failing on the constraint forever.
    let left = sqlx::query_scalar!(
        "SELECT amount_paise - refunded_paise FROM payments WHERE id = $1 FOR UPDATE",
        refund.payment_id
    )
    .fetch_one(&mut *tx)
    .await?
    .unwrap_or_default();
    if refund.amount_paise > left {
        tracing::error!(%refund_id, amount = refund.amount_paise, left, "a processed refund exceeds what was left of its payment");
        crate::audit::record(
            &mut tx,
            refund_entry(
                "refund.exceeds_payment",
                refund_id,
                json!({"amount_paise": refund.amount_paise, "left_paise": left}),
            ),
        )
        .await?;
    }
    sqlx::query!(
        "UPDATE payments SET refunded_paise = refunded_paise + $2,
                status = CASE WHEN refunded_paise + $2 = amount_paise THEN 'REFUNDED'::payment_status ELSE status END,
                status_history = CASE WHEN refunded_paise + $2 = amount_paise
                                      THEN status_history || jsonb_build_array($3::jsonb) ELSE status_history END
         WHERE id = $1",
        refund.payment_id,
        refund.amount_paise.min(left),
        history
    )
    .execute(&mut *tx)
    .await?;
    // Only a paid booking's seats go with its money. A payment the booking could not keep (a
    // late one, a wrong amount) never bought the seats, whatever the booking holds.
    if matches!(
        refund.booking_status,
        BookingStatus::Confirmed | BookingStatus::RefundPending
    ) {
        release_sold_seats(
            &mut tx,
            refund.booking_id,
            refund.showtime_id,
            &refund.seat_ids,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(RefundOutcome::Processed {
        booking_id: refund.booking_id,
        showtime_id: refund.showtime_id,
    })
}

/// An audit entry of a refund's outcome, reported by Razorpay rather than made by a user.
fn refund_entry(
    action: &'static str,
    refund_id: Uuid,
    after: serde_json::Value,
) -> crate::audit::AuditEntry<'static> {
    crate::audit::AuditEntry {
        actor_id: None,
        actor_role: None,
        action,
        resource_type: "refund",
        resource_id: refund_id.to_string(),
        ip: None,
        request_id: None,
        before: None,
        after: Some(after),
    }
}

/// Puts refunded seats back on sale and voids their tickets; a booking left with no seats ends
/// REFUNDED. `seat_ids` empty means all of the booking's seats.
async fn release_sold_seats(
    conn: &mut PgConnection,
    booking_id: Uuid,
    showtime_id: Uuid,
    seat_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    let released = sqlx::query_scalar!(
        "UPDATE booking_seats SET released_at = now(), release_reason = 'REFUNDED'
         WHERE booking_id = $1 AND released_at IS NULL AND (cardinality($2::uuid[]) = 0 OR seat_id = ANY($2))
         RETURNING seat_id",
        booking_id,
        seat_ids
    )
    .fetch_all(&mut *conn)
    .await?;
    // Seats locked in seat order, as everywhere (the lock order in `bookings`).
    sqlx::query!(
        "WITH refunded AS (
             SELECT seat_id FROM showtime_seats
             WHERE showtime_id = $1 AND booking_id = $2 AND seat_id = ANY($3)
             ORDER BY seat_id
             FOR UPDATE
         )
         UPDATE showtime_seats AS s
         SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
         FROM refunded WHERE s.showtime_id = $1 AND s.seat_id = refunded.seat_id",
        showtime_id,
        booking_id,
        &released
    )
    .execute(&mut *conn)
    .await?;
    crate::bookings::tickets::void(conn, booking_id, &released).await?;
    let remaining = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM booking_seats WHERE booking_id = $1 AND released_at IS NULL"#,
        booking_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if remaining == 0 {
        // CONFIRMED -> REFUND_PENDING -> REFUNDED: a refund of the last seats ends the booking.
        sqlx::query!(
            "UPDATE bookings SET status = 'REFUND_PENDING' WHERE id = $1 AND status = 'CONFIRMED'",
            booking_id
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!(
            "UPDATE bookings SET status = 'REFUNDED' WHERE id = $1",
            booking_id
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The refunds of a booking, newest first.
pub async fn of_booking(db: &PgPool, booking_id: Uuid) -> Result<Vec<RefundView>, sqlx::Error> {
    sqlx::query_as!(
        RefundView,
        r#"SELECT id, booking_id, payment_id, amount_paise AS "amount_paise: Paise",
                  status AS "status: RefundStatus", seat_ids, reason, provider_refund_id,
                  failure_reason, created_at, processed_at
           FROM refunds WHERE booking_id = $1 ORDER BY created_at DESC"#,
        booking_id
    )
    .fetch_all(db)
    .await
}

/// Refund requests still open `older_than` after their last change: their job was never
/// published, or their outcome never reported. The sweep runs them again.
pub async fn stale_open(
    db: &PgPool,
    older_than: std::time::Duration,
    limit: i64,
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT f.id AS "id!" FROM refunds f
           LEFT JOIN republished_jobs r ON r.kind = $3 AND r.job_id = f.id
          WHERE f.status IN ('REQUESTED', 'PENDING') AND f.updated_at < now() - make_interval(secs => $1)
            AND (r.job_id IS NULL
                 OR r.republished_at < now() - make_interval(secs => $1 * power(2, least(r.times, 6))))
          ORDER BY f.updated_at LIMIT $2"#,
        older_than.as_secs_f64(),
        limit,
        <crate::jobs::Refund as crate::jobs::Job>::NAME
    )
    .fetch_all(db)
    .await
}
