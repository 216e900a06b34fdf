//! HTTP routes, grouped by domain. Each module owns its handlers and their OpenAPI entries.

pub mod admin;
pub mod auth;
pub mod bookings;
pub mod health;
pub mod openapi;
pub mod showtimes;
pub mod users;
