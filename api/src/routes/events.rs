//! `/api/events`: a show's stops at venues. Anyone may read; editors write.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use shared::catalogue::{
    discovery::{self, EventCard, EventFilters, EventQuery, Page},
    events::{self, Event, EventChanges, NewEvent},
    scopes,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::{catalogue_page, public_read};
use crate::{
    auth::{Editor, MaybeAuthUser},
    error::ApiError,
    extract::Json,
    state::AppState,
};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(details, update, delete))
        .routes(routes!(archive))
}

/// Events with published upcoming showtimes, soonest first, by show, venue, city and dates.
#[utoipa::path(get, path = "/api/events", tag = "events", params(EventFilters),
    responses((status = 200, body = Page<EventCard>),
              (status = 304, description = "The copy named in If-None-Match is current")))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Query(filters): Query<EventFilters>,
) -> Result<Response, ApiError> {
    let query = EventQuery::parse(filters)?;
    let load = discovery::events(&state.core.db, &query);
    public_read(&state, &query.cache_entry(), "events", load).await
}

/// An event with its venue and showtimes.
#[utoipa::path(get, path = "/api/events/{id}", tag = "events", security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "Event id")),
    responses((status = 200, body = Event), (status = 304, description = "The copy named in If-None-Match is current"), (status = 404)))]
#[tracing::instrument(skip_all, fields(event_id = %id))]
pub async fn details(
    State(state): State<AppState>,
    caller: MaybeAuthUser,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let entry = scopes::details(scopes::event(id), "page");
    catalogue_page(&state, caller, entry, "event", |all| {
        events::details(&state.core.db, id, all)
    })
    .await
}

#[utoipa::path(post, path = "/api/events", tag = "events", security(("bearer" = [])), request_body = NewEvent,
    responses((status = 201, body = Event), (status = 403), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id))]
pub async fn create(
    State(state): State<AppState>,
    editor: Editor,
    Json(new): Json<NewEvent>,
) -> Result<(StatusCode, axum::Json<Event>), ApiError> {
    let event = events::create(&state.core.db, &state.core.cache, new).await?;
    Ok((StatusCode::CREATED, axum::Json(event)))
}

#[utoipa::path(patch, path = "/api/events/{id}", tag = "events", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Event id")), request_body = EventChanges,
    responses((status = 200, body = Event), (status = 403), (status = 404), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, event_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
    Json(changes): Json<EventChanges>,
) -> Result<axum::Json<Event>, ApiError> {
    Ok(axum::Json(
        events::update(&state.core.db, &state.core.cache, id, changes).await?,
    ))
}

/// Hides the event and its showtimes from buyers.
#[utoipa::path(post, path = "/api/events/{id}/archive", tag = "events", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Event id")),
    responses((status = 200, body = Event), (status = 403), (status = 404)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, event_id = %id))]
pub async fn archive(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Event>, ApiError> {
    Ok(axum::Json(
        events::archive(&state.core.db, &state.core.cache, id).await?,
    ))
}

/// Deletes the event and its showtimes if nobody booked them (409 `HAS_BOOKINGS` otherwise).
#[utoipa::path(delete, path = "/api/events/{id}", tag = "events", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Event id")),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, event_id = %id))]
pub async fn delete(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    events::delete(&state.core.db, &state.core.cache, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
