//! `/api/shows`: discovery and show pages for everyone; show editing for editors.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use shared::catalogue::{
    discovery::{self, Page, ShowCard, ShowFilters, ShowQuery},
    scopes,
    shows::{self, NewShow, Show, ShowChanges},
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

/// Shows with upcoming published showtimes, by city, category, dates, artist and free text.
#[utoipa::path(get, path = "/api/shows", tag = "shows", params(ShowFilters),
    responses((status = 200, body = Page<ShowCard>), (status = 304, description = "The copy named in If-None-Match is current"), (status = 422)))]
#[tracing::instrument(skip_all)]
pub async fn list(
    State(state): State<AppState>,
    Query(filters): Query<ShowFilters>,
) -> Result<Response, ApiError> {
    let query = ShowQuery::parse(filters)?;
    let load = discovery::shows(&state.core.db, &query);
    public_read(&state, &query.cache_entry(), "shows", load).await
}

/// Everything a show page needs: the show, its categories, its tour stops with their venues,
/// and their showtimes with prices. Editors also see drafts and archived entries, uncached.
#[utoipa::path(get, path = "/api/shows/{id}", tag = "shows", security((), ("bearer" = [])),
    params(("id" = Uuid, Path, description = "Show id")),
    responses((status = 200, body = Show), (status = 304, description = "The copy named in If-None-Match is current"), (status = 404)))]
#[tracing::instrument(skip_all, fields(show_id = %id))]
pub async fn details(
    State(state): State<AppState>,
    caller: MaybeAuthUser,
    Path(id): Path<Uuid>,
) -> Result<Response, ApiError> {
    let entry = scopes::details(scopes::show(id), "page");
    catalogue_page(&state, caller, entry, "show", |all| {
        shows::details(&state.core.db, id, all)
    })
    .await
}

#[utoipa::path(post, path = "/api/shows", tag = "shows", security(("bearer" = [])), request_body = NewShow,
    responses((status = 201, body = Show), (status = 403), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id))]
pub async fn create(
    State(state): State<AppState>,
    editor: Editor,
    Json(new): Json<NewShow>,
) -> Result<(StatusCode, axum::Json<Show>), ApiError> {
    let show = shows::create(&state.core.db, &state.core.cache, new).await?;
    Ok((StatusCode::CREATED, axum::Json(show)))
}

#[utoipa::path(patch, path = "/api/shows/{id}", tag = "shows", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Show id")), request_body = ShowChanges,
    responses((status = 200, body = Show), (status = 403), (status = 404), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, show_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
    Json(changes): Json<ShowChanges>,
) -> Result<axum::Json<Show>, ApiError> {
    Ok(axum::Json(
        shows::update(&state.core.db, &state.core.cache, id, changes).await?,
    ))
}

/// Hides the show from buyers; bookings and tickets stay valid.
#[utoipa::path(post, path = "/api/shows/{id}/archive", tag = "shows", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Show id")),
    responses((status = 200, body = Show), (status = 403), (status = 404)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, show_id = %id))]
pub async fn archive(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Show>, ApiError> {
    Ok(axum::Json(
        shows::archive(&state.core.db, &state.core.cache, id).await?,
    ))
}

/// Deletes a show without events (409 `IN_USE` otherwise: archive it).
#[utoipa::path(delete, path = "/api/shows/{id}", tag = "shows", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Show id")),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, show_id = %id))]
pub async fn delete(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    shows::delete(&state.core.db, &state.core.cache, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
