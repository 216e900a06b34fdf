//! The audit log: who changed what, when, and why.

use axum::extract::{Query, State};
use shared::{
    audit::{self, AuditFilters, AuditRecord},
    validation::PageSize,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::ApiError, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(audit_log))
}

/// The audit log, newest first, by actor, action, resource and time.
#[utoipa::path(get, path = "/api/admin/audit", tag = "admin", security(("bearer" = [])),
    params(AuditFilters), responses((status = 200, body = [AuditRecord]), (status = 422)))]
#[tracing::instrument(skip_all)]
pub async fn audit_log(
    State(state): State<AppState>,
    Query(filters): Query<AuditFilters>,
) -> Result<axum::Json<Vec<AuditRecord>>, ApiError> {
    let limit = PageSize::parse(filters.limit, 100, 500)?.as_i64();
    Ok(axum::Json(
        audit::search(&state.core.db, &filters, limit).await?,
    ))
}
