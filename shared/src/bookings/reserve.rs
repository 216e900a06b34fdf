//! The reservation transaction: for each booking of a batch, every requested seat goes from
//! free to RESERVED for it, or none does and it is REJECTED with a reason.
//!
//! A batch is decided in one transaction whose number of statements does not grow with its
//! size: bookings are read and locked together, seats are allocated in memory in the order the
//! bookings arrived, then written with set-based statements. That is what lets one worker keep
//! up with an on-sale: the cost of a commit and of each round trip is shared by the batch.
//!
//! Why no seat can be held twice, whatever the Redis lock does (see `lock`):
//! - every allocated seat is locked `FOR UPDATE` in one statement, in seat-id order (so two
//!   batches cannot deadlock on seats), and only if it is still free once the lock is granted;
//!   if any is not, the allocation is made again from fresh data (up to a few times);
//! - seats move with `UPDATE ... WHERE status = 'AVAILABLE'`, and the number of rows changed is
//!   checked: anything short aborts the whole transaction;
//! - the schema backs this up: one inventory row per seat holding one booking, a unique index on
//!   live claims, and triggers that refuse taking over a hold that has not expired.
//!
//! A hold past its deadline is free at once: a seat under a lapsed hold counts as available, and
//! the booking that held it is expired in the same transaction (all its seats go back), so the
//! sweep only tidies up and never races a buyer.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    BookingStatus, RejectReason, SeatSelection,
    holds::{SeatRelease, release_held_seats},
    planner::{self, FreeSeat, NamedSeat, Pending, Plan, Seats},
    view::BookingView,
};
use crate::jobs::{NewBooking, ReservationScope};

/// What happened to one booking's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    Reserved {
        showtime_id: Uuid,
        hold_expires_at: DateTime<Utc>,
    },
    Rejected {
        showtime_id: Uuid,
        reason: RejectReason,
    },
    /// A redelivered job: the booking was decided before.
    AlreadyDecided(BookingStatus),
    Missing,
}

/// Allocations that lose a race to a concurrent writer are made again this many times before
/// the transaction gives up (and the jobs are retried).
const ALLOCATION_ATTEMPTS: usize = 5;

/// Where a booking is, for a reservation job that does not say. `None` if there is no such
/// booking.
pub async fn lock_scope(
    db: &PgPool,
    booking_id: Uuid,
) -> Result<Option<ReservationScope>, sqlx::Error> {
    let row = sqlx::query!(
        "SELECT showtime_id, request FROM bookings WHERE id = $1",
        booking_id
    )
    .fetch_optional(db)
    .await?;
    Ok(row.map(|row| ReservationScope {
        showtime_id: row.showtime_id,
        section_id: serde_json::from_value::<SeatSelection>(row.request)
            .ok()
            .and_then(|selection| selection.section_id()),
    }))
}

/// The decisions of a batch, in the order the bookings were given.
#[derive(Debug, Clone, Default)]
pub struct Decisions {
    pub outcomes: Vec<(Uuid, Reservation)>,
    /// The bookings rejected, as their owners see them: written by the statement that
    /// rejected them, so announcing them costs no read.
    pub rejected: Vec<BookingView>,
    /// Other bookings whose lapsed holds were expired to free seats for this batch.
    pub expired: Vec<Uuid>,
    /// Showtimes whose seats changed.
    pub showtimes: BTreeSet<Uuid>,
    /// Sections this batch left without a free seat, each with the moment that may change
    /// by itself (its earliest hold lapsing): until then best-available requests for it can be
    /// turned away without reading a seat.
    pub sold_out: Vec<(Uuid, DateTime<Utc>)>,
    /// The same for the whole showtime, once a request for named seats found it full: until
    /// then named seats can be turned away (SEAT_TAKEN) without reading them.
    pub full_until: Option<DateTime<Utc>>,
}

/// Longest a section is taken for sold out without looking again: seats also come back when a
/// hold is canceled or a booking refunded, which the worker is not told of.
const SOLD_OUT_RECHECK: Duration = Duration::from_secs(1);

