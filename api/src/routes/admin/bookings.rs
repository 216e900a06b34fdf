//! Bookings an admin acts on: manual bookings (comps), seat moves, cancellations and refunds,
//! each with the reason the audit log keeps.

use axum::{
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::json;
use shared::{
    audit::{self, AuditEntry},
    bookings::{SeatSelection, manual, view::BookingView},
    jobs::{ReservationScope, ReserveSeats},
    payments::refunds::{RefundView, Requester},
    validation::FieldError,
};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::AuthUser,
    error::ApiError,
    extract::{ClientInfo, Json, RequestId},
    state::AppState,
};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundOrder {
    /// Seats to refund; absent or empty for the whole booking.
    #[serde(default)]
    seat_ids: Vec<Uuid>,
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
    admin: AuthUser,
    client: ClientInfo,
    RequestId(request_id): RequestId,
    Path(id): Path<Uuid>,
    Json(order): Json<RefundOrder>,
) -> Result<(StatusCode, axum::Json<RefundView>), ApiError> {
    let why = reason(&order.reason)?;
    let (refund, _) = crate::routes::bookings::refund(
        &state,
        &admin,
        &client,
        &request_id,
        id,
        &order.seat_ids,
        why,
        Requester::Admin(admin.user_id),
    )
    .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(refund)))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManualBooking {
    user_id: Uuid,
    showtime_id: Uuid,
    seat_ids: Vec<Uuid>,
    /// Free tickets: confirmed as soon as the seats are held, no payment.
    #[serde(default)]
    comp: bool,
    reason: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ManualAccepted {
    booking_id: Uuid,
    status_url: String,
}

fn reason(text: &str) -> Result<&str, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > 500 {
        return Err(FieldError::new("reason", "say why, in at most 500 characters").into());
    }
    Ok(text)
}

/// Books named seats for a user, outside the sale window and past the per-buyer cap if need
/// be, through the same reservation path as buyers (202; follow the status URL).
#[utoipa::path(post, path = "/api/admin/bookings", tag = "admin", security(("bearer" = [])),
    request_body = ManualBooking,
    responses((status = 202, body = ManualAccepted), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(admin_id = %admin.user_id))]
pub async fn manual_booking(
    State(state): State<AppState>,
    admin: AuthUser,
    client: ClientInfo,
    RequestId(request_id): RequestId,
    Json(order): Json<ManualBooking>,
) -> Result<(StatusCode, axum::Json<ManualAccepted>), ApiError> {
    let why = reason(&order.reason)?;
    let max = state.settings.bookings.max_seats_per_booking;
    let selection = SeatSelection::parse(Some(order.seat_ids), None, None, max)?;
    let mut tx = state.db.begin().await?;
    let booking_id = manual::create(
        &mut tx,
        admin.user_id,
        order.user_id,
        order.showtime_id,
        &selection,
        order.comp,
    )
    .await?;
    audit::record(
        &mut tx,
        AuditEntry {
            after: Some(json!({"user_id": order.user_id, "showtime_id": order.showtime_id,
                               "seats": selection.named_seats(), "comp": order.comp, "reason": why})),
            ..crate::routes::audit_by(&admin, &client, &request_id, "booking.manual_created", "booking", booking_id.to_string())
        },
    )
    .await?;
    tx.commit().await?;
    let job = ReserveSeats {
        booking_id,
        scope: Some(ReservationScope {
            showtime_id: order.showtime_id,
            section_id: None,
        }),
        request: None,
    };
    if let Err(error) = state.jobs.publish(&job).await {
        tracing::error!(%error, %booking_id, "reservation job not published yet; the sweep will");
    }
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
    seat_ids: Vec<Uuid>,
    reason: String,
}

/// Moves a held or confirmed booking to other free seats of its showtime (as many as it has).
#[utoipa::path(put, path = "/api/admin/bookings/{id}/seats", tag = "admin", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "Booking id")), request_body = SeatChange,
    responses((status = 200, body = BookingView), (status = 404), (status = 409), (status = 422)))]
#[tracing::instrument(skip_all, fields(admin_id = %admin.user_id, booking_id = %id))]
pub async fn move_seats(
    State(state): State<AppState>,
    admin: AuthUser,
    client: ClientInfo,
    RequestId(request_id): RequestId,
    Path(id): Path<Uuid>,
    Json(change): Json<SeatChange>,
) -> Result<axum::Json<BookingView>, ApiError> {
    let why = reason(&change.reason)?;
    let mut tx = state.db.begin().await?;
    let (showtime_id, before) = manual::move_seats(&mut tx, id, &change.seat_ids).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            before: Some(json!({"seats": before})),
            after: Some(json!({"seats": change.seat_ids, "reason": why})),
            ..crate::routes::audit_by(
                &admin,
                &client,
                &request_id,
                "booking.seats_moved",
                "booking",
                id.to_string(),
            )
        },
    )
    .await?;
    tx.commit().await?;
    crate::routes::bookings::seats_changed(&state, id, showtime_id).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancellation {
    /// Give the money back (a refund through Razorpay) or not.
    refund: bool,
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
    admin: AuthUser,
    client: ClientInfo,
    RequestId(request_id): RequestId,
    Path(id): Path<Uuid>,
    Json(cancellation): Json<Cancellation>,
) -> Result<(StatusCode, axum::Json<BookingView>), ApiError> {
    let why = reason(&cancellation.reason)?;
    if cancellation.refund {
        let (_, view) = crate::routes::bookings::refund(
            &state,
            &admin,
            &client,
            &request_id,
            id,
            &[],
            why,
            Requester::Admin(admin.user_id),
        )
        .await?;
        return Ok((StatusCode::ACCEPTED, axum::Json(view)));
    }
    let mut tx = state.db.begin().await?;
    let showtime_id = manual::cancel_without_refund(&mut tx, id).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            after: Some(json!({"reason": why})),
            ..crate::routes::audit_by(
                &admin,
                &client,
                &request_id,
                "booking.canceled_without_refund",
                "booking",
                id.to_string(),
            )
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::OK,
        crate::routes::bookings::seats_changed(&state, id, showtime_id).await?,
    ))
}
