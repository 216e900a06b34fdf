//! `/api/users/me`: the caller's own profile and device sessions. Every query is scoped to the
//! caller, so another user's session answers 404, as if it did not exist.

use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use serde::{Deserialize, Serialize};
use shared::accounts::{
    Email,
    preferences::{self, Preferences},
    sessions::{self, SessionView},
    sign_in,
    users::{self, User},
};
use shared::validation::schema;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{auth::AuthUser, error::ApiError, extract::Json, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me, update_me))
        .routes(routes!(list_sessions, revoke_other_sessions))
        .routes(routes!(revoke_session))
        .routes(routes!(preferences, replace_preferences))
}

/// The caller's preferences: default city, language, and which messages they want. Defaults
/// (no city, `en`, booking messages by email and SMS, no offers) until they choose.
#[utoipa::path(get, path = "/api/users/me/preferences", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Preferences)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn preferences(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Preferences>, ApiError> {
    Ok(axum::Json(
        preferences::read(&state.core.db, user.user_id).await?,
    ))
}

/// Replaces the caller's preferences as a whole.
#[utoipa::path(put, path = "/api/users/me/preferences", tag = "users", security(("bearer" = [])),
    request_body = Preferences, responses((status = 200, body = Preferences)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn replace_preferences(
    State(state): State<AppState>,
    user: AuthUser,
    Json(chosen): Json<Preferences>,
) -> Result<axum::Json<Preferences>, ApiError> {
    let chosen = chosen.parse()?;
    preferences::replace(&state.core.db, user.user_id, &chosen).await?;
    Ok(axum::Json(chosen))
}

/// The caller's profile (cached; `X-Cache` says from where).
#[utoipa::path(get, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = User), (status = 304, description = "The copy named in If-None-Match is current"), (status = 401)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Response, ApiError> {
    let cached = state
        .core
        .cache
        .get_or_load(
            &users::profile_cache_entry(user.user_id),
            users::find(&state.core.db, user.user_id),
        )
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    Ok(super::cached_json(cached, super::Reuse::Private))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileChange {
    #[schema(schema_with = schema::required_text_or_null::<{ users::NAME_MAX }>)]
    name: Option<String>,
    /// A new email is unverified until proven again: a code is mailed to it.
    #[schema(schema_with = Email::schema_or_null)]
    email: Option<String>,
}

/// Changes the caller's name and/or email.
#[utoipa::path(patch, path = "/api/users/me", tag = "users", security(("bearer" = [])),
    request_body = ProfileChange,
    responses((status = 200, body = User), (status = 409, description = "Email taken"), (status = 422)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn update_me(
    State(state): State<AppState>,
    user: AuthUser,
    Json(change): Json<ProfileChange>,
) -> Result<axum::Json<User>, ApiError> {
    if change.name.is_none() && change.email.is_none() {
        return Err(ApiError::unprocessable(
            "VALIDATION_FAILED",
            "nothing to change",
        ));
    }
    let name = change.name.as_deref().map(users::parse_name).transpose()?;
    let email = change.email.as_deref().map(Email::parse).transpose()?;
    let updated =
        users::change_profile(&state.core, user.user_id, name.as_deref(), email.as_ref()).await?;
    Ok(axum::Json(updated))
}

/// The caller's signed-in devices, most recently used first.
#[utoipa::path(get, path = "/api/users/me/sessions", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = [SessionView]), (status = 401)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn list_sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Vec<SessionView>>, ApiError> {
    Ok(axum::Json(
        sessions::list(&state.core.db, user.user_id, user.session_id).await?,
    ))
}

/// Signs one of the caller's devices out.
#[utoipa::path(delete, path = "/api/users/me/sessions/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Session id")),
    responses((status = 204), (status = 404, description = "No such session of yours")))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn revoke_session(
    State(state): State<AppState>,
    user: AuthUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    if sign_in::end_session(&state.core, user.user_id, id, "revoked by the user").await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("session"))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    revoked: u64,
}

/// Signs every other device of the caller out.
#[utoipa::path(delete, path = "/api/users/me/sessions", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Revoked)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn revoke_other_sessions(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<axum::Json<Revoked>, ApiError> {
    let revoked = sign_in::end_other_sessions(&state.core, user.user_id, user.session_id).await?;
    Ok(axum::Json(Revoked { revoked }))
}