/// Decides every booking of `requests` in one transaction, recording first those that carry
/// their request (accepted by the API without a row). Bookings are served in the order given.
#[tracing::instrument(skip(db, requests), fields(batch = requests.len()))]
///
/// `known_full`: the batch's scope is known to have no free seat (`Decisions::sold_out` or
/// `full_until` of an earlier batch): its requests are all rejected with this reason
/// (SOLD_OUT for a section's best available, SEAT_TAKEN for named seats) without reading a
/// seat, in as few statements as the batch allows.
pub async fn reserve_batch(
    db: &PgPool,
    requests: &[(Uuid, Option<NewBooking>)],
    hold: Duration,
    known_full: Option<RejectReason>,
) -> Result<Decisions, sqlx::Error> {
    let booking_ids: Vec<Uuid> = requests.iter().map(|(id, _)| *id).collect();
    let booking_ids = booking_ids.as_slice();
    let mut tx = db.begin().await?;
    if let Some(reason) = known_full {
        let decisions = reject_all(&mut tx, requests, reason).await?;
        tx.commit().await?;
        return Ok(decisions);
    }
    record(&mut tx, requests).await?;
    let rows = sqlx::query!(
        r#"SELECT id, status AS "status: BookingStatus", user_id, showtime_id, quantity, request,
                  created_by IS NOT NULL AS "manual!"
           FROM bookings WHERE id = ANY($1) ORDER BY id FOR UPDATE"#,
        booking_ids
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut found: HashMap<Uuid, _> = rows.into_iter().map(|row| (row.id, row)).collect();
    let mut outcomes: HashMap<Uuid, Reservation> = HashMap::new();
    let mut by_showtime: BTreeMap<Uuid, Vec<Pending>> = BTreeMap::new();
    for id in booking_ids {
        let Some(row) = found.remove(id) else {
            outcomes.entry(*id).or_insert(Reservation::Missing);
            continue;
        };
        if row.status != BookingStatus::Pending {
            outcomes.insert(*id, Reservation::AlreadyDecided(row.status));
            continue;
        }
        let selection = serde_json::from_value::<SeatSelection>(row.request).ok();
        by_showtime
            .entry(row.showtime_id)
            .or_default()
            .push(Pending {
                id: row.id,
                user_id: row.user_id,
                quantity: i64::from(row.quantity),
                selection,
                manual: row.manual,
            });
    }
    let mut decisions = Decisions::default();
    for (showtime_id, pending) in by_showtime {
        let decided = decide_showtime(&mut tx, showtime_id, &pending, hold).await?;
        if decided
            .outcomes
            .iter()
            .any(|(_, outcome)| matches!(outcome, Reservation::Reserved { .. }))
        {
            decisions.showtimes.insert(showtime_id);
        }
        outcomes.extend(decided.outcomes);
        decisions.expired.extend(decided.expired);
        decisions.rejected.extend(decided.rejected);
        decisions.sold_out.extend(decided.sold_out);
        decisions.full_until = decisions.full_until.or(decided.full_until);
    }
    tx.commit().await?;
    decisions.outcomes = booking_ids
        .iter()
        .map(|id| (*id, outcomes.remove(id).unwrap_or(Reservation::Missing)))
        .collect();
    Ok(decisions)
}

/// Records the bookings the API accepted without a row, with their idempotency keys, unless
/// recorded before (a redelivered job, a replay): idempotent on the booking id. A booking whose
/// key was recorded for another request is not recorded: that request, not this one, is the
/// key's, and this job reserves nothing.
async fn record(
    tx: &mut PgConnection,
    requests: &[(Uuid, Option<NewBooking>)],
) -> Result<(), sqlx::Error> {
    let mut seen = HashSet::new();
    let new: Vec<(Uuid, &NewBooking)> = requests
        .iter()
        .filter_map(|(id, request)| request.as_ref().map(|request| (*id, request)))
        .filter(|(id, _)| seen.insert(*id))
        .collect();
    if new.is_empty() {
        return Ok(());
    }
    let column = |f: &dyn Fn(&(Uuid, &NewBooking)) -> String| new.iter().map(f).collect::<Vec<_>>();
    sqlx::query!(
        r#"WITH incoming AS (
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::jsonb[], $5::int[],
                                    $6::text[], $7::text[], $8::timestamptz[])
                   AS t (id, user_id, showtime_id, request, quantity, key, fingerprint, accepted_at)
           ),
           keys AS (
               INSERT INTO idempotency_keys
                   (user_id, key, request_fingerprint, response_status, response_body, created_at)
               SELECT user_id, key, fingerprint, 202, jsonb_build_object('booking_id', id), accepted_at
               FROM incoming
               ON CONFLICT (user_id, key) DO NOTHING
           )
           INSERT INTO bookings (id, user_id, showtime_id, request, quantity, created_at)
           SELECT id, user_id, showtime_id, request, quantity, accepted_at FROM incoming
           -- A showtime deleted since (it had no booking then) has nothing left to book.
           WHERE EXISTS (SELECT 1 FROM showtimes st WHERE st.id = incoming.showtime_id)
             AND NOT EXISTS (
               SELECT 1 FROM idempotency_keys k
               WHERE k.user_id = incoming.user_id AND k.key = incoming.key
                 AND k.request_fingerprint <> incoming.fingerprint)
           ON CONFLICT (id) DO NOTHING"#,
        &new.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        &new.iter().map(|(_, r)| r.user_id).collect::<Vec<_>>(),
        &new.iter().map(|(_, r)| r.showtime_id).collect::<Vec<_>>(),
        &new
            .iter()
            .map(|(_, r)| serde_json::to_value(&r.selection).unwrap_or_default())
            .collect::<Vec<_>>(),
        &new
            .iter()
            .map(|(_, r)| i32::try_from(r.selection.quantity()).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
        &column(&|(_, r)| r.idempotency_key.clone()),
        &column(&|(_, r)| r.fingerprint.clone()),
        &new.iter().map(|(_, r)| r.accepted_at).collect::<Vec<_>>()
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn decide_showtime(
    tx: &mut PgConnection,
    showtime_id: Uuid,
    pending: &[Pending],
    hold: Duration,
) -> Result<Decisions, sqlx::Error> {
    let rejected = |id: Uuid, reason| {
        (
            id,
            Reservation::Rejected {
                showtime_id,
                reason,
            },
        )
    };
    let showtime = sqlx::query!(
        r#"SELECT status = 'ON_SALE' AND now() >= sale_starts_at AND now() < sale_ends_at AS "on_sale!",
                  status IN ('CANCELED', 'COMPLETED') AS "closed!",
                  max_seats_per_user, now() + make_interval(secs => $2) AS "deadline!"
           FROM showtimes WHERE id = $1"#,
        showtime_id,
        hold.as_secs_f64()
    )
    .fetch_one(&mut *tx)
    .await?;
    // Outside its sale, a showtime takes only the bookings an admin makes; once canceled or
    // over, none.
    let mut rejected_views = Vec::new();
    let mut not_on_sale = Vec::new();
    let pending_on_sale: Vec<Pending>;
    let pending = if showtime.on_sale {
        pending
    } else {
        not_on_sale = pending
            .iter()
            .filter(|p| !p.manual || showtime.closed)
            .map(|p| rejected(p.id, RejectReason::NotOnSale))
            .collect();
        rejected_views.extend(write_rejections(tx, &not_on_sale).await?);
        pending_on_sale = pending
            .iter()
            .filter(|p| p.manual && !showtime.closed)
            .cloned()
            .collect();
        if pending_on_sale.is_empty() {
            return Ok(Decisions {
                outcomes: not_on_sale,
                rejected: rejected_views,
                ..Decisions::default()
            });
        }
        &pending_on_sale
    };
    let users: Vec<Uuid> = pending
        .iter()
        .map(|p| p.user_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // One reservation per buyer and showtime at a time, so the cap cannot be raced past.
    // Taken in hash order, the same in every transaction, so they cannot deadlock.
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(h) FROM (
             SELECT DISTINCT hashtextextended(u::text || $2::text, 0) AS h FROM unnest($1::uuid[]) AS u
         ) AS keys ORDER BY h",
        &users,
        showtime_id.to_string()
    )
    .execute(&mut *tx)
    .await?;
    let pending_ids: Vec<Uuid> = pending.iter().map(|p| p.id).collect();
    let owned: HashMap<Uuid, i64> = sqlx::query!(
        r#"SELECT user_id, coalesce(sum(quantity), 0) AS "owned!" FROM bookings
           WHERE showtime_id = $1 AND user_id = ANY($2) AND NOT (id = ANY($3))
             AND (status IN ('CONFIRMED', 'REFUND_PENDING')
                  OR (status = 'RESERVED' AND hold_expires_at > now()))
           GROUP BY user_id"#,
        showtime_id,
        &users,
        &pending_ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| (row.user_id, row.owned))
    .collect();

    for _ in 0..ALLOCATION_ATTEMPTS {
        let seats = read_seats(tx, showtime_id, pending).await?;
        let plan = planner::plan(pending, &seats, &owned, showtime.max_seats_per_user);
        let wanted: Vec<Uuid> = plan.assigned.keys().copied().collect();
        sqlx::query!("SAVEPOINT allocation")
            .execute(&mut *tx)
            .await?;
        // The lapsed holds to take over are locked before their seats (the lock order in `bookings`).
        let holders: Vec<Uuid> = plan.lapsed_holders.iter().copied().collect();
        if !holders.is_empty() {
            sqlx::query!(
                "SELECT id FROM bookings WHERE id = ANY($1) ORDER BY id FOR UPDATE",
                &holders
            )
            .fetch_all(&mut *tx)
            .await?;
        }
        let locked = sqlx::query!(
            "SELECT seat_id, booking_id FROM showtime_seats
             WHERE showtime_id = $1 AND seat_id = ANY($2)
               AND (status = 'AVAILABLE' OR (status = 'RESERVED' AND hold_expires_at <= now()))
             ORDER BY seat_id
             FOR UPDATE",
            showtime_id,
            &wanted
        )
        .fetch_all(&mut *tx)
        .await?;
        let holders_known = locked.iter().all(|seat| {
            seat.booking_id
                .is_none_or(|holder| plan.lapsed_holders.contains(&holder))
        });
        if locked.len() != wanted.len() || !holders_known {
            // A concurrent writer took some of them between reading and locking: look again.
            sqlx::query!("ROLLBACK TO SAVEPOINT allocation")
                .execute(&mut *tx)
                .await?;
            continue;
        }
        let expired = expire_lapsed_holders(tx, &plan.lapsed_holders).await?;
        apply(tx, showtime_id, &plan, showtime.deadline).await?;
        if pending.iter().any(|p| p.manual) {
            let reserved: Vec<Uuid> = plan.assigned.values().copied().collect();
            confirm_comps(tx, &reserved).await?;
        }
        let turned_away: Vec<(Uuid, Reservation)> = plan
            .rejected
            .iter()
            .map(|(id, reason)| rejected(*id, *reason))
            .collect();
        rejected_views.extend(write_rejections(tx, &turned_away).await?);
        let mut decided = not_on_sale;
        decided.extend(turned_away);
        let reserved_ids: BTreeSet<Uuid> = plan.assigned.values().copied().collect();
        decided.extend(reserved_ids.into_iter().map(|id| {
            (
                id,
                Reservation::Reserved {
                    showtime_id,
                    hold_expires_at: showtime.deadline,
                },
            )
        }));
        let sold_out = sold_out_until(tx, showtime_id, &plan.exhausted).await?;
        let seat_taken = plan
            .rejected
            .iter()
            .any(|(_, reason)| *reason == RejectReason::SeatTaken);
        let full_until = if seat_taken {
            full_until(tx, showtime_id).await?
        } else {
            None
        };
        return Ok(Decisions {
            outcomes: decided,
            rejected: rejected_views,
            expired,
            sold_out,
            full_until,
            ..Decisions::default()
        });
    }
    Err(sqlx::Error::Protocol(
        "seats kept changing under the allocation; the batch will be retried".into(),
    ))
}

/// The seats the batch's plan needs: those asked for by name, and the best free seats of each
/// section asked for best available (only as many as the batch could use, plus slack to find
/// adjacent blocks).
async fn read_seats(
    tx: &mut PgConnection,
    showtime_id: Uuid,
    pending: &[Pending],
) -> Result<Seats, sqlx::Error> {
    let named: Vec<Uuid> = pending
        .iter()
        .filter_map(|p| p.selection.as_ref())
        .flat_map(|selection| selection.named_seats().iter().copied())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let named = sqlx::query!(
        r#"SELECT seat_id,
                  status = 'AVAILABLE' OR (status = 'RESERVED' AND hold_expires_at <= now()) AS "free!",
                  CASE WHEN status = 'RESERVED' THEN booking_id END AS lapsed_holder
           FROM showtime_seats WHERE showtime_id = $1 AND seat_id = ANY($2)"#,
        showtime_id,
        &named
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| {
        (
            row.seat_id,
            NamedSeat {
                free: row.free,
                lapsed_holder: row.lapsed_holder.filter(|_| row.free),
            },
        )
    })
    .collect();
    let mut seats = Seats {
        named,
        ..Seats::default()
    };
    let mut wanted_per_section: BTreeMap<Uuid, i64> = BTreeMap::new();
    for p in pending {
        if let Some(SeatSelection::BestAvailable {
            section_id,
            quantity,
        }) = &p.selection
        {
            *wanted_per_section.entry(*section_id).or_default() += i64::from(*quantity);
        }
    }
    for (section_id, wanted) in &wanted_per_section {
        let limit = wanted * 4 + 200;
        let free: Vec<FreeSeat> = sqlx::query!(
            r#"SELECT seat_id, row_rank, row_label, seat_number,
                      CASE WHEN status = 'RESERVED' THEN booking_id END AS lapsed_holder
               FROM showtime_seats
               WHERE showtime_id = $1 AND section_id = $2
                 AND (status = 'AVAILABLE' OR (status = 'RESERVED' AND hold_expires_at <= now()))
               ORDER BY row_rank, row_label, seat_number
               LIMIT $3"#,
            showtime_id,
            section_id,
            limit
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|row| FreeSeat {
            seat_id: row.seat_id,
            row_rank: row.row_rank,
            row_label: row.row_label,
            seat_number: row.seat_number,
            lapsed_holder: row.lapsed_holder,
        })
        .collect();
        if (free.len() as i64) < limit {
            seats.read_whole.insert(*section_id);
        }
        seats.free_by_section.insert(*section_id, free);
    }
    Ok(seats)
}

/// How long each exhausted section may be taken for sold out: until its earliest hold lapses
/// (that seat is then free at once), and at most [`SOLD_OUT_RECHECK`].
async fn sold_out_until(
    tx: &mut PgConnection,
    showtime_id: Uuid,
    sections: &[Uuid],
) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    if sections.is_empty() {
        return Ok(Vec::new());
    }
    let recheck = Utc::now()
        + chrono::Duration::from_std(SOLD_OUT_RECHECK).unwrap_or(chrono::Duration::seconds(1));
    let next_lapse: HashMap<Uuid, DateTime<Utc>> = sqlx::query!(
        r#"SELECT section_id, min(hold_expires_at) AS "next!" FROM showtime_seats
           WHERE showtime_id = $1 AND section_id = ANY($2) AND status = 'RESERVED'
           GROUP BY section_id"#,
        showtime_id,
        sections
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| (row.section_id, row.next))
    .collect();
    Ok(sections
        .iter()
        .map(|section| {
            let until = next_lapse
                .get(section)
                .map_or(recheck, |lapse| (*lapse).min(recheck));
            (*section, until)
        })
        .collect())
}

/// If the showtime has no free seat (as this transaction sees it), until when that may be
/// taken for granted: its earliest hold lapsing, at most [`SOLD_OUT_RECHECK`] from now.
async fn full_until(
    tx: &mut PgConnection,
    showtime_id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let seats = sqlx::query!(
        r#"SELECT EXISTS (SELECT 1 FROM showtime_seats
                          WHERE showtime_id = $1 AND status = 'AVAILABLE') AS "free!",
                  (SELECT min(hold_expires_at) FROM showtime_seats
                    WHERE showtime_id = $1 AND status = 'RESERVED') AS next_lapse"#,
        showtime_id
    )
    .fetch_one(&mut *tx)
    .await?;
    if seats.free {
        return Ok(None);
    }
    let recheck = Utc::now()
        + chrono::Duration::from_std(SOLD_OUT_RECHECK).unwrap_or(chrono::Duration::seconds(1));
    Ok(Some(
        seats.next_lapse.map_or(recheck, |lapse| lapse.min(recheck)),
    ))
}

