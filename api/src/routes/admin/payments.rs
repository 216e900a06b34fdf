//! Payments: the records and where money and booking disagree, one payment in detail, a
//! fresh look at Razorpay, and how a canceled showtime's refunds stand.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
};
use shared::{
    bookings::showtime_cancellation::{self, RefundProgress},
    payments::reconcile::{self, PaymentDetail, PaymentFilters, PaymentRecord},
    validation::PageSize,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{error::ApiError, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(payments))
        .routes(routes!(showtime_refunds))
        .routes(routes!(payment))
        .routes(routes!(recheck_payment))
}

/// Payment records, newest first: Razorpay ids, amounts, method, status history, and where money
/// and booking disagree (`mismatched=true` lists only those).
#[utoipa::path(get, path = "/api/admin/payments", tag = "admin", security(("bearer" = [])),
    params(PaymentFilters), responses((status = 200, body = [PaymentRecord]), (status = 422)))]
#[tracing::instrument(skip_all)]
pub async fn payments(
    State(state): State<AppState>,
    Query(filters): Query<PaymentFilters>,
) -> Result<axum::Json<Vec<PaymentRecord>>, ApiError> {
    let limit = PageSize::parse(filters.limit, 50, 200)?.as_i64();
    Ok(axum::Json(
        reconcile::list(&state.core.db, &filters, limit).await?,
    ))
}

/// One payment with its refunds and the raw webhook events about it.
#[utoipa::path(get, path = "/api/admin/payments/{id}", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Payment id")),
    responses((status = 200, body = PaymentDetail), (status = 404)))]
#[tracing::instrument(skip_all, fields(payment_id = %id))]
pub async fn payment(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<PaymentDetail>, ApiError> {
    reconcile::detail(&state.core.db, id)
        .await?
        .map(axum::Json)
        .ok_or(ApiError::NotFound("payment"))
}

/// Asks Razorpay what was paid against this payment's order and settles it: what a missed
/// webhook would have done.
#[utoipa::path(post, path = "/api/admin/payments/{id}/recheck", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Payment id")),
    responses((status = 202), (status = 404), (status = 503)))]
#[tracing::instrument(skip_all, fields(payment_id = %id))]
pub async fn recheck_payment(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    reconcile::recheck(&state.core, &state.razorpay, id).await?;
    Ok(StatusCode::ACCEPTED)
}

/// How the refunds of a showtime stand (after its cancellation): open, processed and failed,
/// in number and in paise, and the bookings still waiting for their money.
#[utoipa::path(get, path = "/api/admin/showtimes/{id}/refunds", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Showtime id")),
    responses((status = 200, body = RefundProgress), (status = 404)))]
#[tracing::instrument(skip_all, fields(showtime_id = %id))]
pub async fn showtime_refunds(
    State(state): State<AppState>,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<RefundProgress>, ApiError> {
    showtime_cancellation::refund_progress(&state.core.db, id)
        .await?
        .map(axum::Json)
        .ok_or(ApiError::NotFound("showtime"))
}
