//! What a buyer sees of a booking, and its fast copy in Redis.
//!
//! Every change of a booking's status is written to Postgres first, then copied to the Redis
//! key `booking:{id}` and announced on the `booking-status` channel, where API instances wake
//! the long-polls and event streams waiting on it. Redis being down costs only speed: readers
//! fall back to Postgres.

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::{BookingStatus, RejectReason};
use crate::redis_client::RedisClient;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BookedSeat {
    pub seat_id: Uuid,
    pub section: String,
    pub row: String,
    pub number: i32,
    pub price_paise: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BookingView {
    pub id: Uuid,
    pub user_id: Uuid,
    pub showtime_id: Uuid,
    pub status: BookingStatus,
    pub reject_reason: Option<RejectReason>,
    pub quantity: i32,
    /// The seats held or bought; empty until the booking is RESERVED.
    pub seats: Vec<BookedSeat>,
    pub total_paise: i64,
    pub currency: String,
    /// Until when the seats are held for payment (RESERVED only).
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The channel every status change is announced on.
pub fn status_channel(redis: &RedisClient) -> String {
    redis.key("booking-status")
}

fn status_key(redis: &RedisClient, id: Uuid) -> String {
    redis.key(&format!("booking:{id}"))
}

/// Reads a booking from Postgres, the source of truth.
pub async fn load(db: &PgPool, id: Uuid) -> Result<Option<BookingView>, sqlx::Error> {
    let Some(row) = sqlx::query!(
        r#"SELECT id, user_id, showtime_id, status AS "status: BookingStatus",
                  reject_reason AS "reject_reason: RejectReason", quantity, total_paise,
                  currency, hold_expires_at, created_at, updated_at
           FROM bookings WHERE id = $1"#,
        id
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let seats = if row.status.holds_seats() {
        sqlx::query_as!(
            BookedSeat,
            r#"SELECT bs.seat_id, sec.name AS section, s.row_label AS row, s.seat_number AS number,
                      bs.price_paise
               FROM booking_seats bs
               JOIN seats s ON s.id = bs.seat_id
               JOIN seat_sections sec ON sec.id = s.section_id
               WHERE bs.booking_id = $1 AND bs.released_at IS NULL
               ORDER BY s.row_rank, s.row_label, s.seat_number"#,
            id
        )
        .fetch_all(db)
        .await?
    } else {
        Vec::new()
    };
    Ok(Some(BookingView {
        id: row.id,
        user_id: row.user_id,
        showtime_id: row.showtime_id,
        status: row.status,
        reject_reason: row.reject_reason,
        quantity: row.quantity,
        seats,
        total_paise: row.total_paise,
        currency: row.currency,
        hold_expires_at: row.hold_expires_at,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

/// The Redis copy, if Redis has one and answers.
pub async fn cached(redis: &RedisClient, id: Uuid) -> Option<BookingView> {
    let outcome: redis::RedisResult<Option<String>> = async {
        let mut connection = redis.connection().await?;
        connection.get(status_key(redis, id)).await
    }
    .await;
    outcome
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str(&json).ok())
}

/// Copies the current state of a booking to Redis and announces it. Best effort: a failure is
/// logged, and readers fall back to Postgres.
pub async fn announce(db: &PgPool, redis: &RedisClient, id: Uuid, ttl: std::time::Duration) {
    let view = match load(db, id).await {
        Ok(Some(view)) => view,
        Ok(None) => return,
        Err(error) => {
            tracing::warn!(%error, booking_id = %id, "could not read a booking to announce it");
            return;
        }
    };
    announce_view(redis, &view, ttl).await;
}

pub async fn announce_view(redis: &RedisClient, view: &BookingView, ttl: std::time::Duration) {
    let Ok(json) = serde_json::to_string(view) else {
        return;
    };
    let outcome: redis::RedisResult<()> = async {
        let mut connection = redis.connection().await?;
        redis::pipe()
            .set_ex(status_key(redis, view.id), &json, ttl.as_secs().max(1))
            .ignore()
            .publish(status_channel(redis), &json)
            .ignore()
            .query_async(&mut connection)
            .await
    }
    .await;
    if let Err(error) = outcome {
        tracing::warn!(%error, booking_id = %view.id, "could not announce a booking status");
    }
}
