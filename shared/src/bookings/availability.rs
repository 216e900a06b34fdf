//! Seat availability of a showtime, in two forms:
//!
//! - **compact** ([`CompactAvailability`]): counts per section and price, and two bitmaps over
//!   the showtime's seats (held, sold) in the order of its seat map ([`SeatMap`], which never
//!   changes once the showtime is on sale, so clients fetch it once). About 3 KB for 10,000
//!   seats: what a client polls during an on-sale;
//! - **full** ([`Availability`]): the same with every seat spelled out, about 1 MB for 10,000
//!   seats, built in the process from the compact form and the seat map.
//!
//! A hold past its deadline counts as available, whether or not the sweep has run. The compact
//! form is cached at two levels: in each API process for a second ([`LocalCache`], which also
//! makes concurrent readers of a cold key wait for one computation instead of all computing
//! it), and in Redis for at most `AVAILABILITY_CACHE_TTL`, where every write that changes a
//! seat (reservation, expiry, cancellation) deletes it at once. Both forms are served as ready
//! bytes.

use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use uuid::Uuid;

pub use crate::cache::{Cached, Json, Source};
use crate::{
    cache::{Cache, TypedCache},
    catalogue::scopes,
    money::Paise,
    redis_client::RedisClient,
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SectionAvailability {
    pub section_id: Uuid,
    pub name: String,
    pub price_tier_id: Uuid,
    pub price_paise: Paise,
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

/// One section of a showtime: its price and counts, and each of its seats with its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SectionSeats {
    pub showtime_id: Uuid,
    pub section: SectionAvailability,
    pub seats: Vec<SeatAvailability>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Availability {
    pub showtime_id: Uuid,
    pub sections: Vec<SectionAvailability>,
    pub seats: Vec<SeatAvailability>,
}

/// Counts per section, and which seats are held and which sold, as bitmaps over the seat map:
/// seat `i` of the map is bit `i % 8` (from the most significant) of byte `i / 8`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CompactAvailability {
    pub showtime_id: Uuid,
    pub sections: Vec<SectionAvailability>,
    /// Seats in the map (the number of bits that count).
    pub seats: usize,
    /// Base64 (standard, padded) bitmap of the seats held for a buyer now.
    pub held: String,
    /// Base64 bitmap of the seats sold.
    pub sold: String,
    /// Where the seat map is.
    pub seat_map: String,
}

/// One seat of the map, in the order the bitmaps follow: by section, then best rows first,
/// then by row and number. The order is total (a seat's row and number are unique in its
/// section), so the map and every bitmap computed later line up; it is also the order of the
/// seats' index, so no sort is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MappedSeat {
    pub seat_id: Uuid,
    pub section_id: Uuid,
    pub row: String,
    pub number: i32,
}

/// The seats of a showtime, in bitmap order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeatMap {
    pub showtime_id: Uuid,
    pub seats: Vec<MappedSeat>,
}

fn cache_key(redis: &RedisClient, showtime_id: Uuid) -> String {
    redis.key(&format!("availability-compact:{showtime_id}"))
}

/// The seat map of a showtime from Postgres. `None` if it has no inventory.
pub async fn seat_map(db: &PgPool, showtime_id: Uuid) -> Result<Option<SeatMap>, sqlx::Error> {
    let seats = sqlx::query_as!(
        MappedSeat,
        r#"SELECT seat_id, section_id, row_label AS "row", seat_number AS "number"
           FROM showtime_seats WHERE showtime_id = $1
           ORDER BY section_id, row_rank, row_label, seat_number, seat_id"#,
        showtime_id
    )
    .fetch_all(db)
    .await?;
    Ok((!seats.is_empty()).then_some(SeatMap { showtime_id, seats }))
}

