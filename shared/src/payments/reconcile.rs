//! Reconciliation for admins: payment records with their Razorpay ids, amounts, method, status
//! history, refunds and raw webhook events, and the records where money and bookings disagree.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{PaymentStatus, razorpay::Razorpay, refunds::RefundView};
use crate::{
    bookings::BookingStatus,
    core::Core,
    error::DomainError,
    jobs::{PaymentSignal, VerifyPayment},
    money::Paise,
};

/// Where money and booking disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mismatch {
    /// Money taken, no confirmed booking, and no refund giving it back.
    CapturedWithoutConfirmedBooking,
    /// A confirmed booking whose payment is not captured.
    ConfirmedWithoutCapture,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentRecord {
    pub id: Uuid,
    pub booking_id: Uuid,
    pub booking_status: BookingStatus,
    pub provider_order_id: String,
    pub provider_payment_id: Option<String>,
    pub amount_paise: Paise,
    pub refunded_paise: Paise,
    pub currency: String,
    pub status: PaymentStatus,
    pub method: Option<String>,
    pub failure_reason: Option<String>,
    /// Every status change with its source, oldest first.
    pub status_history: Value,
    pub mismatch: Option<Mismatch>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PaymentFilters {
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent_name")]
    pub status: Option<PaymentStatus>,
    /// Only records where money and booking disagree (default false).
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub mismatched: Option<bool>,
    /// 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub limit: Option<u32>,
    /// Records older than this one (the last id of the previous page).
    #[serde(default, deserialize_with = "crate::validation::empty_is_absent")]
    pub before: Option<Uuid>,
}

/// A page of payment records, newest first.
pub async fn list(
    db: &PgPool,
    filters: &PaymentFilters,
    limit: i64,
) -> Result<Vec<PaymentRecord>, sqlx::Error> {
    records(db, filters, None, limit).await
}

async fn records(
    db: &PgPool,
    filters: &PaymentFilters,
    only: Option<Uuid>,
    limit: i64,
) -> Result<Vec<PaymentRecord>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"WITH records AS (
               SELECT p.*, b.status AS booking_status,
                      CASE
                          WHEN p.status = 'CAPTURED'
                               AND b.status NOT IN ('CONFIRMED', 'REFUND_PENDING', 'REFUNDED')
                               AND NOT EXISTS (SELECT 1 FROM refunds r WHERE r.payment_id = p.id
                                               AND r.status <> 'FAILED')
                              THEN 'CAPTURED_WITHOUT_CONFIRMED_BOOKING'
                          WHEN b.status = 'CONFIRMED' AND p.status NOT IN ('CAPTURED', 'REFUNDED')
                               AND NOT EXISTS (SELECT 1 FROM payments other WHERE other.booking_id = b.id
                                               AND other.status IN ('CAPTURED', 'REFUNDED'))
                              THEN 'CONFIRMED_WITHOUT_CAPTURE'
                      END AS mismatch
               FROM payments p JOIN bookings b ON b.id = p.booking_id
           )
           SELECT id, booking_id, booking_status AS "booking_status!: BookingStatus", provider_order_id,
                  provider_payment_id, amount_paise AS "amount_paise: Paise",
                  refunded_paise AS "refunded_paise: Paise", currency::text AS "currency!",
                  status AS "status!: PaymentStatus", method, failure_reason, status_history,
                  mismatch, created_at, updated_at
           FROM records
           WHERE ($1::payment_status IS NULL OR status = $1)
             AND (NOT $2 OR mismatch IS NOT NULL)
             AND ($3::uuid IS NULL OR (created_at, id) < (SELECT created_at, id FROM payments WHERE id = $3))
             AND ($5::uuid IS NULL OR id = $5)
           ORDER BY created_at DESC, id DESC
           LIMIT $4"#,
        filters.status as Option<PaymentStatus>,
        filters.mismatched.unwrap_or(false),
        filters.before,
        limit,
        only
    )
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| PaymentRecord {
            id: row.id,
            booking_id: row.booking_id,
            booking_status: row.booking_status,
            provider_order_id: row.provider_order_id,
            provider_payment_id: row.provider_payment_id,
            amount_paise: row.amount_paise,
            refunded_paise: row.refunded_paise,
            currency: row.currency,
            status: row.status,
            method: row.method,
            failure_reason: row.failure_reason,
            status_history: row.status_history,
            mismatch: match row.mismatch.as_deref() {
                Some("CAPTURED_WITHOUT_CONFIRMED_BOOKING") => {
                    Some(Mismatch::CapturedWithoutConfirmedBooking)
                }
                Some("CONFIRMED_WITHOUT_CAPTURE") => Some(Mismatch::ConfirmedWithoutCapture),
                _ => None,
            },
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StoredEvent {
    pub event_id: String,
    pub event_type: String,
    pub received_at: DateTime<Utc>,
    pub processed_at: Option<DateTime<Utc>>,
    pub processing_error: Option<String>,
    /// The event as Razorpay sent it.
    pub payload: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PaymentDetail {
    pub payment: PaymentRecord,
    pub refunds: Vec<RefundView>,
    pub events: Vec<StoredEvent>,
}

/// One payment with its refunds and every webhook event about its order.
pub async fn detail(db: &PgPool, id: Uuid) -> Result<Option<PaymentDetail>, sqlx::Error> {
    let Some(record) = records(db, &PaymentFilters::default(), Some(id), 1)
        .await?
        .pop()
    else {
        return Ok(None);
    };
    let refunds = super::refunds::of_booking(db, record.booking_id)
        .await?
        .into_iter()
        .filter(|refund| refund.payment_id == id)
        .collect();
    let events = sqlx::query_as!(
        StoredEvent,
        "SELECT event_id, event_type, received_at, processed_at, processing_error, payload
         FROM webhook_events
         WHERE provider_order_id = $1 OR provider_payment_id = $2
         ORDER BY received_at",
        record.provider_order_id,
        record.provider_payment_id
    )
    .fetch_all(db)
    .await?;
    Ok(Some(PaymentDetail {
        payment: record,
        refunds,
        events,
    }))
}

/// Asks Razorpay what was paid against a payment's order and settles it, as a missed webhook
/// would have: one verify-payment job per authorized or captured payment of the order.
pub async fn recheck(
    core: &Core,
    razorpay: &Razorpay,
    payment_id: Uuid,
) -> Result<(), DomainError> {
    let order_id = sqlx::query_scalar!(
        "SELECT provider_order_id FROM payments WHERE id = $1",
        payment_id
    )
    .fetch_optional(&core.db)
    .await?
    .ok_or(DomainError::NotFound("payment"))?;
    let paid = razorpay.order_payments(&order_id).await?;
    for payment in paid
        .into_iter()
        .filter(|p| matches!(p.status.as_str(), "authorized" | "captured"))
    {
        let job = VerifyPayment {
            provider_order_id: order_id.clone(),
            provider_payment_id: payment.id,
            signal: PaymentSignal::Reconciliation,
        };
        core.jobs.publish(&job).await?;
    }
    Ok(())
}
