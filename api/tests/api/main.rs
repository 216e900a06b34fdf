//! The HTTP API end to end: a real server on a free port, real PostgreSQL, Redis and RabbitMQ.

// A test that cannot get what it needs should stop right there.
#![allow(clippy::unwrap_used)]

mod accept;
mod accounts;
mod admin;
mod bookings;
mod cache;
mod catalogue;
mod conditional;
mod email;
mod errors;
mod google;
mod health;
mod helpers;
mod limits;
mod locking;
mod manual;
mod operations;
mod otp;
mod payments;
mod privacy;
mod process;
mod refunds;
mod resilience;
mod roles;
mod settlement;
mod showtime_cancellation;
mod stats;