/// Computes the compact form from Postgres. `None` if the showtime has no inventory.
pub async fn compute(
    db: &PgPool,
    showtime_id: Uuid,
) -> Result<Option<CompactAvailability>, sqlx::Error> {
    let states = sqlx::query_scalar!(
        r#"SELECT CASE WHEN status = 'SOLD' THEN 2
                       WHEN status = 'RESERVED' AND hold_expires_at > now() THEN 1
                       ELSE 0 END AS "state!"
           FROM showtime_seats WHERE showtime_id = $1
           ORDER BY section_id, row_rank, row_label, seat_number, seat_id"#,
        showtime_id
    )
    .fetch_all(db)
    .await?;
    if states.is_empty() {
        return Ok(None);
    }
    let sections = sqlx::query_as!(
        SectionAvailability,
        r#"SELECT sec.id AS section_id, sec.name, pt.id AS price_tier_id,
                  pt.price_paise AS "price_paise: Paise",
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
    let mut held = vec![0u8; states.len().div_ceil(8)];
    let mut sold = held.clone();
    for (i, state) in states.iter().enumerate() {
        let bit = 0x80 >> (i % 8);
        match state {
            1 => held[i / 8] |= bit,
            2 => sold[i / 8] |= bit,
            _ => {}
        }
    }
    let base64 = base64::engine::general_purpose::STANDARD;
    Ok(Some(CompactAvailability {
        showtime_id,
        sections,
        seats: states.len(),
        held: base64.encode(held),
        sold: base64.encode(sold),
        seat_map: format!("/api/showtimes/{showtime_id}/seats"),
    }))
}

impl CompactAvailability {
    /// The full form: every seat of `map` with its state.
    pub fn spell_out(&self, map: &SeatMap) -> Availability {
        Availability {
            showtime_id: self.showtime_id,
            sections: self.sections.clone(),
            seats: self.seats_where(map, |_| true),
        }
    }

    /// One section with each of its seats; `None` if the showtime does not sell it.
    pub fn section(&self, map: &SeatMap, section_id: Uuid) -> Option<SectionSeats> {
        let section = self
            .sections
            .iter()
            .find(|section| section.section_id == section_id)?;
        Some(SectionSeats {
            showtime_id: self.showtime_id,
            section: section.clone(),
            seats: self.seats_where(map, |seat| seat.section_id == section_id),
        })
    }

    fn seats_where(
        &self,
        map: &SeatMap,
        keep: impl Fn(&MappedSeat) -> bool,
    ) -> Vec<SeatAvailability> {
        let base64 = base64::engine::general_purpose::STANDARD;
        let held = base64.decode(&self.held).unwrap_or_default();
        let sold = base64.decode(&self.sold).unwrap_or_default();
        let set = |bits: &[u8], i: usize| {
            bits.get(i / 8)
                .is_some_and(|byte| byte & (0x80 >> (i % 8)) != 0)
        };
        map.seats
            .iter()
            .enumerate()
            .filter(|(_, seat)| keep(seat))
            .map(|(i, seat)| SeatAvailability {
                seat_id: seat.seat_id,
                section_id: seat.section_id,
                row: seat.row.clone(),
                number: seat.number,
                state: if set(&sold, i) {
                    SeatState::Sold
                } else if set(&held, i) {
                    SeatState::Held
                } else {
                    SeatState::Available
                },
            })
            .collect()
    }
}

/// How old an answer read through BMS may be after a change made through BMS: the life of the
/// per-process level.
pub const FRESH_WITHIN: std::time::Duration = std::time::Duration::from_secs(1);

/// One second's answers for a showtime: the compact form, and the full one once asked for.
struct Answers {
    compact: CompactAvailability,
    compact_json: Json,
    full_json: tokio::sync::OnceCell<Option<Json>>,
}

/// The per-process level: one second, so a burst of readers costs one Redis read per second;
/// and each showtime's seat map, kept until a catalogue write announces a change.
#[derive(Clone)]
pub struct LocalCache {
    entries: moka::future::Cache<Uuid, Option<Arc<Answers>>>,
    maps: Arc<TypedCache<SeatMap>>,
}

impl LocalCache {
    pub fn new(cache: &Cache) -> Self {
        Self {
            entries: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(FRESH_WITHIN)
                .build(),
            maps: Arc::new(cache.typed(64, std::time::Duration::from_secs(3600))),
        }
    }

    /// Forgets this process's copy (the Redis level is dropped by [`invalidate`]).
    pub async fn forget(&self, showtime_id: Uuid) {
        self.entries.invalidate(&showtime_id).await;
    }

    /// The seat map, from this process once read.
    pub async fn seat_map(
        &self,
        db: &PgPool,
        showtime_id: Uuid,
    ) -> Result<Option<Arc<SeatMap>>, sqlx::Error> {
        self.maps
            .get_or_load(&scopes::showtime(showtime_id), seat_map(db, showtime_id))
            .await
    }
}

/// How much of each seat an answer spells out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Compact,
    Full,
    /// One section's seats, spelled out ([`SectionSeats`]).
    Section(Uuid),
}