/// The fast path of a scope known to be full: the new bookings are recorded REJECTED for
/// `reason` at once, and those already recorded and still PENDING are rejected, in two
/// statements.
async fn reject_all(
    tx: &mut PgConnection,
    requests: &[(Uuid, Option<NewBooking>)],
    reason: RejectReason,
) -> Result<Decisions, sqlx::Error> {
    let mut rejected = record_rejected(tx, requests, reason).await?;
    let ids: Vec<Uuid> = requests.iter().map(|(id, _)| *id).collect();
    let recorded: HashSet<Uuid> = rejected.iter().map(|view| view.id).collect();
    let earlier: Vec<(Uuid, Reservation)> = ids
        .iter()
        .filter(|id| !recorded.contains(id))
        .map(|id| {
            (
                *id,
                Reservation::Rejected {
                    showtime_id: Uuid::nil(),
                    reason,
                },
            )
        })
        .collect();
    // Rows recorded before (a degraded path, a redelivery): only a PENDING one is rejected.
    rejected.extend(write_rejections(tx, &earlier).await?);
    let decided: HashMap<Uuid, Uuid> = rejected
        .iter()
        .map(|view| (view.id, view.showtime_id))
        .collect();
    Ok(Decisions {
        outcomes: ids
            .iter()
            .map(|id| {
                let outcome = match decided.get(id) {
                    Some(showtime_id) => Reservation::Rejected {
                        showtime_id: *showtime_id,
                        reason,
                    },
                    None => Reservation::Missing,
                };
                (*id, outcome)
            })
            .collect(),
        rejected,
        ..Decisions::default()
    })
}

