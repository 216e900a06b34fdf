//! `/api/admin`: what only a SUPER_ADMIN may do. The role is required by the route layer in
//! `startup`, not checked here; every change is written to the audit log.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
};
use serde::Deserialize;
use serde_json::json;
use shared::{
    accounts::{
        Role,
        users::{self, User, UserSummary},
    },
    audit::{self, AuditEntry, AuditFilters, AuditRecord},
    bookings::{
        SeatSelection,
        manual::{self, ManualError},
        showtime_cancellation::{self, RefundProgress},
        view::BookingView,
    },
    jobs::{
        PaymentSignal, ReservationScope, ReserveSeats, VerifyPayment,
        admin::{DeadLetter, QueueAdminError},
    },
    payments::{
        PaymentError,
        reconcile::{self, PaymentDetail, PaymentFilters, PaymentRecord},
        refunds::{RefundView, Requester},
    },
    validation::{FieldError, PageSize},
};
use utoipa::{IntoParams, ToSchema};
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
            before: Some(json!({ "role": before })),
            after: Some(json!({ "role": user.role })),
            ..super::audit_by(
                &admin,
                &client,
                &request_id,
                "user.role_changed",
                "user",
                id.to_string(),
            )
        },
    )
    .await?;
    tx.commit().await?;
    account_changed(&state, id).await;
    Ok(axum::Json(user))
}

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
    let (refund, _) = super::bookings::refund(
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
        reconcile::list(&state.db, &filters, limit).await?,
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
    reconcile::detail(&state.db, id)
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
    let order_id = sqlx::query_scalar!("SELECT provider_order_id FROM payments WHERE id = $1", id)
        .fetch_optional(&state.db)
        .await?
        .ok_or(ApiError::NotFound("payment"))?;
    let paid = state
        .razorpay
        .order_payments(&order_id)
        .await
        .map_err(PaymentError::from)?;
    for payment in paid
        .into_iter()
        .filter(|p| matches!(p.status.as_str(), "authorized" | "captured"))
    {
        let job = VerifyPayment {
            provider_order_id: order_id.clone(),
            provider_payment_id: payment.id,
            signal: PaymentSignal::Reconciliation,
        };
        state.jobs.publish(&job).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserFilters {
    /// Part of a name, email or phone number.
    q: Option<String>,
    role: Option<Role>,
    /// Users older than this one (the last id of the previous page).
    before: Option<Uuid>,
    /// 1 to 200 (default 50).
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
    let text = filters
        .q
        .as_deref()
        .map(str::trim)
        .filter(|q| !q.is_empty());
    if text.is_some_and(|q| q.chars().count() > 200) {
        return Err(FieldError::new("q", "must be at most 200 characters").into());
    }
    Ok(axum::Json(
        users::search(&state.db, text, filters.role, filters.before, limit).await?,
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
    admin: AuthUser,
    client: ClientInfo,
    RequestId(request_id): RequestId,
    Path(id): Path<Uuid>,
    Json(standing): Json<Standing>,
) -> Result<StatusCode, ApiError> {
    if id == admin.user_id {
        return Err(ApiError::Conflict {
            code: "OWN_ACCOUNT",
            message: "you cannot disable your own account".into(),
        });
    }
    let mut tx = state.db.begin().await?;
    let before = users::set_disabled(&mut tx, id, standing.disabled)
        .await?
        .ok_or(ApiError::NotFound("user"))?;
    audit::record(
        &mut tx,
        AuditEntry {
            before: Some(json!({ "disabled": before })),
            after: Some(json!({ "disabled": standing.disabled })),
            ..super::audit_by(
                &admin,
                &client,
                &request_id,
                if standing.disabled {
                    "user.disabled"
                } else {
                    "user.enabled"
                },
                "user",
                id.to_string(),
            )
        },
    )
    .await?;
    tx.commit().await?;
    account_changed(&state, id).await;
    Ok(StatusCode::NO_CONTENT)
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
    Ok(axum::Json(audit::search(&state.db, &filters, limit).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// 1 to 200 (default 50).
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
    admin: AuthUser,
    client: ClientInfo,
    RequestId(request_id): RequestId,
    Path((kind, message_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    if !state.queues.replay(&kind, &message_id).await? {
        return Err(ApiError::NotFound("dead letter"));
    }
    audit::record_one(
        &state.db,
        super::audit_by(
            &admin,
            &client,
            &request_id,
            "job.replayed",
            "job",
            format!("{kind}:{message_id}"),
        ),
    )
    .await?;
    Ok(StatusCode::ACCEPTED)
}

impl From<ManualError> for ApiError {
    fn from(error: ManualError) -> Self {
        match error {
            ManualError::NotFound(what) => Self::NotFound(what),
            ManualError::Invalid(field) => field.into(),
            ManualError::Conflict { code, message } => Self::Conflict { code, message },
            ManualError::Database(error) => error.into(),
        }
    }
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
            ..super::audit_by(&admin, &client, &request_id, "booking.manual_created", "booking", booking_id.to_string())
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
            ..super::audit_by(
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
    super::bookings::seats_changed(&state, id, showtime_id).await
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
        let (_, view) = super::bookings::refund(
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
            ..super::audit_by(
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
        super::bookings::seats_changed(&state, id, showtime_id).await?,
    ))
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
    showtime_cancellation::refund_progress(&state.db, id)
        .await?
        .map(axum::Json)
        .ok_or(ApiError::NotFound("showtime"))
}
