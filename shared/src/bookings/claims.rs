//! The accept path's state in Redis: who claimed which `Idempotency-Key`, the PENDING status
//! copy, and the jobs of bookings accepted but not yet recorded in Postgres.
//!
//! One script claims a key and, only if the claim is new, writes the status copy and keeps the
//! job (`accept:jobs`) with its id in `accept:unpublished`, all at once. Once the broker has
//! confirmed the job, its id moves to `accept:unrecorded`; once a worker's batch has committed
//! the booking's row, it leaves both ([`settled`]). Until then the job is kept, so a booking
//! answered 202 is never stranded by a crash between the claim and the publish, a lost or
//! dead-lettered message, or a partition nobody consumes: the republisher publishes the
//! unpublished ones after a while ([`unpublished`]), and the unrecorded ones once the queues
//! have run dry ([`unrecorded`]). Claims are kept 24 hours, as idempotency keys are in Postgres.

use std::time::Duration;

use uuid::Uuid;

use super::view;
use crate::redis_client::RedisClient;

/// How long a claimed key answers retries.
pub const CLAIM_TTL: Duration = Duration::from_secs(24 * 3600);

/// Claims KEYS[1] with ARGV[1] unless it is claimed; if it was not, writes the status copy
/// KEYS[2] unless a status is there already (KEYS[3], its version), and keeps the job ARGV[6]
/// of booking ARGV[5] in KEYS[5], its id in KEYS[4]. Returns the existing claim, or false (nil)
/// for a new one.
///
/// The PENDING copy gets the lowest version, 1: every status a worker announces is newer,
/// whatever the clocks of the API and the database say.
const CLAIM: &str = r"
local existing = redis.call('GET', KEYS[1])
if existing then
    return existing
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 0 then
    redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
    redis.call('SET', KEYS[3], '1', 'EX', ARGV[4])
end
redis.call('HSET', KEYS[5], ARGV[5], ARGV[6])
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[5])
return false
";

/// Loaded once per process; invoked by its hash (EVALSHA), loaded again if Redis lost it.
static CLAIM_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(CLAIM));

/// What the key was claimed for before, if it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    pub fingerprint: String,
    pub booking_id: Uuid,
}

/// A new claim, with what it writes.
pub struct NewClaim<'a> {
    pub user_id: Uuid,
    pub idempotency_key: &'a str,
    pub fingerprint: &'a str,
    pub booking_id: Uuid,
    /// The PENDING status copy.
    pub status_json: &'a str,
    pub status_ttl: Duration,
    /// The job, as published.
    pub job_json: &'a str,
}

fn claim_key(redis: &RedisClient, user_id: Uuid, idempotency_key: &str) -> String {
    redis.key(&format!("idempotency:{user_id}:{idempotency_key}"))
}

fn unpublished_key(redis: &RedisClient) -> String {
    redis.key("accept:unpublished")
}

fn unrecorded_key(redis: &RedisClient) -> String {
    redis.key("accept:unrecorded")
}

fn jobs_key(redis: &RedisClient) -> String {
    redis.key("accept:jobs")
}

fn parse(stored: &str) -> Option<Existing> {
    let (fingerprint, booking_id) = stored.rsplit_once('|')?;
    Some(Existing {
        fingerprint: fingerprint.to_owned(),
        booking_id: booking_id.parse().ok()?,
    })
}

/// Claims the key; `Ok(None)` when the claim is new (and its status copy and job recorded),
/// the earlier claim otherwise. An error means Redis could not be asked.
pub async fn claim(
    redis: &RedisClient,
    new: &NewClaim<'_>,
) -> Result<Option<Existing>, redis::RedisError> {
    let status_key = view::status_key(redis, new.booking_id);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let stored: Option<String> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            CLAIM_SCRIPT
                .key(claim_key(redis, new.user_id, new.idempotency_key))
                .key(&status_key)
                .key(format!("{status_key}:version"))
                .key(unpublished_key(redis))
                .key(jobs_key(redis))
                .arg(format!("{}|{}", new.fingerprint, new.booking_id))
                .arg(CLAIM_TTL.as_secs())
                .arg(new.status_json)
                .arg(new.status_ttl.as_secs().max(1))
                .arg(new.booking_id.to_string())
                .arg(new.job_json)
                .arg(now_ms)
                .invoke_async(&mut connection)
                .await
        })
        .await?;
    Ok(stored.as_deref().and_then(parse))
}

/// The earlier claim of a key, if any.
pub async fn lookup(
    redis: &RedisClient,
    user_id: Uuid,
    idempotency_key: &str,
) -> Result<Option<Existing>, redis::RedisError> {
    let stored: Option<String> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            redis::AsyncCommands::get(&mut connection, claim_key(redis, user_id, idempotency_key))
                .await
        })
        .await?;
    Ok(stored.as_deref().and_then(parse))
}

