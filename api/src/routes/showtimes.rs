//! `/api/showtimes`: what buyers read before they book.

use axum::{
    extract::{Path, State},
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use shared::bookings::availability::{self, Availability, Source};
use uuid::Uuid;

use crate::{error::ApiError, state::AppState};

/// Seats of a showtime: counts per section and price, and each seat's state. Fresh within
/// `AVAILABILITY_CACHE_TTL` at the latest, and within a second after a change made through
/// BMS. `X-Cache` says where the answer came from: `hit-process`, `hit-redis` or `miss`.
#[utoipa::path(get, path = "/api/showtimes/{id}/availability", tag = "showtimes",
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = Availability), (status = 404)))]
#[tracing::instrument(skip_all, fields(showtime_id = %id))]
pub async fn availability(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let ttl = state.settings.bookings.availability_cache_ttl;
    let cached = availability::read(&state.db, &state.redis, &state.availability, id, ttl)
        .await?
        .ok_or(ApiError::NotFound("showtime"))?;
    let source = match cached.source {
        Source::Process => "hit-process",
        Source::Redis => "hit-redis",
        Source::Database => "miss",
    };
    let mut response = cached.json.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert("x-cache", HeaderValue::from_static(source));
    Ok(response)
}
