//! What the buyer's client does around Razorpay Checkout: get an order for a held booking, and
//! hand back what Checkout returned for verification.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    PaymentStatus, history_entry, razorpay::Razorpay, signature::checkout_signature_valid,
};
use crate::{
    bookings::BookingStatus,
    core::Core,
    error::DomainError,
    jobs::{PaymentSignal, VerifyPayment},
    money::Paise,
    validation::FieldError,
};

/// What Razorpay Checkout needs to take the payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckoutOrder {
    pub key_id: String,
    pub order_id: String,
    pub amount_paise: Paise,
    pub currency: String,
    pub booking_id: Uuid,
    /// The seats are held until then; pay before. A payment after it is a late one: kept only
    /// if the sale still runs, the seats are free and the buyer is within the cap, refunded
    /// otherwise.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// Seconds left until `hold_expires_at`: pass it as Checkout's `timeout` option, so that
    /// Checkout closes when the hold does.
    pub timeout: Option<i64>,
}

/// The Razorpay order of the caller's held booking: created on the first call, the same one on
/// every later call.
#[tracing::instrument(skip(db, razorpay))]
pub async fn order_for_booking(
    db: &PgPool,
    razorpay: &Razorpay,
    user_id: Uuid,
    booking_id: Uuid,
) -> Result<CheckoutOrder, DomainError> {
    let booking = sqlx::query!(
        r#"SELECT user_id, status AS "status: BookingStatus", hold_expires_at,
                  total_paise AS "total_paise: Paise", currency::text AS "currency!"
           FROM bookings WHERE id = $1"#,
        booking_id
    )
    .fetch_optional(db)
    .await?
    .filter(|booking| booking.user_id == user_id)
    .ok_or(DomainError::NotFound("booking"))?;
    let order = |order_id: String, amount_paise: Paise, currency: String| CheckoutOrder {
        key_id: razorpay.key_id().to_owned(),
        order_id,
        amount_paise,
        currency,
        booking_id,
        hold_expires_at: booking.hold_expires_at,
        timeout: booking
            .hold_expires_at
            .map(|deadline| (deadline - Utc::now()).num_seconds().max(0)),
    };
    if let Some(existing) = existing_order(db, booking_id).await? {
        if existing.status == PaymentStatus::Captured || booking.status == BookingStatus::Confirmed
        {
            return Err(DomainError::conflict(
                "ALREADY_PAID",
                "this booking is paid",
            ));
        }
        if booking.status == BookingStatus::Reserved {
            return Ok(order(
                existing.provider_order_id,
                existing.amount_paise,
                existing.currency,
            ));
        }
    }
    match booking.status {
        BookingStatus::Reserved
            if booking
                .hold_expires_at
                .is_some_and(|deadline| deadline > Utc::now()) => {}
        BookingStatus::Reserved | BookingStatus::Expired => {
            return Err(DomainError::conflict(
                "HOLD_EXPIRED",
                "the seats are no longer held; book again",
            ));
        }
        BookingStatus::Confirmed | BookingStatus::RefundPending | BookingStatus::Refunded => {
            return Err(DomainError::conflict(
                "ALREADY_PAID",
                "this booking is paid",
            ));
        }
        status => {
            return Err(DomainError::conflict(
                "NOT_RESERVED",
                format!("a {status:?} booking cannot be paid"),
            ));
        }
    }
    if booking.total_paise == Paise::ZERO {
        return Err(DomainError::conflict(
            "NOTHING_TO_PAY",
            "this booking costs nothing",
        ));
    }
    let created = razorpay
        .create_order(
            booking.total_paise,
            &booking.currency,
            &booking_id.to_string(),
            json!({"booking_id": booking_id, "user_id": user_id,
                   "expires_at": booking.hold_expires_at}),
        )
        .await?;
    // Two concurrent first calls both reach Razorpay; the index on open orders per booking
    // keeps one, and both callers get that one (the other order is never paid and lapses).
    let history =
        serde_json::Value::Array(vec![history_entry(PaymentStatus::Created, "order", None)]);
    sqlx::query!(
        "INSERT INTO payments (booking_id, provider_order_id, amount_paise, currency, status_history)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (booking_id) WHERE status <> 'FAILED' DO NOTHING",
        booking_id,
        created.id,
        booking.total_paise.get(),
        booking.currency,
        history
    )
    .execute(db)
    .await?;
    let stored = existing_order(db, booking_id)
        .await?
        .ok_or(DomainError::NotFound("payment"))?;
    Ok(order(
        stored.provider_order_id,
        stored.amount_paise,
        stored.currency,
    ))
}

