//! The BMS HTTP API: validates, records and enqueues; the workers do the contended and slow
//! work. This crate knows HTTP; the domain and storage live in `shared`.

pub mod auth;
pub mod conditional;
pub mod error;
pub mod extract;
pub mod limits;
pub mod live;
pub mod observe;
pub mod routes;
pub mod startup;
pub mod state;
