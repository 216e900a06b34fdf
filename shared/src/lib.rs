//! The domain and storage shared by the API and the workers: settings, domain types and their
//! state machines, database access, Redis, job contracts and publishing, health probes, and
//! every use case (in its domain's module, taking a [`core::Core`]), so that a handler or a job
//! parses its input, calls one function and reports the result.
//!
//! The rule at the edge: types here say how they look as JSON (serde, and utoipa's `ToSchema`
//! and `IntoParams`, so the OpenAPI document describes each type where it is defined), and
//! errors carry the domain's machine-readable codes (`NOT_CANCELABLE`, `OWN_ROLE`). Nothing here
//! knows HTTP itself: no status codes, routes, extractors or response headers; `api` maps each
//! error to its status once (`api::error`) and sets every header. One exception, by necessity:
//! [`client_address`] reads the forwarding header the settings name, to find a client's address
//! behind trusted proxies.

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
pub mod money;
pub mod payments;
pub mod rate_limit;
pub mod redis_client;
pub mod shutdown;
pub mod sms;
pub mod stats;
pub mod telemetry;
pub mod validation;
