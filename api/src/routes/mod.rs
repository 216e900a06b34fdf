//! HTTP routes, grouped by domain. Each module owns its handlers and their OpenAPI entries.

pub mod admin;
pub mod auth;
pub mod health;
pub mod openapi;
pub mod users;