/// The cached answer if a level has one, else a fresh one (then cached). `None` if the
/// showtime has no inventory.
pub async fn read(
    db: &PgPool,
    redis: &RedisClient,
    local: &LocalCache,
    showtime_id: Uuid,
    ttl: std::time::Duration,
    form: Form,
) -> Result<Option<Cached>, sqlx::Error> {
    let mut source = Source::Process;
    let answers = local
        .entries
        .try_get_with(showtime_id, async {
            let (compact, from) = from_redis_or_database(db, redis, showtime_id, ttl).await?;
            source = from;
            Ok::<_, sqlx::Error>(compact.map(|(compact, json)| {
                Arc::new(Answers {
                    compact,
                    compact_json: Json::new(json),
                    full_json: tokio::sync::OnceCell::new(),
                })
            }))
        })
        .await
        .map_err(|error| match Arc::try_unwrap(error) {
            Ok(error) => error,
            Err(shared) => sqlx::Error::Protocol(shared.to_string()),
        })?;
    crate::cache::count(source);
    let Some(answers) = answers else {
        return Ok(None);
    };
    let json = match form {
        Form::Compact => answers.compact_json.clone(),
        // Spelled out once per answer, however many readers arrive together: each would
        // otherwise build its own megabyte at ten thousand seats.
        Form::Full => {
            let spelled = answers
                .full_json
                .get_or_try_init(|| async {
                    let map = local.seat_map(db, showtime_id).await?;
                    Ok::<_, sqlx::Error>(map.map(|map| {
                        let full = answers.compact.spell_out(&map);
                        Json::of(&full)
                    }))
                })
                .await?;
            match spelled {
                Some(json) => json.clone(),
                None => return Ok(None),
            }
        }
        // A section is a few hundred seats: spelled out per read, not kept.
        Form::Section(section_id) => {
            let Some(map) = local.seat_map(db, showtime_id).await? else {
                return Ok(None);
            };
            match answers.compact.section(&map, section_id) {
                Some(section) => Json::of(&section),
                None => return Ok(None),
            }
        }
    };
    Ok(Some(Cached { json, source }))
}

async fn from_redis_or_database(
    db: &PgPool,
    redis: &RedisClient,
    showtime_id: Uuid,
    ttl: std::time::Duration,
) -> Result<(Option<(CompactAvailability, Bytes)>, Source), sqlx::Error> {
    let key = cache_key(redis, showtime_id);
    let cached: Option<Vec<u8>> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            connection.get(&key).await
        })
        .await
        .ok()
        .flatten();
    if let Some(json) = cached
        && let Ok(compact) = serde_json::from_slice::<CompactAvailability>(&json)
    {
        return Ok((Some((compact, Bytes::from(json))), Source::Redis));
    }
    let Some(compact) = compute(db, showtime_id).await? else {
        return Ok((None, Source::Database));
    };
    let json = Bytes::from(serde_json::to_vec(&compact).unwrap_or_default());
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
    Ok((Some((compact, json)), Source::Database))
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
