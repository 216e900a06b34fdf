//! Bookings: a buyer's claim on seats of one showtime, from request to ticket or refund.
//!
//! The flow: the API accepts a request ([`accept`]: checks it against its copy of the showtime
//! ([`sale`]), claims its key and writes its PENDING status in Redis ([`claims`]), and
//! publishes its reservation job, touching no Postgres); a worker takes a Redis lock ([`lock`])
//! and, in one transaction, records the booking and decides it ([`reserve`], which reads the
//! seats and writes what the pure seat planner, `planner`, chose); the result goes
//! to Postgres, then Redis and its subscribers ([`view`]). Holds lapse by
//! themselves ([`holds`]) or are given back ([`cancel`]).
//!
//! The lifecycle lives in [`BookingStatus`]; the database refuses the same illegal moves
//! (`booking_transition_allowed` in the migrations), so neither side can drift alone.
//!
//! # Lock order
//!
//! Every transaction that changes bookings, payments, refunds or seats takes its row locks in
//! this one order, so that reservations, the hold sweep, settlements, cancellations, seat moves
//! and refunds can run against each other during an on-sale without deadlocking:
//!
//! 1. the refund being finished (`refunds`);
//! 2. the bookings acted on, in id order (a reservation batch, the booking paid, cancelled,
//!    moved or refunded);
//! 3. their payments;
//! 4. the reservation's per-buyer advisory locks, in hash order (a late payment's settlement
//!    only tries this lock: the reservation locks lapsed holders after it, and the booking
//!    being settled may be one);
//! 5. other bookings whose holds sit on the seats concerned (lapsed holds taken over), in id
//!    order, read first and locked before their seats;
//! 6. `showtime_seats`, in (showtime, seat) order, always with `ORDER BY ... FOR UPDATE`
//!    before an `UPDATE` of several seats;
//! 7. `booking_seats` and `tickets` (written only under their booking's lock), then inserts
//!    (refund requests, the audit log).
//!
//! Catalogue writes lock the showtime row before any of these (cancelling a showtime locks it,
//! then its bookings); nothing on the booking path locks a showtime row.
//!
//! A step may be skipped, never reversed. A lock found out of date after the fact (a seat that
//! changed hands between reading and locking) rolls back and tries again rather than locking
//! out of order. The hold sweep locks its bookings with `SKIP LOCKED`, so it never waits on one.

pub mod accept;
pub mod availability;
pub mod cancel;
pub mod changes;
pub mod claims;
pub mod create;
pub mod history;
pub(crate) mod holds;
pub mod ids;
pub mod lock;
pub mod manual;
mod planner;
pub mod reserve;
pub mod sale;
mod selection;
pub mod showtime_cancellation;
mod status;
pub(crate) mod tickets;
pub mod view;

pub use holds::{ExpiredHold, expire_overdue_holds};
pub use selection::SeatSelection;
pub use status::{BookingStatus, IllegalTransition, RejectReason};
