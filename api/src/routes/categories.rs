//! `/api/categories`: what shows are filed under. Anyone may read; editors write.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use shared::{
    cache::{Entry, Kind},
    catalogue::{
        categories::{self, Category, CategoryInput},
        scopes,
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use super::public_read;
use crate::{auth::Editor, error::ApiError, extract::Json, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update, delete))
}

#[utoipa::path(get, path = "/api/categories", tag = "catalogue",
    responses((status = 200, body = [Category]), (status = 304, description = "The copy named in If-None-Match is current")))]
#[tracing::instrument(skip_all)]
pub async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let entry = Entry {
        kind: Kind::Categories,
        key: "categories".into(),
        scope: scopes::CATEGORIES.into(),
    };
    public_read(
        &state,
        &entry,
        "categories",
        categories::list(&state.core.db),
    )
    .await
}

#[utoipa::path(post, path = "/api/categories", tag = "catalogue", security(("bearer" = [])),
    request_body = CategoryInput,
    responses((status = 201, body = Category), (status = 403), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id))]
pub async fn create(
    State(state): State<AppState>,
    editor: Editor,
    Json(input): Json<CategoryInput>,
) -> Result<(StatusCode, axum::Json<Category>), ApiError> {
    let category = categories::create(&state.core.db, &state.core.cache, input).await?;
    Ok((StatusCode::CREATED, axum::Json(category)))
}

#[utoipa::path(put, path = "/api/categories/{id}", tag = "catalogue", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Category id")), request_body = CategoryInput,
    responses((status = 200, body = Category), (status = 403), (status = 404), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, category_id = %id))]
pub async fn update(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
    Json(input): Json<CategoryInput>,
) -> Result<axum::Json<Category>, ApiError> {
    Ok(axum::Json(
        categories::update(&state.core.db, &state.core.cache, id, input).await?,
    ))
}

/// Deletes a category no show is filed under (409 `IN_USE` otherwise).
#[utoipa::path(delete, path = "/api/categories/{id}", tag = "catalogue", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Category id")),
    responses((status = 204), (status = 403), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(editor_id = %editor.0.user_id, category_id = %id))]
pub async fn delete(
    State(state): State<AppState>,
    editor: Editor,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    categories::delete(&state.core.db, &state.core.cache, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
