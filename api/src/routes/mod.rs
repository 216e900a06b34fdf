//! HTTP routes, grouped by domain. Each module owns its handlers and their OpenAPI entries.

pub mod admin;
pub mod auth;
pub mod bookings;
pub mod categories;
pub mod events;
pub mod health;
pub mod openapi;
pub mod payments;
pub mod shows;
pub mod showtimes;
pub mod stats;
pub mod users;
pub mod venues;

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use shared::cache::Source;

/// A cached JSON answer, with `X-Cache` saying which level it came from: `hit-process`,
/// `hit-redis` or `miss`.
pub fn cached_json(json: Bytes, source: Source) -> Response {
    let mut response = json.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let level = match source {
        Source::Process => "hit-process",
        Source::Redis => "hit-redis",
        Source::Database => "miss",
    };
    headers.insert("x-cache", HeaderValue::from_static(level));
    response
}

/// JSON already serialised (a status the process keeps ready).
pub fn ready_json(json: Bytes) -> Response {
    let mut response = json.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An answer that skipped the cache on purpose (an editor's view of drafts).
pub fn uncached_json<T: serde::Serialize>(value: T) -> Response {
    let mut response = axum::Json(value).into_response();
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static("bypass"));
    response
}

/// A catalogue page: from the cache for buyers; fresh and with drafts and archived entries for
/// editors. `load(true)` includes what buyers may not see.
pub async fn catalogue_page<T, F, Fut>(
    state: &crate::state::AppState,
    caller: crate::auth::MaybeAuthUser,
    entry: shared::cache::Entry,
    what: &'static str,
    load: F,
) -> Result<Response, crate::error::ApiError>
where
    T: serde::Serialize,
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, sqlx::Error>>,
{
    use crate::error::ApiError;
    if caller.is_editor() {
        let page = load(true).await?.ok_or(ApiError::NotFound(what))?;
        return Ok(uncached_json(page));
    }
    let cached = state
        .core
        .cache
        .get_or_load(&entry, load(false))
        .await?
        .ok_or(ApiError::NotFound(what))?;
    Ok(cached_json(cached.json, cached.source))
}
