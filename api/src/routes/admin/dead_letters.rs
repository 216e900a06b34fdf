//! Dead letters: the jobs that failed for good, per kind, and their replay.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use shared::{
    audit::Actor,
    jobs::admin::{DeadLetter, QueueAdminError},
    validation::PageSize,
};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{error::ApiError, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(dead_letters))
        .routes(routes!(replay_dead_letter))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    #[serde(default, deserialize_with = "shared::validation::empty_is_absent")]
    limit: Option<u32>,
}

impl From<QueueAdminError> for ApiError {
    fn from(error: QueueAdminError) -> Self {
        match error {
            QueueAdminError::UnknownKind(_) => ApiError::NotFound("job kind"),
            QueueAdminError::Broker(error) => {
                tracing::warn!(%error, "queue administration failed");
                ApiError::Unavailable("the job queue")
            }
            QueueAdminError::NotConfirmed => ApiError::Unavailable("the job queue"),
            QueueAdminError::Database(error) => error.into(),
        }
    }
}

/// The dead letters of a job kind (`reserve-seats`, `verify-payment`, `refund`, `send-otp`,
/// `send-email-verification`), oldest first, with why they died. Listing leaves them in their queue.
#[utoipa::path(get, path = "/api/admin/dead-letters/{kind}", tag = "admin", security(("bearer" = [])),
    params(("kind" = String, Path, description = "Job kind"), DeadLetterQuery),
    responses((status = 200, body = [DeadLetter]), (status = 404), (status = 503)))]
#[tracing::instrument(skip_all, fields(kind = %kind))]
pub async fn dead_letters(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Query(query): Query<DeadLetterQuery>,
) -> Result<axum::Json<Vec<DeadLetter>>, ApiError> {
    let limit = PageSize::parse(query.limit, 50, 200)?.as_usize();
    Ok(axum::Json(state.queues.dead_letters(&kind, limit).await?))
}

/// Puts a dead letter back on its work queue, once its cause is fixed.
#[utoipa::path(post, path = "/api/admin/dead-letters/{kind}/{message_id}/replay", tag = "admin",
    security(("bearer" = [])),
    params(("kind" = String, Path, description = "Job kind"),
           ("message_id" = String, Path, description = "The job's idempotency key")),
    responses((status = 202), (status = 404), (status = 503)))]
#[tracing::instrument(skip_all, fields(admin_id = %admin.user_id, kind = %kind))]
pub async fn replay_dead_letter(
    State(state): State<AppState>,
    admin: Actor,
    Path((kind, message_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let queues = &state.queues;
    if !queues
        .replay_for(&state.core.db, &admin, &kind, &message_id)
        .await?
    {
        return Err(ApiError::NotFound("dead letter"));
    }
    Ok(StatusCode::ACCEPTED)
}
