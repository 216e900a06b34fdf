//! `/api/showtimes`: what buyers read before they book (the showtime page, seat
//! availability), and the showtime's setup and lifecycle for editors.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use shared::{
    audit::Actor,
    bookings::availability::{self, Availability, CompactAvailability, Form, SeatMap},
    catalogue::{
        scopes,
        showtimes::{self, NewShowtime, Showtime, ShowtimeChanges, TierInput},
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::catalogue_page;
use crate::{
    auth::{Editor, MaybeAuthUser},
    error::ApiError,
    extract::{Json, JsonList},
    state::AppState,
};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(details, update, delete))
        .routes(routes!(replace_price_tiers))
        .routes(routes!(publish))
        .routes(routes!(cancel))
        .routes(routes!(availability))
        .routes(routes!(compact_availability))
        .routes(routes!(seat_map))
}

/// A showtime with its show, venue and price tiers.
#[utoipa::path(get, path = "/api/showtimes/{id}", tag = "showtimes", security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = Showtime), (status = 304, description = "The copy named in If-None-Match is current"), (status = 404)))]
#[tracing::instrument(skip_all, fields(showtime_id = %id))]
pub async fn details(
    State(state): State<AppState>,
    caller: MaybeAuthUser,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let entry = scopes::details(scopes::showtime(id), "page");
    catalogue_page(&state, caller, entry, "showtime", |all| {
        showtimes::details(&state.core.db, id, all)
    })
    .await
}

/// Creates a draft showtime, optionally with its price tiers.
#[utoipa::path(post, path = "/api/showtimes", tag = "showtimes", security(("bearer" = [])),
    request_body = NewShowtime,
    responses((status = 201, body = Showtime), (status = 403), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id))]
pub async fn create(
    State(state): State<AppState>,
    editor: Editor,
    Json(new): Json<NewShowtime>,
) -> Result<(StatusCode, axum::Json<Showtime>), ApiError> {
    let showtime = showtimes::create(&state.core.db, &state.core.cache, new).await?;
    Ok((StatusCode::CREATED, axum::Json(showtime)))
}

/// Moves the showtime or its sale window, or changes the per-buyer limit.
#[utoipa::path(patch, path = "/api/showtimes/{id}", tag = "showtimes", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Showtime id")), request_body = ShowtimeChanges,
    responses((status = 200, body = Showtime), (status = 403), (status = 404), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, showtime_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
    Json(changes): Json<ShowtimeChanges>,
) -> Result<axum::Json<Showtime>, ApiError> {
    Ok(axum::Json(
        showtimes::update(&state.core.db, &state.core.cache, id, changes).await?,
    ))
}

/// Replaces the price tiers of a draft (409 `SHOWTIME_PUBLISHED` after publishing).
#[utoipa::path(put, path = "/api/showtimes/{id}/price-tiers", tag = "showtimes", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Showtime id")), request_body = [TierInput],
    responses((status = 200, body = Showtime), (status = 403), (status = 404), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, showtime_id = %id))]
pub async fn replace_price_tiers(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
    JsonList(tiers): JsonList<TierInput>,
) -> Result<axum::Json<Showtime>, ApiError> {
    Ok(axum::Json(
        showtimes::replace_price_tiers(&state.core.db, &state.core.cache, id, tiers).await?,
    ))
}

/// Puts a draft on sale, creating its seat inventory from the layout and tiers.
#[utoipa::path(post, path = "/api/showtimes/{id}/publish", tag = "showtimes", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = Showtime), (status = 403), (status = 404), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, showtime_id = %id))]
pub async fn publish(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Showtime>, ApiError> {
    Ok(axum::Json(
        showtimes::publish(&state.core.db, &state.core.redis, &state.core.cache, id).await?,
    ))
}

/// Cancels the showtime for good, and with it its bookings: every hold is released, every paid
/// booking is refunded in full (refund jobs; `GET /api/admin/showtimes/{id}/refunds` shows how
/// far they got), free ones are canceled, and all of it is audited. Calling it again on a
/// canceled showtime finishes what an interrupted cancellation left (refunds not yet started).
#[utoipa::path(post, path = "/api/showtimes/{id}/cancel", tag = "showtimes", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = Showtime), (status = 403), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.user_id, showtime_id = %id))]
pub async fn cancel(
    State(state): State<AppState>,
    _role: Editor,
    editor: Actor,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Showtime>, ApiError> {
    Ok(axum::Json(
        showtimes::cancel(&state.core, &editor, id).await?,
    ))
}

/// Deletes a showtime nobody booked (409 `HAS_BOOKINGS` otherwise: cancel it).
#[utoipa::path(delete, path = "/api/showtimes/{id}", tag = "showtimes", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, showtime_id = %id))]
pub async fn delete(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    showtimes::delete(&state.core.db, &state.core.cache, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Seats of a showtime: counts per section and price, and each seat's state (about 100 bytes
/// a seat; prefer `/availability/compact` while polling). Fresh within
/// `AVAILABILITY_CACHE_TTL` at the latest, and within a second after a change made through
/// BMS. `X-Cache` says where the answer came from: `hit-process`, `hit-redis` or `miss`.
#[utoipa::path(get, path = "/api/showtimes/{id}/availability", tag = "showtimes",
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = Availability), (status = 304, description = "The copy named in If-None-Match is current"), (status = 404)))]
#[tracing::instrument(skip_all, fields(showtime_id = %id))]
pub async fn availability(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    read_availability(&state, id, Form::Full, "showtime").await
}

/// Seats of a showtime, compactly: counts per section and price, and bitmaps of the seats held
/// and sold over the seat map (`/api/showtimes/{id}/seats`, fetched once: it never changes
/// while the showtime sells). A few kilobytes at ten thousand seats; as fresh as the full form.
#[utoipa::path(get, path = "/api/showtimes/{id}/availability/compact", tag = "showtimes",
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = CompactAvailability), (status = 304, description = "The copy named in If-None-Match is current"), (status = 404)))]
#[tracing::instrument(skip_all, fields(showtime_id = %id))]
pub async fn compact_availability(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    read_availability(&state, id, Form::Compact, "showtime").await
}

/// Availability of a showtime in `form`; `what` names what was not found when there is none.
pub(super) async fn read_availability(
    state: &AppState,
    id: Uuid,
    form: Form,
    what: &'static str,
) -> Result<Response, ApiError> {
    let ttl = state.core.settings.bookings.availability_cache_ttl;
    let cached = availability::read(
        &state.core.db,
        &state.core.redis,
        &state.core.availability,
        id,
        ttl,
        form,
    )
    .await?
    .ok_or(ApiError::NotFound(what))?;
    Ok(super::cached_json(
        cached,
        super::Reuse::Public(availability::FRESH_WITHIN),
    ))
}

/// The seats of a showtime in the order of the compact availability's bitmaps, with their
/// section, row and number.
#[utoipa::path(get, path = "/api/showtimes/{id}/seats", tag = "showtimes",
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = SeatMap), (status = 404)))]
#[tracing::instrument(skip_all, fields(showtime_id = %id))]
pub async fn seat_map(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<SeatMap>, ApiError> {
    let map = state
        .core
        .availability
        .seat_map(&state.core.db, id)
        .await?
        .ok_or(ApiError::NotFound("showtime"))?;
    Ok(axum::Json(SeatMap::clone(&map)))
}
