//! `/api/razorpay`: orders for held bookings, Checkout results, and Razorpay's webhooks.
//! Verification itself is a job: these handlers check, record and enqueue.

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::{Deserialize, Serialize};
use shared::payments::{
    checkout::{self, CheckoutOrder, CheckoutResult},
    webhooks::{self, WebhookError},
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{auth::AuthUser, error::ApiError, extract::Json, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_order))
        .routes(routes!(verify))
        .routes(routes!(webhook))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderRequest {
    booking_id: Uuid,
}

/// The Razorpay order for the caller's RESERVED booking (the same one however often asked),
/// with what Checkout needs.
#[utoipa::path(post, path = "/api/razorpay/orders", tag = "payments", security(("bearer" = [])),
    request_body = OrderRequest,
    responses((status = 200, body = CheckoutOrder), (status = 404), (status = 409), (status = 503)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id, booking_id = %request.booking_id))]
pub async fn create_order(
    State(state): State<AppState>,
    user: AuthUser,
    Json(request): Json<OrderRequest>,
) -> Result<axum::Json<CheckoutOrder>, ApiError> {
    let order = checkout::order_for_booking(
        &state.core.db,
        &state.razorpay,
        user.user_id,
        request.booking_id,
    )
    .await?;
    Ok(axum::Json(order))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationAccepted {
    booking_id: Uuid,
    /// Poll (or long-poll) this until the booking is CONFIRMED.
    status_url: String,
}

/// Hands in what Checkout returned. A bad signature is refused at once (400) and fails the
/// attempt; a good one is verified by a worker against Razorpay.
#[utoipa::path(post, path = "/api/razorpay/verify", tag = "payments", security(("bearer" = [])),
    request_body = CheckoutResult,
    responses((status = 202, body = VerificationAccepted), (status = 400), (status = 404), (status = 503)))]
#[tracing::instrument(skip_all, fields(user_id = %user.user_id))]
pub async fn verify(
    State(state): State<AppState>,
    user: AuthUser,
    Json(result): Json<CheckoutResult>,
) -> Result<(StatusCode, axum::Json<VerificationAccepted>), ApiError> {
    let booking_id = checkout::verify(&state.core, user.user_id, result).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(VerificationAccepted {
            booking_id,
            status_url: format!("/api/bookings/{booking_id}?from=RESERVED&wait=10"),
        }),
    ))
}

impl From<WebhookError> for ApiError {
    fn from(error: WebhookError) -> Self {
        match error {
            WebhookError::BadSignature => Self::AuthenticationFailed {
                code: "INVALID_SIGNATURE",
                message: error.to_string(),
            },
            WebhookError::Malformed(message) => Self::BadRequest {
                code: "INVALID_WEBHOOK",
                message: message.to_owned(),
            },
            WebhookError::Queue(error) => {
                tracing::warn!(%error, "webhook stored, its job not published; Razorpay retries");
                Self::Unavailable("the job queue")
            }
            WebhookError::Database(error) => error.into(),
        }
    }
}

/// Razorpay's webhook. The signature is checked over the raw body before anything else (401
/// if it does not match, nothing stored); the event is stored once per event id and applied
/// by a worker, so this answers at once.
#[utoipa::path(post, path = "/api/razorpay/webhook", tag = "payments",
    request_body(content = String, content_type = "application/json"),
    responses((status = 200), (status = 400), (status = 401)))]
#[tracing::instrument(skip_all)]
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    webhooks::receive(
        &state.core,
        header("x-razorpay-signature"),
        header("x-razorpay-event-id"),
        &body,
    )
    .await?;
    Ok(StatusCode::OK)
}
