//! The schema against a real PostgreSQL: migrations, and the invariants the database itself
//! enforces whatever the application code does.

// A test that cannot get what it needs should stop right there.
#![allow(clippy::unwrap_used)]

mod accounts;
mod fixtures;
mod holds;
mod invariants;
mod locking;
mod migrations;
mod status;
