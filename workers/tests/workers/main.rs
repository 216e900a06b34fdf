//! Job plumbing against real RabbitMQ and PostgreSQL: a probe job kind defined here goes
//! through the same publisher, queues and worker runtime as the real ones.

// A test that cannot get what it needs should stop right there.
#![allow(clippy::unwrap_used)]

mod delivery;
mod helpers;
mod payments;
mod pipeline;
mod process;
mod reconnect;
mod sweeps;
