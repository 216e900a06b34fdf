//! `/api/showtimes`: what buyers read before they book.

use axum::{
    extract::{Path, State},
    http::HeaderValue,
    response::{IntoResponse, Response},
};
use shared::bookings::availability::{self, Availability};
use uuid::Uuid;

use crate::{error::ApiError, state::AppState};

/// Seats of a showtime: counts per section and price, and each seat's state. Fresh within
/// `AVAILABILITY_CACHE_TTL` at the latest, and at once after a change made through BMS.
/// `X-Cache: hit|miss` tells whether the answer came from the cache.
#[utoipa::path(get, path = "/api/showtimes/{id}/availability", tag = "showtimes",
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = Availability), (status = 404)))]
#[tracing::instrument(skip_all, fields(showtime_id = %id))]
pub async fn availability(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let ttl = state.settings.bookings.availability_cache_ttl;
    let (availability, from_cache) = availability::read(&state.db, &state.redis, id, ttl)
        .await?
        .ok_or(ApiError::NotFound("showtime"))?;
    let mut response = axum::Json(availability).into_response();
    let cache = if from_cache { "hit" } else { "miss" };
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static(cache));
    Ok(response)
}
