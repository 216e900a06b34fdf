//! Bookings an admin acts on: manual bookings (comps), seat moves, cancellations and refunds,
//! each with the reason the audit log keeps.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use shared::{
    audit::{Actor, REASON_MAX, Reason},
    bookings::{
        SeatSelection,
        manual::{self, ManualOrder},
        view::BookingView,
    },
    payments::refunds::{self, RefundView},
    validation::schema,
};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;

use crate::{error::ApiError, extract::Json, state::AppState};

/// This module's routes, each registered with its OpenAPI entry.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(manual_booking))
        .routes(routes!(refund_booking))
        .routes(routes!(move_seats))
        .routes(routes!(cancel_booking))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundOrder {
    /// Seats to refund; absent or empty for the whole booking.
    #[serde(default)]
    #[schema(schema_with = schema::distinct_ids::<0, 10>)]
    seat_ids: Vec<Uuid>,
    /// Why, for the audit log: 1 to 500 characters.
    #[schema(schema_with = schema::required_text::<{ REASON_MAX }>)]
    reason: String,
}

/// Refunds a confirmed booking, whole or some of its seats. The refund job asks Razorpay;
/// when it is processed the seats go back on sale and their tickets are void.
#[utoipa::path(post, path = "/api/admin/bookings/{id}/refund", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")), request_body = RefundOrder,
    responses((status = 202, body = RefundView), (status = 404), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(admin_id = %admin.user_id, booking_id = %id))]
pub async fn refund_booking(
    State(state): State<AppState>,
    admin: Actor,
    Path(id): Path<Uuid>,
    Json(order): Json<RefundOrder>,
) -> Result<(StatusCode, axum::Json<RefundView>), ApiError> {
    let reason = Reason::parse(&order.reason)?;
    let (refund, _) = refunds::request(&state.core, &admin, id, &order.seat_ids, &reason).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(refund)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualBooking {
    user_id: Uuid,
    showtime_id: Uuid,
    #[schema(schema_with = schema::distinct_ids::<1, 10>)]
    seat_ids: Vec<Uuid>,
    /// Free tickets: confirmed as soon as the seats are held, no payment.
    #[serde(default)]
    comp: bool,
    /// Why, for the audit log: 1 to 500 characters.
    #[schema(schema_with = schema::required_text::<{ REASON_MAX }>)]
    reason: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ManualAccepted {
    booking_id: Uuid,
    status_url: String,
}

/// Books named seats for a user, outside the sale window and past the per-buyer cap if need
/// be, through the same reservation path as buyers (202; follow the status URL).
#[utoipa::path(post, path = "/api/admin/bookings", tag = "admin", security(("bearer" = [])),
    request_body = ManualBooking,
    responses((status = 202, body = ManualAccepted), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(admin_id = %admin.user_id))]
pub async fn manual_booking(
    State(state): State<AppState>,
    admin: Actor,
    Json(order): Json<ManualBooking>,
) -> Result<(StatusCode, axum::Json<ManualAccepted>), ApiError> {
    let reason = Reason::parse(&order.reason)?;
    let max = state.core.settings.bookings.max_seats_per_booking;
    let order = ManualOrder {
        user_id: order.user_id,
        showtime_id: order.showtime_id,
        selection: SeatSelection::parse(Some(order.seat_ids), None, None, max)?,
        comp: order.comp,
        reason,
    };
    let booking_id = manual::book(&state.core, &admin, &order).await?;
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(ManualAccepted {
            booking_id,
            status_url: format!("/api/bookings/{booking_id}"),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeatChange {
    /// As many seats as the booking holds.
    #[schema(schema_with = schema::distinct_ids::<1, 10>)]
    seat_ids: Vec<Uuid>,
    /// Why, for the audit log: 1 to 500 characters.
    #[schema(schema_with = schema::required_text::<{ REASON_MAX }>)]
    reason: String,
}

/// Moves a held or confirmed booking to other free seats of its showtime (as many as it has).
#[utoipa::path(put, path = "/api/admin/bookings/{id}/seats", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")), request_body = SeatChange,
    responses((status = 200, body = BookingView), (status = 404), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(admin_id = %admin.user_id, booking_id = %id))]
pub async fn move_seats(
    State(state): State<AppState>,
    admin: Actor,
    Path(id): Path<Uuid>,
    Json(change): Json<SeatChange>,
) -> Result<axum::Json<BookingView>, ApiError> {
    let reason = Reason::parse(&change.reason)?;
    let view = manual::move_seats(&state.core, &admin, id, &change.seat_ids, &reason).await?;
    Ok(axum::Json(view))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancellation {
    /// Give the money back (a refund through Razorpay) or not.
    refund: bool,
    /// Why, for the audit log: 1 to 500 characters.
    #[schema(schema_with = schema::required_text::<{ REASON_MAX }>)]
    reason: String,
}

/// Cancels a booking: with a refund (202, as `/refund`), or without one (200; a paid booking's
/// seats go back on sale and its tickets are void, the money stays).
#[utoipa::path(post, path = "/api/admin/bookings/{id}/cancel", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")), request_body = Cancellation,
    responses((status = 200, body = BookingView), (status = 202, body = BookingView), (status = 404), (status = 409)))]
#[tracing::instrument(skip_all, fields(admin_id = %admin.user_id, booking_id = %id))]
pub async fn cancel_booking(
    State(state): State<AppState>,
    admin: Actor,
    Path(id): Path<Uuid>,
    Json(cancellation): Json<Cancellation>,
) -> Result<(StatusCode, axum::Json<BookingView>), ApiError> {
    let reason = Reason::parse(&cancellation.reason)?;
    if cancellation.refund {
        let (_, view) = refunds::request(&state.core, &admin, id, &[], &reason).await?;
        return Ok((StatusCode::ACCEPTED, axum::Json(view)));
    }
    let view = manual::cancel_without_refund(&state.core, &admin, id, &reason).await?;
    Ok((StatusCode::OK, axum::Json(view)))
}