/// Expires the bookings whose lapsed holds sit on the allocated seats, and frees all their
/// seats.
async fn expire_lapsed_holders(
    tx: &mut PgConnection,
    holders: &BTreeSet<Uuid>,
) -> Result<Vec<Uuid>, sqlx::Error> {
    if holders.is_empty() {
        return Ok(Vec::new());
    }
    let holders: Vec<Uuid> = holders.iter().copied().collect();
    let expired: Vec<Uuid> = sqlx::query_scalar!(
        "UPDATE bookings SET status = 'EXPIRED'
         WHERE id = ANY($1) AND status = 'RESERVED' AND hold_expires_at <= now()
         RETURNING id",
        &holders
    )
    .fetch_all(&mut *tx)
    .await?;
    release_held_seats(tx, &expired, SeatRelease::Lapsed).await?;
    Ok(expired)
}

/// Writes the allocation: seats held, claims recorded, bookings RESERVED with their totals.
async fn apply(
    tx: &mut PgConnection,
    showtime_id: Uuid,
    plan: &Plan,
    deadline: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if plan.assigned.is_empty() {
        return Ok(());
    }
    let seats: Vec<Uuid> = plan.assigned.keys().copied().collect();
    let bookings: Vec<Uuid> = plan.assigned.values().copied().collect();
    let taken = sqlx::query!(
        "UPDATE showtime_seats AS s
         SET status = 'RESERVED', booking_id = v.booking_id, hold_expires_at = $4
         FROM unnest($2::uuid[], $3::uuid[]) AS v(seat_id, booking_id)
         WHERE s.showtime_id = $1 AND s.seat_id = v.seat_id AND s.status = 'AVAILABLE'",
        showtime_id,
        &seats,
        &bookings,
        deadline
    )
    .execute(&mut *tx)
    .await?;
    if taken.rows_affected() != seats.len() as u64 {
        // Cannot happen while the rows are locked; if it ever does, nothing is written.
        return Err(sqlx::Error::Protocol(format!(
            "reserved {} of {} locked seats",
            taken.rows_affected(),
            seats.len()
        )));
    }
    sqlx::query!(
        "INSERT INTO booking_seats (booking_id, showtime_id, seat_id, price_paise)
         SELECT v.booking_id, ss.showtime_id, ss.seat_id, pt.price_paise
         FROM unnest($2::uuid[], $3::uuid[]) AS v(seat_id, booking_id)
         JOIN showtime_seats ss ON ss.showtime_id = $1 AND ss.seat_id = v.seat_id
         JOIN price_tiers pt ON pt.id = ss.price_tier_id",
        showtime_id,
        &seats,
        &bookings
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE bookings AS b
         SET status = 'RESERVED', hold_expires_at = $2, total_paise = t.total
         FROM (SELECT booking_id, sum(price_paise)::bigint AS total FROM booking_seats
               WHERE booking_id = ANY($1) AND released_at IS NULL GROUP BY booking_id) AS t
         WHERE b.id = t.booking_id",
        &bookings,
        deadline
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Comp bookings among those just held cost nothing and need no payment: confirmed in the
/// same transaction, seats sold, tickets issued.
async fn confirm_comps(tx: &mut PgConnection, held: &[Uuid]) -> Result<(), sqlx::Error> {
    let comps = sqlx::query_scalar!(
        "UPDATE bookings SET status = 'CONFIRMED', hold_expires_at = NULL, total_paise = 0
         WHERE id = ANY($1) AND comp RETURNING id",
        held
    )
    .fetch_all(&mut *tx)
    .await?;
    if comps.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE showtime_seats SET status = 'SOLD', hold_expires_at = NULL WHERE booking_id = ANY($1)",
        &comps
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "UPDATE booking_seats SET price_paise = 0 WHERE booking_id = ANY($1)",
        &comps
    )
    .execute(&mut *tx)
    .await?;
    super::tickets::issue(tx, &comps).await
}

/// Rejects the PENDING bookings among `decided` that were rejected, and returns them as their
/// owners see them.
async fn write_rejections(
    tx: &mut PgConnection,
    decided: &[(Uuid, Reservation)],
) -> Result<Vec<BookingView>, sqlx::Error> {
    let (ids, reasons): (Vec<Uuid>, Vec<RejectReason>) = decided
        .iter()
        .filter_map(|(id, outcome)| match outcome {
            Reservation::Rejected { reason, .. } => Some((*id, *reason)),
            _ => None,
        })
        .unzip();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query!(
        r#"UPDATE bookings AS b SET status = 'REJECTED', reject_reason = v.reason
           FROM unnest($1::uuid[], $2::booking_reject_reason[]) AS v(id, reason)
           WHERE b.id = v.id AND b.status = 'PENDING'
           RETURNING b.id, b.user_id, b.showtime_id, b.quantity, b.currency,
                     b.reject_reason AS "reject_reason: RejectReason", b.created_at, b.updated_at"#,
        &ids,
        &reasons as &[RejectReason]
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| {
        rejected_view(
            row.id,
            row.user_id,
            row.showtime_id,
            row.quantity,
            row.currency,
            row.reject_reason,
            row.created_at,
            row.updated_at,
        )
    })
    .collect())
}

