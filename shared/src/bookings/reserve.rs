//! The reservation transaction: every requested seat goes from free to RESERVED for the
//! booking, or none does and the booking is REJECTED with a reason.
//!
//! Why no seat can be held twice, whatever the Redis lock does (see `lock`):
//! - the seats are locked `FOR UPDATE` (in seat-id order, so two reservations cannot deadlock
//!   on each other) and re-checked after the lock is granted;
//! - each seat moves with `UPDATE ... WHERE status = 'AVAILABLE'`, and the number of rows it
//!   changed is checked: anything short of all of them aborts the transaction;
//! - the schema backs this up: one inventory row per seat holding one booking, a unique index on
//!   live claims, and triggers that refuse taking over a hold that has not expired.
//!
//! A hold past its deadline is free at once: this transaction treats such a seat as available
//! and expires the booking that held it (all of that booking's seats go back), so the sweep only
//! tidies up and never races a buyer.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{BookingStatus, RejectReason, SeatSelection};

/// What happened to a booking's reservation job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Reserved {
        showtime_id: Uuid,
        hold_expires_at: DateTime<Utc>,
        /// Bookings whose lapsed holds were expired to free the seats.
        expired: Vec<Uuid>,
    },
    Rejected {
        showtime_id: Uuid,
        reason: RejectReason,
    },
    /// A redelivered job: the booking was decided before.
    AlreadyDecided(BookingStatus),
    Missing,
}

/// The status of a booking and the lock its reservation takes: the showtime for named seats,
/// the section for best available. `None` if there is no such booking.
pub async fn lock_scope(
    db: &PgPool,
    booking_id: Uuid,
) -> Result<Option<(BookingStatus, String)>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT status AS "status: BookingStatus", showtime_id, request FROM bookings WHERE id = $1"#,
        booking_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| {
        let scope = match serde_json::from_value::<SeatSelection>(row.request) {
            Ok(SeatSelection::BestAvailable { section_id, .. }) => {
                format!("showtime:{}:section:{section_id}", row.showtime_id)
            }
            _ => format!("showtime:{}", row.showtime_id),
        };
        (row.status, scope)
    }))
}

/// Best-available picks that lose a race to a concurrent reservation are chosen again this
/// many times before the request is called sold out.
const BEST_AVAILABLE_ATTEMPTS: usize = 5;

#[tracing::instrument(skip(db))]
pub async fn reserve(
    db: &PgPool,
    booking_id: Uuid,
    hold: Duration,
) -> Result<Reservation, sqlx::Error> {
    let mut tx = db.begin().await?;
    let Some(booking) = sqlx::query!(
        r#"SELECT status AS "status: BookingStatus", user_id, showtime_id, quantity, request
           FROM bookings WHERE id = $1 FOR UPDATE"#,
        booking_id
    )
    .fetch_optional(&mut *tx)
    .await?
    else {
        return Ok(Reservation::Missing);
    };
    if booking.status != BookingStatus::Pending {
        return Ok(Reservation::AlreadyDecided(booking.status));
    }
    let showtime_id = booking.showtime_id;
    let decision = decide(
        &mut tx,
        booking_id,
        booking.user_id,
        showtime_id,
        booking.quantity,
        booking.request,
        hold,
    )
    .await?;
    let outcome = match decision {
        Ok((hold_expires_at, expired)) => Reservation::Reserved {
            showtime_id,
            hold_expires_at,
            expired,
        },
        Err(reason) => {
            sqlx::query!(
                "UPDATE bookings SET status = 'REJECTED', reject_reason = $2 WHERE id = $1",
                booking_id,
                reason as RejectReason
            )
            .execute(&mut *tx)
            .await?;
            Reservation::Rejected {
                showtime_id,
                reason,
            }
        }
    };
    tx.commit().await?;
    Ok(outcome)
}

type Decision = Result<(DateTime<Utc>, Vec<Uuid>), RejectReason>;

