//! Bookings: a buyer's claim on seats of one showtime, from request to ticket or refund.
//!
//! The flow: the API records a PENDING booking ([`create`]) and publishes its reservation job;
//! a worker takes a Redis lock ([`lock`]) and runs the reservation transaction ([`reserve`]);
//! the result goes to Postgres, then Redis and its subscribers ([`view`]). Holds lapse by
//! themselves ([`holds`]) or are given back ([`cancel`]).
//!
//! The lifecycle lives in [`BookingStatus`]; the database refuses the same illegal moves
//! (`booking_transition_allowed` in the migrations), so neither side can drift alone.

pub mod availability;
pub mod cancel;
pub mod create;
pub mod history;
pub(crate) mod holds;
pub mod lock;
pub mod manual;
pub mod reserve;
mod selection;
mod status;
pub(crate) mod tickets;
pub mod view;

pub use holds::{ExpiredHold, expire_overdue_holds};
pub use selection::SeatSelection;
pub use status::{BookingStatus, IllegalTransition, RejectReason};