/// Moves KEYS[1]'s member ARGV[1] to KEYS[2] with score ARGV[2], if its job is still kept in
/// KEYS[3]: a worker may have recorded the booking (and dropped the job) before the broker's
/// confirm reached the API.
const PUBLISHED: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
return 1
";

static PUBLISHED_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(PUBLISHED));

/// The broker confirmed the job of `booking_id` (again): it waits for its row to be recorded,
/// from now. Best effort: a job left unpublished is published again, and jobs are idempotent.
pub async fn published(redis: &RedisClient, booking_id: Uuid) {
    let outcome: redis::RedisResult<i64> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            PUBLISHED_SCRIPT
                .key(unpublished_key(redis))
                .key(unrecorded_key(redis))
                .key(jobs_key(redis))
                .arg(booking_id.to_string())
                .arg(chrono::Utc::now().timestamp_millis())
                .invoke_async(&mut connection)
                .await
        })
        .await;
    if let Err(error) = outcome {
        tracing::debug!(%error, "accepted job left unpublished; it is published again");
    }
}

/// The bookings' rows are recorded (or can never be): their jobs are no longer kept. Best
/// effort: a job kept too long is published again and found recorded.
pub async fn settled(redis: &RedisClient, booking_ids: &[Uuid]) {
    if booking_ids.is_empty() {
        return;
    }
    let ids: Vec<String> = booking_ids.iter().map(Uuid::to_string).collect();
    let mut pipe = redis::pipe();
    pipe.zrem(unpublished_key(redis), &ids)
        .ignore()
        .zrem(unrecorded_key(redis), &ids)
        .ignore()
        .hdel(jobs_key(redis), &ids)
        .ignore();
    let outcome: redis::RedisResult<()> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            pipe.query_async(&mut connection).await
        })
        .await;
    if let Err(error) = outcome {
        tracing::debug!(%error, "recorded bookings' jobs still kept; they are published again and found recorded");
    }
}

/// Undoes a claim whose booking could be neither published nor recorded: the request was
/// answered with an error, so nothing of it may stay.
pub async fn release(redis: &RedisClient, new: &NewClaim<'_>) {
    let status_key = view::status_key(redis, new.booking_id);
    let mut pipe = redis::pipe();
    pipe.del(claim_key(redis, new.user_id, new.idempotency_key))
        .ignore()
        .del(&status_key)
        .ignore()
        .del(format!("{status_key}:version"))
        .ignore()
        .zrem(unpublished_key(redis), new.booking_id.to_string())
        .ignore()
        .hdel(jobs_key(redis), new.booking_id.to_string())
        .ignore();
    let outcome: redis::RedisResult<()> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            pipe.query_async(&mut connection).await
        })
        .await;
    if let Err(error) = outcome {
        tracing::warn!(%error, booking_id = %new.booking_id, "an unaccepted booking's claim stays; its job may still be published");
    }
}

/// Bookings accepted more than `older_than` ago whose job the broker never confirmed (their
/// API died before its confirm), oldest first, with their jobs.
pub async fn unpublished(
    redis: &RedisClient,
    older_than: Duration,
    limit: usize,
) -> Result<Vec<(Uuid, Option<String>)>, redis::RedisError> {
    kept(redis, &unpublished_key(redis), older_than, limit).await
}

/// Bookings whose job was confirmed (or last published again) more than `older_than` ago and
/// whose row no worker has recorded yet, oldest first, with their jobs: lost with a broker,
/// dead-lettered, or waiting in a queue nobody consumes. The republisher asks only while the
/// queues are empty, when no job can still be on its way.
pub async fn unrecorded(
    redis: &RedisClient,
    older_than: Duration,
    limit: usize,
) -> Result<Vec<(Uuid, Option<String>)>, redis::RedisError> {
    kept(redis, &unrecorded_key(redis), older_than, limit).await
}

async fn kept(
    redis: &RedisClient,
    set: &str,
    older_than: Duration,
    limit: usize,
) -> Result<Vec<(Uuid, Option<String>)>, redis::RedisError> {
    let before = chrono::Utc::now().timestamp_millis()
        - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            let ids: Vec<String> = redis::AsyncCommands::zrangebyscore_limit(
                &mut connection,
                set,
                "-inf",
                before,
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let jobs: Vec<Option<String>> = redis::cmd("HMGET")
                .arg(jobs_key(redis))
                .arg(&ids)
                .query_async(&mut connection)
                .await?;
            Ok(ids
                .iter()
                .zip(jobs)
                .filter_map(|(id, job)| Some((id.parse().ok()?, job)))
                .collect())
        })
        .await
}