async fn decide(
    tx: &mut PgConnection,
    booking_id: Uuid,
    user_id: Uuid,
    showtime_id: Uuid,
    quantity: i32,
    request: serde_json::Value,
    hold: Duration,
) -> Result<Decision, sqlx::Error> {
    let Ok(selection) = serde_json::from_value::<SeatSelection>(request) else {
        return Ok(Err(RejectReason::InvalidSeats));
    };
    let showtime = sqlx::query!(
        r#"SELECT status = 'ON_SALE' AND now() >= sale_starts_at AND now() < sale_ends_at AS "on_sale!",
                  max_seats_per_user, now() + make_interval(secs => $2) AS "deadline!"
           FROM showtimes WHERE id = $1"#,
        showtime_id,
        hold.as_secs_f64()
    )
    .fetch_one(&mut *tx)
    .await?;
    if !showtime.on_sale {
        return Ok(Err(RejectReason::NotOnSale));
    }
    // One reservation per buyer and showtime at a time, so the cap cannot be raced past.
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtextextended($1::text || $2::text, 0))",
        user_id.to_string(),
        showtime_id.to_string()
    )
    .execute(&mut *tx)
    .await?;
    let owned: i64 = sqlx::query_scalar!(
        r#"SELECT coalesce(sum(quantity), 0) AS "owned!" FROM bookings
           WHERE user_id = $1 AND showtime_id = $2 AND id <> $3
             AND (status IN ('CONFIRMED', 'REFUND_PENDING')
                  OR (status = 'RESERVED' AND hold_expires_at > now()))"#,
        user_id,
        showtime_id,
        booking_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if owned + i64::from(quantity) > i64::from(showtime.max_seats_per_user) {
        return Ok(Err(RejectReason::LimitReached));
    }
    let chosen = match &selection {
        SeatSelection::Named { seat_ids } => lock_named(tx, showtime_id, seat_ids).await?,
        SeatSelection::BestAvailable {
            section_id,
            quantity,
        } => lock_best_available(tx, showtime_id, *section_id, *quantity).await?,
    };
    let seats = match chosen {
        Ok(seats) => seats,
        Err(reason) => return Ok(Err(reason)),
    };
    let expired = expire_lapsed_holders(tx, &seats).await?;
    let seat_ids: Vec<Uuid> = seats.iter().map(|seat| seat.seat_id).collect();
    let taken = sqlx::query!(
        "UPDATE showtime_seats SET status = 'RESERVED', booking_id = $3, hold_expires_at = $4
         WHERE showtime_id = $1 AND seat_id = ANY($2) AND status = 'AVAILABLE'",
        showtime_id,
        &seat_ids,
        booking_id,
        showtime.deadline
    )
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() != seat_ids.len() as u64 {
        // Cannot happen while the rows are locked; if it ever does, nothing is written.
        return Err(sqlx::Error::Protocol(format!(
            "reserved {} of {} locked seats",
            taken.rows_affected(),
            seat_ids.len()
        )));
    }
    sqlx::query!(
        "INSERT INTO booking_seats (booking_id, showtime_id, seat_id, price_paise)
         SELECT $1, ss.showtime_id, ss.seat_id, pt.price_paise
         FROM showtime_seats ss JOIN price_tiers pt ON pt.id = ss.price_tier_id
         WHERE ss.showtime_id = $2 AND ss.seat_id = ANY($3)",
        booking_id,
        showtime_id,
        &seat_ids
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE bookings SET status = 'RESERVED', hold_expires_at = $2,
             total_paise = (SELECT sum(price_paise) FROM booking_seats WHERE booking_id = $1)
         WHERE id = $1",
        booking_id,
        showtime.deadline
    )
    .execute(&mut *tx)
    .await?;
    Ok(Ok((showtime.deadline, expired)))
}

/// A seat locked for this reservation, and the booking whose lapsed hold it may carry.
struct LockedSeat {
    seat_id: Uuid,
    lapsed_holder: Option<Uuid>,
}

async fn lock_named(
    tx: &mut PgConnection,
    showtime_id: Uuid,
    seat_ids: &[Uuid],
) -> Result<Result<Vec<LockedSeat>, RejectReason>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT seat_id, status::text AS "status!", booking_id,
                  coalesce(hold_expires_at <= now(), false) AS "lapsed!"
           FROM showtime_seats
           WHERE showtime_id = $1 AND seat_id = ANY($2)
           ORDER BY seat_id
           FOR UPDATE"#,
        showtime_id,
        seat_ids
    )
    .fetch_all(&mut *tx)
    .await?;
    if rows.len() != seat_ids.len() {
        return Ok(Err(RejectReason::InvalidSeats));
    }
    let mut seats = Vec::with_capacity(rows.len());
    for row in rows {
        match row.status.as_str() {
            "AVAILABLE" => seats.push(LockedSeat {
                seat_id: row.seat_id,
                lapsed_holder: None,
            }),
            "RESERVED" if row.lapsed => seats.push(LockedSeat {
                seat_id: row.seat_id,
                lapsed_holder: row.booking_id,
            }),
            _ => return Ok(Err(RejectReason::SeatTaken)),
        }
    }
    Ok(Ok(seats))
}

struct Candidate {
    seat_id: Uuid,
    row_rank: i32,
    row_label: String,
    seat_number: i32,
}

