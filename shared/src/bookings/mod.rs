//! Bookings: a buyer's claim on seats of one showtime, from request to ticket or refund.
//!
//! The lifecycle lives in [`BookingStatus`]; the database refuses the same illegal moves
//! (`booking_transition_allowed` in the migrations), so neither side can drift alone.

mod holds;
mod status;

pub use holds::{ExpiredHold, expire_overdue_holds};
pub use status::{BookingStatus, IllegalTransition, RejectReason};
