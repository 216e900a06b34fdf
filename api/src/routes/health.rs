//! `/health`: each dependency's status and latency, for load balancers and operators.

use axum::{Json, extract::State, http::StatusCode};
use shared::health::{HealthReport, Status};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(health))
        .routes(routes!(live))
}

/// Readiness: every component is probed with a real round trip; 503 when any is down.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses(
        (status = 200, description = "Every component is up", body = HealthReport),
        (status = 503, description = "At least one component is down", body = HealthReport),
    )
)]
#[tracing::instrument(skip_all)]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    let report = HealthReport::probe(&state.core.db, &state.core.redis, &state.core.jobs).await;
    let status = match report.status {
        Status::Up => StatusCode::OK,
        Status::Down => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, Json(report))
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Liveness {
    status: Status,
}

/// Liveness: the process is serving requests. Touches no dependency.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    responses((status = 200, description = "The process is alive", body = Liveness))
)]
pub async fn live() -> Json<Liveness> {
    Json(Liveness { status: Status::Up })
}