async fn lock_best_available(
    tx: &mut PgConnection,
    showtime_id: Uuid,
    section_id: Uuid,
    quantity: u32,
) -> Result<Result<Vec<LockedSeat>, RejectReason>, sqlx::Error> {
    for _ in 0..BEST_AVAILABLE_ATTEMPTS {
        let candidates = sqlx::query_as!(
            Candidate,
            "SELECT seat_id, row_rank, row_label, seat_number FROM showtime_seats
             WHERE showtime_id = $1 AND section_id = $2
               AND (status = 'AVAILABLE' OR (status = 'RESERVED' AND hold_expires_at <= now()))
             ORDER BY row_rank, row_label, seat_number",
            showtime_id,
            section_id
        )
        .fetch_all(&mut *tx)
        .await?;
        if candidates.len() < quantity as usize {
            let exists = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM showtime_seats
                                  WHERE showtime_id = $1 AND section_id = $2) AS "exists!""#,
                showtime_id,
                section_id
            )
            .fetch_one(&mut *tx)
            .await?;
            return Ok(Err(if exists {
                RejectReason::SoldOut
            } else {
                RejectReason::InvalidSeats
            }));
        }
        let picked = best_block(&candidates, quantity as usize);
        // Lock the pick, keeping only seats still free once the lock is granted.
        let locked = sqlx::query!(
            r#"SELECT seat_id, booking_id, status = 'RESERVED' AS "lapsed!"
               FROM showtime_seats
               WHERE showtime_id = $1 AND seat_id = ANY($2)
                 AND (status = 'AVAILABLE' OR (status = 'RESERVED' AND hold_expires_at <= now()))
               ORDER BY seat_id
               FOR UPDATE"#,
            showtime_id,
            &picked
        )
        .fetch_all(&mut *tx)
        .await?;
        if locked.len() == picked.len() {
            return Ok(Ok(locked
                .into_iter()
                .map(|row| LockedSeat {
                    seat_id: row.seat_id,
                    lapsed_holder: row.booking_id.filter(|_| row.lapsed),
                })
                .collect()));
        }
        // Someone took part of the pick meanwhile; the locks we got are kept but harmless, and
        // the next pick sees the new state.
    }
    Ok(Err(RejectReason::SoldOut))
}

/// Adjacent seats in one row, in the best row that has them; failing that, the best seats.
fn best_block(candidates: &[Candidate], quantity: usize) -> Vec<Uuid> {
    let mut rows: BTreeMap<(i32, &str), Vec<&Candidate>> = BTreeMap::new();
    for candidate in candidates {
        rows.entry((candidate.row_rank, candidate.row_label.as_str()))
            .or_default()
            .push(candidate);
    }
    for seats in rows.values() {
        for window in seats.windows(quantity) {
            let adjacent = window
                .windows(2)
                .all(|pair| pair[1].seat_number == pair[0].seat_number + 1);
            if adjacent {
                return window.iter().map(|seat| seat.seat_id).collect();
            }
        }
    }
    candidates
        .iter()
        .take(quantity)
        .map(|seat| seat.seat_id)
        .collect()
}

/// Expires the bookings whose lapsed holds sit on `seats` and frees all their seats.
async fn expire_lapsed_holders(
    tx: &mut PgConnection,
    seats: &[LockedSeat],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let mut holders: Vec<Uuid> = seats.iter().filter_map(|seat| seat.lapsed_holder).collect();
    holders.sort();
    holders.dedup();
    if holders.is_empty() {
        return Ok(holders);
    }
    let expired: Vec<Uuid> = sqlx::query_scalar!(
        "UPDATE bookings SET status = 'EXPIRED'
         WHERE id = ANY($1) AND status = 'RESERVED' AND hold_expires_at <= now()
         RETURNING id",
        &holders
    )
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE showtime_seats SET status = 'AVAILABLE', booking_id = NULL, hold_expires_at = NULL
         WHERE booking_id = ANY($1) AND status = 'RESERVED'",
        &expired
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE booking_seats SET released_at = now() WHERE booking_id = ANY($1) AND released_at IS NULL",
        &expired
    )
    .execute(&mut *tx)
    .await?;
    Ok(expired)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(row_rank: i32, row: &str, number: i32) -> Candidate {
        Candidate {
            seat_id: Uuid::new_v4(),
            row_rank,
            row_label: row.into(),
            seat_number: number,
        }
    }

    #[test]
    fn adjacent_seats_in_the_best_row_win() {
        let seats = vec![
            seat(0, "A", 1),
            seat(0, "A", 3),
            seat(1, "B", 4),
            seat(1, "B", 5),
            seat(2, "C", 1),
            seat(2, "C", 2),
        ];
        let picked = best_block(&seats, 2);
        assert_eq!(picked, vec![seats[2].seat_id, seats[3].seat_id]);
    }

    #[test]
    fn without_a_block_the_best_seats_are_taken() {
        let seats = vec![seat(0, "A", 1), seat(0, "A", 3), seat(1, "B", 7)];
        assert_eq!(
            best_block(&seats, 2),
            vec![seats[0].seat_id, seats[1].seat_id]
        );
    }
}
