//! Accounts: list and search users, change a role, disable or enable an account.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use shared::{
    accounts::{
        self, Role,
        users::{self, User, UserSummary},
    },
    audit::Actor,
    validation::{PageSize, filter_text, schema},
};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{error::ApiError, extract::Json, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(users))
        .routes(routes!(change_role))
        .routes(routes!(set_disabled))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    role: Role,
}

/// Gives a user another role; it applies from their next request.
#[utoipa::path(patch, path = "/api/admin/users/{id}/role", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")), request_body = RoleChange,
    responses((status = 200, body = User), (status = 403), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(admin_id = %admin.user_id, user_id = %id))]
pub async fn change_role(
    State(state): State<AppState>,
    admin: Actor,
    Path(id): Path<Uuid>,
    Json(change): Json<RoleChange>,
) -> Result<axum::Json<User>, ApiError> {
    let user = accounts::admin::change_role(&state.core, &admin, id, change.role).await?;
    Ok(axum::Json(user))
}

/// The longest text the user search takes.
const SEARCH_MAX: usize = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserFilters {
    /// Part of a name, email or phone number.
    #[param(schema_with = schema::filter_text::<SEARCH_MAX>)]
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    q: Option<String>,
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent_name")]
    role: Option<Role>,
    /// Users older than this one (the last id of the previous page).
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    before: Option<Uuid>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    limit: Option<u32>,
}

/// Users, newest first, by role and by part of their name, email or phone.
#[utoipa::path(get, path = "/api/admin/users", tag = "admin", security(("bearer" = [])),
    params(UserFilters), responses((status = 200, body = [UserSummary]), (status = 422)))]
#[tracing::instrument(skip_all)]
pub async fn users(
    State(state): State<AppState>,
    Query(filters): Query<UserFilters>,
) -> Result<axum::Json<Vec<UserSummary>>, ApiError> {
    let limit = PageSize::parse(filters.limit, 50, 200)?.as_i64();
    let text = filter_text("q", filters.q.as_deref(), SEARCH_MAX)?;
    Ok(axum::Json(
        users::search(
            &state.core.db,
            text.as_deref(),
            filters.role,
            filters.before,
            limit,
        )
        .await?,
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Standing {
    disabled: bool,
}

/// Disables an account (every session ends at once, on every instance) or enables it again.
#[utoipa::path(put, path = "/api/admin/users/{id}/disabled", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "User id")), request_body = Standing,
    responses((status = 204), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(admin_id = %admin.user_id, user_id = %id))]
pub async fn set_disabled(
    State(state): State<AppState>,
    admin: Actor,
    Path(id): Path<Uuid>,
    Json(standing): Json<Standing>,
) -> Result<StatusCode, ApiError> {
    accounts::admin::set_disabled(&state.core, &admin, id, standing.disabled).await?;
    Ok(StatusCode::NO_CONTENT)
}