/// Records the new bookings of `requests` as REJECTED for `reason` at once (idempotent on
/// their id, like [`record`]), and returns those recorded now.
async fn record_rejected(
    tx: &mut PgConnection,
    requests: &[(Uuid, Option<NewBooking>)],
    reason: RejectReason,
) -> Result<Vec<BookingView>, sqlx::Error> {
    let mut seen = HashSet::new();
    let new: Vec<(Uuid, &NewBooking)> = requests
        .iter()
        .filter_map(|(id, request)| request.as_ref().map(|request| (*id, request)))
        .filter(|(id, _)| seen.insert(*id))
        .collect();
    if new.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query!(
        r#"WITH incoming AS (
               SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::jsonb[], $5::int[],
                                    $6::text[], $7::text[], $8::timestamptz[])
                   AS t (id, user_id, showtime_id, request, quantity, key, fingerprint, accepted_at)
           ),
           keys AS (
               INSERT INTO idempotency_keys
                   (user_id, key, request_fingerprint, response_status, response_body, created_at)
               SELECT user_id, key, fingerprint, 202, jsonb_build_object('booking_id', id), accepted_at
               FROM incoming
               ON CONFLICT (user_id, key) DO NOTHING
           )
           INSERT INTO bookings
               (id, user_id, showtime_id, request, quantity, created_at, status, reject_reason)
           SELECT id, user_id, showtime_id, request, quantity, accepted_at, 'REJECTED', $9
           FROM incoming
           WHERE EXISTS (SELECT 1 FROM showtimes st WHERE st.id = incoming.showtime_id)
             AND NOT EXISTS (
               SELECT 1 FROM idempotency_keys k
               WHERE k.user_id = incoming.user_id AND k.key = incoming.key
                 AND k.request_fingerprint <> incoming.fingerprint)
           ON CONFLICT (id) DO NOTHING
           RETURNING id, user_id, showtime_id, quantity, currency,
                     reject_reason AS "reject_reason: RejectReason", created_at, updated_at"#,
        &new.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        &new.iter().map(|(_, r)| r.user_id).collect::<Vec<_>>(),
        &new.iter().map(|(_, r)| r.showtime_id).collect::<Vec<_>>(),
        &new
            .iter()
            .map(|(_, r)| serde_json::to_value(&r.selection).unwrap_or_default())
            .collect::<Vec<_>>(),
        &new
            .iter()
            .map(|(_, r)| i32::try_from(r.selection.quantity()).unwrap_or(i32::MAX))
            .collect::<Vec<_>>(),
        &new
            .iter()
            .map(|(_, r)| r.idempotency_key.clone())
            .collect::<Vec<_>>(),
        &new
            .iter()
            .map(|(_, r)| r.fingerprint.clone())
            .collect::<Vec<_>>(),
        &new.iter().map(|(_, r)| r.accepted_at).collect::<Vec<_>>(),
        reason as RejectReason
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .map(|row| rejected_view(row.id, row.user_id, row.showtime_id, row.quantity, row.currency, row.reject_reason, row.created_at, row.updated_at))
    .collect())
}

#[allow(clippy::too_many_arguments)]
fn rejected_view(
    id: Uuid,
    user_id: Uuid,
    showtime_id: Uuid,
    quantity: i32,
    currency: String,
    reject_reason: Option<RejectReason>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> BookingView {
    BookingView {
        id,
        user_id,
        showtime_id,
        status: BookingStatus::Rejected,
        reject_reason,
        quantity,
        seats: Vec::new(),
        total_paise: crate::money::Paise::ZERO,
        currency,
        hold_expires_at: None,
        created_at,
        updated_at,
    }
}
