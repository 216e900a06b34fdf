//! The domain and storage shared by the API and the workers: settings, domain types and their
//! state machines, database access, Redis, job contracts and publishing, health probes.
//! Nothing here knows about HTTP.

pub mod accounts;
pub mod audit;
pub mod bookings;
pub mod cache;
pub mod catalogue;
pub mod client_address;
pub mod config;
pub mod core;
pub mod db;
pub mod demo;
pub mod error;
pub mod health;
pub mod jobs;
pub mod mail;
pub mod metrics;
pub mod payments;
pub mod rate_limit;
pub mod redis_client;
pub mod shutdown;
pub mod sms;
pub mod stats;
pub mod telemetry;
pub mod validation;
