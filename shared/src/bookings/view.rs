//! What a buyer sees of a booking, and its fast copy in Redis.
//!
//! Every change of a booking's status is written to Postgres first, then copied to the Redis
//! key `booking:{id}` (unless Redis holds a newer one) and announced on the `booking-status`
//! channel, where API instances wake the long-polls and event streams waiting on it. Redis being down costs only speed: readers
//! fall back to Postgres.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use super::{BookingStatus, RejectReason};
use crate::{money::Paise, redis_client::RedisClient};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BookedSeat {
    pub seat_id: Uuid,
    pub section: String,
    pub row: String,
    pub number: i32,
    pub price_paise: Paise,
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
    pub total_paise: Paise,
    pub currency: String,
    /// Until when the seats are held for payment (RESERVED only).
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl BookingView {
    /// A request just accepted: PENDING, no seats yet.
    pub fn accepted(id: Uuid, request: &super::create::BookingRequest, at: DateTime<Utc>) -> Self {
        Self {
            id,
            user_id: request.user_id,
            showtime_id: request.showtime_id,
            status: BookingStatus::Pending,
            reject_reason: None,
            quantity: i32::try_from(request.selection.quantity()).unwrap_or(i32::MAX),
            seats: Vec::new(),
            total_paise: Paise::ZERO,
            currency: "INR".into(),
            hold_expires_at: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// A booking accepted but known, for now, only to the queue (Redis lost its copy before
    /// the worker wrote it): PENDING, with nothing else known yet (nil showtime, no seats).
    pub fn queued(id: Uuid, user_id: Uuid) -> Self {
        let now = Utc::now();
        Self {
            id,
            user_id,
            showtime_id: Uuid::nil(),
            status: BookingStatus::Pending,
            reject_reason: None,
            quantity: 0,
            seats: Vec::new(),
            total_paise: Paise::ZERO,
            currency: "INR".into(),
            hold_expires_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// The channel every status change is announced on.
pub fn status_channel(redis: &RedisClient) -> String {
    redis.key("booking-status")
}

pub(crate) fn status_key(redis: &RedisClient, id: Uuid) -> String {
    redis.key(&format!("booking:{id}"))
}

/// Reads a booking from Postgres, the source of truth.
pub async fn load(db: &PgPool, id: Uuid) -> Result<Option<BookingView>, sqlx::Error> {
    Ok(load_many(db, &[id]).await?.pop())
}

/// Reads several bookings with two queries, whatever their number.
pub async fn load_many(db: &PgPool, ids: &[Uuid]) -> Result<Vec<BookingView>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT id, user_id, showtime_id, status AS "status: BookingStatus",
                  reject_reason AS "reject_reason: RejectReason", quantity,
                  total_paise AS "total_paise: Paise",
                  currency, hold_expires_at, created_at, updated_at
           FROM bookings WHERE id = ANY($1)"#,
        ids
    )
    .fetch_all(db)
    .await?;
    let holding: Vec<Uuid> = rows
        .iter()
        .filter(|row| row.status.holds_seats())
        .map(|row| row.id)
        .collect();
    let mut seats: HashMap<Uuid, Vec<BookedSeat>> = HashMap::new();
    if !holding.is_empty() {
        let rows = sqlx::query!(
            r#"SELECT bs.booking_id, bs.seat_id, sec.name AS section, s.row_label AS row,
                      s.seat_number AS number,
                      bs.price_paise AS "price_paise: Paise"
               FROM booking_seats bs
               JOIN seats s ON s.id = bs.seat_id
               JOIN seat_sections sec ON sec.id = s.section_id
               WHERE bs.booking_id = ANY($1) AND bs.released_at IS NULL
               ORDER BY s.row_rank, s.row_label, s.seat_number"#,
            &holding
        )
        .fetch_all(db)
        .await?;
        for row in rows {
            seats.entry(row.booking_id).or_default().push(BookedSeat {
                seat_id: row.seat_id,
                section: row.section,
                row: row.row,
                number: row.number,
                price_paise: row.price_paise,
            });
        }
    }
    Ok(rows
        .into_iter()
        .map(|row| BookingView {
            seats: seats.remove(&row.id).unwrap_or_default(),
            id: row.id,
            user_id: row.user_id,
            showtime_id: row.showtime_id,
            status: row.status,
            reject_reason: row.reject_reason,
            quantity: row.quantity,
            total_paise: row.total_paise,
            currency: row.currency,
            hold_expires_at: row.hold_expires_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
        .collect())
}

/// The Redis copy, if Redis has one and answers.
pub async fn cached(redis: &RedisClient, id: Uuid) -> Option<BookingView> {
    let outcome: redis::RedisResult<Option<String>> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            connection.get(status_key(redis, id)).await
        })
        .await;
    outcome
        .ok()
        .flatten()
        .and_then(|json| serde_json::from_str(&json).ok())
}

/// Copies the current state of a booking to Redis and announces it. Best effort: a failure is
/// logged, and readers fall back to Postgres.
pub async fn announce(db: &PgPool, redis: &RedisClient, id: Uuid, ttl: std::time::Duration) {
    announce_many(db, redis, &[id], ttl).await;
}

/// The same for several bookings: two queries and one Redis round trip in all.
pub async fn announce_many(
    db: &PgPool,
    redis: &RedisClient,
    ids: &[Uuid],
    ttl: std::time::Duration,
) {
    match load_many(db, ids).await {
        Ok(views) => announce_views(redis, &views, ttl).await,
        Err(error) => tracing::warn!(%error, "could not read bookings to announce them"),
    }
}

pub async fn announce_view(redis: &RedisClient, view: &BookingView, ttl: std::time::Duration) {
    announce_views(redis, std::slice::from_ref(view), ttl).await;
}

/// Stores a view only if it is not older than the one Redis has, then announces it. Two
/// processes announcing one booking at once (a worker and the API) may load it in one order and
/// store it in the other; comparing `updated_at` (the database's clock at each status change)
/// keeps the newer status, whatever the order of arrival.
const STORE_IF_NEWER: &str = r"
local stored = tonumber(redis.call('GET', KEYS[2]) or '0')
if stored > tonumber(ARGV[2]) then
    return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
redis.call('PUBLISH', KEYS[3], ARGV[1])
return 1
";

/// Copies views already in hand to Redis and announces them (see [`announce`]).
pub async fn announce_views(redis: &RedisClient, views: &[BookingView], ttl: std::time::Duration) {
    if views.is_empty() {
        return;
    }
    let channel = status_channel(redis);
    let mut pipe = redis::pipe();
    for view in views {
        let Ok(json) = serde_json::to_string(view) else {
            continue;
        };
        let key = status_key(redis, view.id);
        pipe.cmd("EVALSHA")
            .arg(STORE_IF_NEWER_SCRIPT.get_hash())
            .arg(3)
            .arg(&key)
            .arg(format!("{key}:version"))
            .arg(&channel)
            .arg(&json)
            .arg(view.updated_at.timestamp_micros())
            .arg(ttl.as_secs().max(1))
            .ignore();
    }
    let outcome: redis::RedisResult<()> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            match pipe.query_async(&mut connection).await {
                // Redis restarted and forgot the script: load it, then send the pipeline again.
                Err(error) if error.kind() == redis::ErrorKind::NoScriptError => {
                    STORE_IF_NEWER_SCRIPT
                        .prepare_invoke()
                        .load_async(&mut connection)
                        .await?;
                    pipe.query_async(&mut connection).await
                }
                outcome => outcome,
            }
        })
        .await;
    if let Err(error) = outcome {
        tracing::warn!(%error, bookings = views.len(), "could not announce booking statuses");
    }
}

/// The script above, sent by its hash.
static STORE_IF_NEWER_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(STORE_IF_NEWER));
