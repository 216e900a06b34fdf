//! HTTP routes, grouped by domain. Each module owns its handlers and their OpenAPI entries.

pub mod admin;
pub mod auth;
pub mod bookings;
pub mod categories;
pub mod events;
pub mod health;
pub mod openapi;
pub mod payments;
pub mod seat_sections;
pub mod shows;
pub mod showtimes;
pub mod stats;
pub mod users;
pub mod venues;

use std::time::Duration;

use axum::{
    http::{HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use shared::cache::{Cached, Entry, Source};

use crate::{auth::MaybeAuthUser, error::ApiError, state::AppState};

/// Who may keep an answer, and for how long, before asking again.
#[derive(Debug, Clone, Copy)]
pub enum Reuse {
    /// Any cache (a browser, a CDN), this long: the public catalogue, which BMS itself caches
    /// as long, and availability, fresh within its own bound.
    Public(Duration),
    /// Only the caller's own client, which asks again each time; its tag may still earn a 304.
    Private,
}

/// A cached JSON answer: `ETag` (the digest of the body, so `If-None-Match` can be answered
/// 304 by [`crate::conditional`]), `Cache-Control` from `reuse`, and `X-Cache` saying which
/// level it came from: `hit-process`, `hit-redis` or `miss`.
pub fn cached_json(cached: Cached, reuse: Reuse) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", cached.json.tag()));
    let mut response = cached.json.bytes().clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(etag) = etag {
        headers.insert(header::ETAG, etag);
    }
    let cache_control = match reuse {
        Reuse::Public(max_age) => {
            HeaderValue::from_str(&format!("public, max-age={}", max_age.as_secs()))
                .unwrap_or(HeaderValue::from_static("no-cache"))
        }
        Reuse::Private => HeaderValue::from_static("private, no-cache"),
    };
    headers.insert(header::CACHE_CONTROL, cache_control);
    // The tag is the JSON's; gzip and plain copies are told apart by the encoding, also on a
    // 304 (the compression layer adds this only to answers it compresses).
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let level = match cached.source {
        Source::Process => "hit-process",
        Source::Redis => "hit-redis",
        Source::Database => "miss",
    };
    headers.insert(X_CACHE, HeaderValue::from_static(level));
    response
}

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");

/// JSON already serialised (a status the process keeps ready).
pub fn ready_json(json: Bytes) -> Response {
    let mut response = json.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A public catalogue read: from the cache, and reusable by any cache for as long as BMS
/// itself keeps the entry.
pub async fn public_read<T, Fut>(
    state: &AppState,
    entry: &Entry,
    what: &'static str,
    load: Fut,
) -> Result<Response, ApiError>
where
    T: serde::Serialize,
    Fut: std::future::Future<Output = Result<Option<T>, sqlx::Error>>,
{
    let cached = state
        .core
        .cache
        .get_or_load(entry, load)
        .await?
        .ok_or(ApiError::NotFound(what))?;
    let max_age = state.core.cache.ttl(entry.kind);
    Ok(cached_json(cached, Reuse::Public(max_age)))
}

/// A catalogue page: from the cache for buyers; fresh and with drafts and archived entries for
/// editors, and then kept by no cache. `load(true)` includes what buyers may not see. The
/// answer depends on who asks, so shared caches are told to key it by `Authorization`.
pub async fn catalogue_page<T, F, Fut>(
    state: &AppState,
    caller: MaybeAuthUser,
    entry: Entry,
    what: &'static str,
    load: F,
) -> Result<Response, ApiError>
where
    T: serde::Serialize,
    F: Fn(bool) -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, sqlx::Error>>,
{
    let mut response = if caller.is_editor() {
        let page = load(true).await?.ok_or(ApiError::NotFound(what))?;
        let mut response = axum::Json(page).into_response();
        let headers = response.headers_mut();
        headers.insert(X_CACHE, HeaderValue::from_static("bypass"));
        headers.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("private, no-store"),
        );
        response
    } else {
        public_read(state, &entry, what, load(false)).await?
    };
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("authorization"));
    Ok(response)
}
