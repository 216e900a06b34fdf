//! Seat availability of a showtime: counts per section and price, and each seat's status.
//!
//! A hold past its deadline counts as available, whether or not the sweep has run. Answers are
//! cached as ready-to-send JSON at two levels: in each API process for a second ([`LocalCache`],
//! which also makes concurrent readers of a cold key wait for one computation instead of all
//! computing it), and in Redis for at most `AVAILABILITY_CACHE_TTL`, where every write that
//! changes a seat (reservation, expiry, cancellation) deletes it at once.

use bytes::Bytes;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::cache::Source;
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

/// The answer as JSON, ready to send.
#[derive(Debug, Clone)]
pub struct Cached {
    pub json: Bytes,
    pub source: Source,
}

/// The per-process level: one second, so a burst of readers costs one Redis read per second.
#[derive(Clone)]
pub struct LocalCache {
    entries: moka::future::Cache<Uuid, Option<Bytes>>,
}

impl Default for LocalCache {
    fn default() -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(std::time::Duration::from_secs(1))
                .build(),
        }
    }
}

impl LocalCache {
    /// Forgets this process's copy (the Redis level is dropped by [`invalidate`]).
    pub async fn forget(&self, showtime_id: Uuid) {
        self.entries.invalidate(&showtime_id).await;
    }
}

/// The cached answer if a level has one, else a fresh one (then cached). `None` if the
/// showtime has no inventory.
pub async fn read(
    db: &PgPool,
    redis: &RedisClient,
    local: &LocalCache,
    showtime_id: Uuid,
    ttl: std::time::Duration,
) -> Result<Option<Cached>, sqlx::Error> {
    let mut source = Source::Process;
    let json = local
        .entries
        .try_get_with(showtime_id, async {
            let (json, from) = from_redis_or_database(db, redis, showtime_id, ttl).await?;
            source = from;
            Ok::<_, sqlx::Error>(json)
        })
        .await
        .map_err(|error| match std::sync::Arc::try_unwrap(error) {
            Ok(error) => error,
            Err(shared) => sqlx::Error::Protocol(shared.to_string()),
        })?;
    crate::cache::count(source);
    Ok(json.map(|json| Cached { json, source }))
}

async fn from_redis_or_database(
    db: &PgPool,
    redis: &RedisClient,
    showtime_id: Uuid,
    ttl: std::time::Duration,
) -> Result<(Option<Bytes>, Source), sqlx::Error> {
    let key = cache_key(redis, showtime_id);
    let cached: Option<Vec<u8>> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            connection.get(&key).await
        })
        .await
        .ok()
        .flatten();
    if let Some(json) = cached {
        return Ok((Some(Bytes::from(json)), Source::Redis));
    }
    let Some(availability) = compute(db, showtime_id).await? else {
        return Ok((None, Source::Database));
    };
    let json = Bytes::from(serde_json::to_vec(&availability).unwrap_or_default());
    let stored: redis::RedisResult<()> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            connection
                .set_ex(&key, json.as_ref(), ttl.as_secs().max(1))
                .await
        })
        .await;
    if let Err(error) = stored {
        tracing::debug!(%error, "availability not cached");
    }
    Ok((Some(json), Source::Database))
}

/// Drops the cached answer of a showtime after its seats changed.
pub async fn invalidate(redis: &RedisClient, showtime_id: Uuid) {
    let outcome: redis::RedisResult<()> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            connection.del(cache_key(redis, showtime_id)).await
        })
        .await;
    if let Err(error) = outcome {
        tracing::warn!(%error, %showtime_id, "could not invalidate availability; it expires by its TTL");
    }
}