struct ExistingOrder {
    provider_order_id: String,
    amount_paise: Paise,
    currency: String,
    status: PaymentStatus,
}

async fn existing_order(
    db: &PgPool,
    booking_id: Uuid,
) -> Result<Option<ExistingOrder>, sqlx::Error> {
    sqlx::query_as!(
        ExistingOrder,
        r#"SELECT provider_order_id, amount_paise AS "amount_paise: Paise", currency::text AS "currency!",
                  status AS "status: PaymentStatus"
           FROM payments WHERE booking_id = $1
           ORDER BY (status = 'FAILED'), created_at DESC LIMIT 1"#,
        booking_id
    )
    .fetch_optional(db)
    .await
}

/// What Checkout hands back after a payment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutResult {
    #[schema(pattern = r"^[A-Za-z0-9_]{1,64}$")]
    pub razorpay_order_id: String,
    #[schema(pattern = r"^[A-Za-z0-9_]{1,64}$")]
    pub razorpay_payment_id: String,
    pub razorpay_signature: String,
}

/// A Razorpay id as Checkout hands it back (`order_...`, `pay_...`): 1 to 64 letters, digits
/// and underscores. Anything else is refused before it reaches a query (Postgres refuses a NUL
/// in text, which would otherwise surface as a 500).
fn provider_id<'a>(field: &'static str, value: &'a str) -> Result<&'a str, FieldError> {
    let value = value.trim();
    let valid = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid {
        Ok(value)
    } else {
        Err(FieldError::new(
            field,
            "a Razorpay id: 1 to 64 letters, digits and underscores",
        ))
    }
}

/// A buyer's Checkout result: its signature checked, then the verification job queued (the
/// worker asks Razorpay and settles). Returns the booking it pays for. An invalid signature
/// marks the payment attempt failed and leaves the hold as it was.
pub async fn verify(
    core: &Core,
    user_id: Uuid,
    result: CheckoutResult,
) -> Result<Uuid, DomainError> {
    let key_secret = core.settings.razorpay.key_secret.expose();
    let (booking_id, job) = verification_job(&core.db, key_secret, user_id, result).await?;
    core.jobs.publish(&job).await?;
    Ok(booking_id)
}

#[tracing::instrument(skip_all, fields(user_id = %user_id))]
async fn verification_job(
    db: &PgPool,
    key_secret: &str,
    user_id: Uuid,
    result: CheckoutResult,
) -> Result<(Uuid, VerifyPayment), DomainError> {
    let order_id = provider_id("razorpay_order_id", &result.razorpay_order_id)?;
    let payment_id = provider_id("razorpay_payment_id", &result.razorpay_payment_id)?;
    let payment = sqlx::query!(
        r#"SELECT p.id, p.booking_id, p.provider_order_id, p.status AS "status: PaymentStatus"
           FROM payments p JOIN bookings b ON b.id = p.booking_id
           WHERE p.provider_order_id = $1 AND b.user_id = $2"#,
        order_id,
        user_id
    )
    .fetch_optional(db)
    .await?
    .ok_or(DomainError::NotFound("order"))?;
    if !checkout_signature_valid(
        key_secret,
        &payment.provider_order_id,
        payment_id,
        &result.razorpay_signature,
    ) {
        super::settle::record_failure(db, payment.id, "checkout", "signature mismatch").await?;
        return Err(DomainError::BadSignature);
    }
    Ok((
        payment.booking_id,
        VerifyPayment {
            provider_order_id: payment.provider_order_id,
            provider_payment_id: payment_id.to_owned(),
            signal: PaymentSignal::Checkout {
                signature: result.razorpay_signature,
            },
        },
    ))
}
