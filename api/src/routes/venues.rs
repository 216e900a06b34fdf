//! `/api/venues`: venues and their seat layouts. Anyone may read; editors write.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use shared::catalogue::{
    discovery::{self, Page, VenueCard, VenueFilters, VenueQuery},
    layout::{self, LayoutInput, LayoutView},
    scopes,
    venues::{self, NewVenue, Venue, VenueChanges},
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::public_read;
use crate::{auth::Editor, error::ApiError, extract::Json, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(details, update, delete))
        .routes(routes!(layout, replace_layout))
        .routes(routes!(archive))
}

/// Venues by name, filtered by city or part of the name.
#[utoipa::path(get, path = "/api/venues", tag = "venues", params(VenueFilters),
    responses((status = 200, body = Page<VenueCard>), (status = 304, description = "The copy named in If-None-Match is current"), (status = 422)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Query(filters): Query<VenueFilters>,
) -> Result<Response, ApiError> {
    let query = VenueQuery::parse(filters)?;
    let load = discovery::venues(&state.core.db, &query);
    public_read(&state, &query.cache_entry(), "venues", load).await
}

/// A venue: address, rules, capacity and its sections.
#[utoipa::path(get, path = "/api/venues/{id}", tag = "venues",
    params(("id" = Uuid, Path, description = "Venue id")),
    responses((status = 200, body = Venue), (status = 304, description = "The copy named in If-None-Match is current"), (status = 404)))]
#[tracing::instrument(skip_all, fields(venue_id = %id))]
pub async fn details(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let entry = scopes::details(scopes::venue(id), "page");
    public_read(&state, &entry, "venue", venues::details(&state.core.db, id)).await
}

/// The seat map: sections, rows and seats with their kinds.
#[utoipa::path(get, path = "/api/venues/{id}/layout", tag = "venues",
    params(("id" = Uuid, Path, description = "Venue id")),
    responses((status = 200, body = LayoutView), (status = 304, description = "The copy named in If-None-Match is current"), (status = 404)))]
#[tracing::instrument(skip_all, fields(venue_id = %id))]
pub async fn layout(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let entry = scopes::details(scopes::venue(id), "layout");
    public_read(&state, &entry, "venue", layout::view(&state.core.db, id)).await
}

/// Creates a venue, optionally with its layout.
#[utoipa::path(post, path = "/api/venues", tag = "venues", security(("bearer" = [])), request_body = NewVenue,
    responses((status = 201, body = Venue), (status = 403), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id))]
pub async fn create(
    State(state): State<AppState>,
    editor: Editor,
    Json(new): Json<NewVenue>,
) -> Result<(StatusCode, axum::Json<Venue>), ApiError> {
    let venue = venues::create(&state.core.db, &state.core.cache, new).await?;
    Ok((StatusCode::CREATED, axum::Json(venue)))
}

#[utoipa::path(patch, path = "/api/venues/{id}", tag = "venues", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Venue id")), request_body = VenueChanges,
    responses((status = 200, body = Venue), (status = 403), (status = 404), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, venue_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
    Json(changes): Json<VenueChanges>,
) -> Result<axum::Json<Venue>, ApiError> {
    Ok(axum::Json(
        venues::update(&state.core.db, &state.core.cache, id, changes).await?,
    ))
}

/// Replaces the seat layout; refused (409) once a showtime prices its sections.
#[utoipa::path(put, path = "/api/venues/{id}/layout", tag = "venues", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Venue id")), request_body = LayoutInput,
    responses((status = 200, body = Venue), (status = 403), (status = 404), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, venue_id = %id))]
pub async fn replace_layout(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
    Json(input): Json<LayoutInput>,
) -> Result<axum::Json<Venue>, ApiError> {
    Ok(axum::Json(
        venues::replace_layout(&state.core.db, &state.core.cache, id, input).await?,
    ))
}

/// Hides the venue from listings and new events.
#[utoipa::path(post, path = "/api/venues/{id}/archive", tag = "venues", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Venue id")),
    responses((status = 200, body = Venue), (status = 403), (status = 404)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, venue_id = %id))]
pub async fn archive(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Venue>, ApiError> {
    Ok(axum::Json(
        venues::archive(&state.core.db, &state.core.cache, id).await?,
    ))
}

/// Deletes a venue without events (409 `IN_USE` otherwise: archive it).
#[utoipa::path(delete, path = "/api/venues/{id}", tag = "venues", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Venue id")),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, venue_id = %id))]
pub async fn delete(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    venues::delete(&state.core.db, &state.core.cache, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
