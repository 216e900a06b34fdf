//! Seat availability of a showtime: counts per section and price, and each seat's status.
//!
//! A hold past its deadline counts as available, whether or not the sweep has run. Answers are
//! cached in Redis for at most `AVAILABILITY_CACHE_TTL`, and every write that changes a seat
//! (reservation, expiry, cancellation) deletes the cached answer at once.

use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

use crate::redis_client::RedisClient;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SectionAvailability {
    pub section_id: Uuid,
    pub name: String,
    pub price_tier_id: Uuid,
    pub price_paise: i64,
    pub currency: String,
    pub total: i64,
    pub available: i64,
    pub held: i64,
    pub sold: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SeatState {
    Available,
    Held,
    Sold,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeatAvailability {
    pub seat_id: Uuid,
    pub section_id: Uuid,
    pub row: String,
    pub number: i32,
    pub state: SeatState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Availability {
    pub showtime_id: Uuid,
    pub sections: Vec<SectionAvailability>,
    pub seats: Vec<SeatAvailability>,
}

fn cache_key(redis: &RedisClient, showtime_id: Uuid) -> String {
    redis.key(&format!("availability:{showtime_id}"))
}

/// Computes availability from Postgres. `None` if the showtime has no inventory.
pub async fn compute(db: &PgPool, showtime_id: Uuid) -> Result<Option<Availability>, sqlx::Error> {
    let seats = sqlx::query!(
        r#"SELECT seat_id, section_id, row_label, seat_number,
                  CASE WHEN status = 'SOLD' THEN 'SOLD'
                       WHEN status = 'RESERVED' AND hold_expires_at > now() THEN 'HELD'
                       ELSE 'AVAILABLE' END AS "state!"
           FROM showtime_seats WHERE showtime_id = $1
           ORDER BY row_rank, row_label, seat_number"#,
        showtime_id
    )
    .fetch_all(db)
    .await?;
    if seats.is_empty() {
        return Ok(None);
    }
    let sections = sqlx::query_as!(
        SectionAvailability,
        r#"SELECT sec.id AS section_id, sec.name, pt.id AS price_tier_id, pt.price_paise,
                  pt.currency::text AS "currency!",
                  count(*) AS "total!",
                  count(*) FILTER (WHERE ss.status = 'AVAILABLE'
                      OR (ss.status = 'RESERVED' AND ss.hold_expires_at <= now())) AS "available!",
                  count(*) FILTER (WHERE ss.status = 'RESERVED' AND ss.hold_expires_at > now()) AS "held!",
                  count(*) FILTER (WHERE ss.status = 'SOLD') AS "sold!"
           FROM showtime_seats ss
           JOIN seat_sections sec ON sec.id = ss.section_id
           JOIN price_tiers pt ON pt.id = ss.price_tier_id
           WHERE ss.showtime_id = $1
           GROUP BY sec.id, sec.name, sec.sort_order, pt.id
           ORDER BY sec.sort_order, sec.name"#,
        showtime_id
    )
    .fetch_all(db)
    .await?;
    let seats = seats
        .into_iter()
        .map(|seat| SeatAvailability {
            seat_id: seat.seat_id,
            section_id: seat.section_id,
            row: seat.row_label,
            number: seat.seat_number,
            state: match seat.state.as_str() {
                "SOLD" => SeatState::Sold,
                "HELD" => SeatState::Held,
                _ => SeatState::Available,
            },
        })
        .collect();
    Ok(Some(Availability {
        showtime_id,
        sections,
        seats,
    }))
}

/// The cached answer if there is one, else a fresh one (then cached). The flag says whether
/// it came from the cache.
pub async fn read(
    db: &PgPool,
    redis: &RedisClient,
    showtime_id: Uuid,
    ttl: std::time::Duration,
) -> Result<Option<(Availability, bool)>, sqlx::Error> {
    let key = cache_key(redis, showtime_id);
    let cached: Option<String> = async {
        let mut connection = redis.connection().await.ok()?;
        connection.get(&key).await.ok()?
    }
    .await;
    if let Some(availability) = cached.and_then(|json| serde_json::from_str(&json).ok()) {
        return Ok(Some((availability, true)));
    }
    let Some(availability) = compute(db, showtime_id).await? else {
        return Ok(None);
    };
    if let Ok(json) = serde_json::to_string(&availability) {
        let stored: redis::RedisResult<()> = async {
            let mut connection = redis.connection().await?;
            connection.set_ex(&key, json, ttl.as_secs().max(1)).await
        }
        .await;
        if let Err(error) = stored {
            tracing::debug!(%error, "availability not cached");
        }
    }
    Ok(Some((availability, false)))
}

/// Drops the cached answer of a showtime after its seats changed.
pub async fn invalidate(redis: &RedisClient, showtime_id: Uuid) {
    let outcome: redis::RedisResult<()> = async {
        let mut connection = redis.connection().await?;
        connection.del(cache_key(redis, showtime_id)).await
    }
    .await;
    if let Err(error) = outcome {
        tracing::warn!(%error, %showtime_id, "could not invalidate availability; it expires by its TTL");
    }
}
