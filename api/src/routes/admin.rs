//! `/api/admin`: what only a SUPER_ADMIN may do. The role is required by the route layer in
//! `startup`, not checked here; every change is written to the audit log in its transaction.

use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::json;
use shared::{
    accounts::{
        Role,
        users::{self, User},
    },
    audit::{self, AuditEntry},
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{AuthUser, account_changed},
    error::ApiError,
    extract::{ClientInfo, Json, RequestId},
    state::AppState,
};

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
    admin: AuthUser,
    client: ClientInfo,
    RequestId(request_id): RequestId,
    Path(id): Path<Uuid>,
    Json(change): Json<RoleChange>,
) -> Result<axum::Json<User>, ApiError> {
    if id == admin.user_id {
        return Err(ApiError::Conflict {
            code: "OWN_ROLE",
            message: "you cannot change your own role".into(),
        });
    }
    let mut tx = state.db.begin().await?;
    let before: Option<Role> = sqlx::query_scalar!(
        r#"SELECT role AS "role: Role" FROM users WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *tx)
    .await?;
    let before = before.ok_or(ApiError::NotFound("user"))?;
    let user = users::set_role(&mut tx, id, change.role)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    audit::record(
        &mut tx,
        AuditEntry {
            actor_id: Some(admin.user_id),
            actor_role: Some(admin.role),
            action: "user.role_changed",
            resource_type: "user",
            resource_id: id.to_string(),
            ip: client.ip,
            request_id: Some(&request_id),
            before: Some(json!({ "role": before })),
            after: Some(json!({ "role": user.role })),
        },
    )
    .await?;
    tx.commit().await?;
    account_changed(&state, id).await;
    Ok(axum::Json(user))
}
