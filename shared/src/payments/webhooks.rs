//! Razorpay webhooks: the signature is checked over the raw body before anything is parsed,
//! each event is stored once by its `X-Razorpay-Event-Id`, and the job that applies it is
//! named for the caller to publish. The events are triggers only: the jobs re-read the payment
//! or refund from Razorpay, so events may come in any order and any number of times.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::signature::webhook_signature_valid;
use crate::{
    core::Core,
    jobs::{PaymentSignal, Refund, VerifyPayment},
};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the webhook signature does not match")]
    BadSignature,
    #[error("{0}")]
    Malformed(&'static str),
    /// Stored, but its job could not be queued: Razorpay delivers it again.
    #[error(transparent)]
    Queue(#[from] crate::jobs::PublishError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The job that applies a stored event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum FollowUp {
    Verify(VerifyPayment),
    Refund(Refund),
}

/// The events that move money; others are stored and ignored.
const PAYMENT_EVENTS: [&str; 4] = [
    "payment.authorized",
    "payment.captured",
    "payment.failed",
    "order.paid",
];
const REFUND_EVENTS: [&str; 4] = [
    "refund.created",
    "refund.processed",
    "refund.failed",
    "refund.speed_changed",
];

/// One delivery from Razorpay: its signature checked against the current webhook secret (or
/// the previous one, while it is rotated), the event stored, then the job that applies it
/// queued. Stored before the job: if queueing fails, Razorpay's retry of the event queues it.
pub async fn receive(
    core: &Core,
    signature: Option<&str>,
    event_id: Option<&str>,
    body: &[u8],
) -> Result<(), WebhookError> {
    let razorpay = &core.settings.razorpay;
    let secrets = std::iter::once(razorpay.webhook_secret.expose()).chain(
        razorpay
            .previous_webhook_secret
            .as_ref()
            .map(|secret| secret.expose()),
    );
    match ingest(&core.db, secrets, signature, event_id, body).await? {
        Some(FollowUp::Verify(job)) => core.jobs.publish(&job).await?,
        Some(FollowUp::Refund(job)) => core.jobs.publish(&job).await?,
        None => {}
    }
    Ok(())
}

/// Checks and stores one delivery. `Ok(None)`: nothing (more) to do, for an event applied
/// before or one we do not act on.
#[tracing::instrument(skip_all, fields(event_id))]
async fn ingest<'a>(
    db: &PgPool,
    secrets: impl IntoIterator<Item = &'a str>,
    signature: Option<&str>,
    event_id: Option<&str>,
    body: &[u8],
) -> Result<Option<FollowUp>, WebhookError> {
    let signature = signature.ok_or(WebhookError::BadSignature)?;
    if !webhook_signature_valid(secrets, body, signature) {
        return Err(WebhookError::BadSignature);
    }
    let event_id = event_id
        .map(str::trim)
        .filter(|id| !id.is_empty() && id.len() <= 100)
        .ok_or(WebhookError::Malformed("X-Razorpay-Event-Id is missing"))?;
    tracing::Span::current().record("event_id", event_id);
    let event: Value = serde_json::from_slice(body)
        .map_err(|_| WebhookError::Malformed("the body is not JSON"))?;
    let event_type = event["event"]
        .as_str()
        .ok_or(WebhookError::Malformed("the body names no event"))?
        .to_owned();
    let payment = &event["payload"]["payment"]["entity"];
    let refund = &event["payload"]["refund"]["entity"];
    let order_id = payment["order_id"]
        .as_str()
        .or_else(|| event["payload"]["order"]["entity"]["id"].as_str());
    let payment_id = payment["id"]
        .as_str()
        .or_else(|| refund["payment_id"].as_str());
    let refund_id = refund["id"].as_str();
    let follow_up = if PAYMENT_EVENTS.contains(&event_type.as_str()) {
        match (order_id, payment["id"].as_str()) {
            (Some(order_id), Some(payment_id)) => Some(FollowUp::Verify(VerifyPayment {
                provider_order_id: order_id.to_owned(),
                provider_payment_id: payment_id.to_owned(),
                signal: PaymentSignal::Webhook {
                    event_id: event_id.to_owned(),
                },
            })),
            _ => {
                return Err(WebhookError::Malformed(
                    "a payment event without its order and payment ids",
                ));
            }
        }
    } else if REFUND_EVENTS.contains(&event_type.as_str()) {
        let ours = refund["notes"]["refund_id"]
            .as_str()
            .or_else(|| refund["receipt"].as_str())
            .and_then(|id| id.parse::<Uuid>().ok());
        ours.map(|refund_id| {
            FollowUp::Refund(Refund {
                refund_id,
                event_id: Some(event_id.to_owned()),
            })
        })
    } else {
        None
    };
    let stored = sqlx::query_scalar!(
        r#"INSERT INTO webhook_events
               (event_id, event_type, payload, provider_order_id, provider_payment_id, provider_refund_id,
                processed_at)
           VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $7 THEN NULL ELSE now() END)
           ON CONFLICT (event_id) DO UPDATE SET event_id = EXCLUDED.event_id
           RETURNING processed_at IS NULL AS "pending!""#,
        event_id,
        event_type,
        event,
        order_id,
        payment_id,
        refund_id,
        follow_up.is_some()
    )
    .fetch_one(db)
    .await?;
    // A repeat of an event not applied yet is published again (its first publish may have been
    // lost); the jobs are idempotent.
    Ok(follow_up.filter(|_| stored))
}

/// Marks a stored event applied.
pub async fn mark_processed(
    db: &PgPool,
    event_id: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE webhook_events SET processed_at = now(), processing_error = $2 WHERE event_id = $1",
        event_id,
        error
    )
    .execute(db)
    .await?;
    Ok(())
}
