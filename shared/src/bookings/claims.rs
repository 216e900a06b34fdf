//! The accept path's state in Redis: who claimed which `Idempotency-Key`, the PENDING status
//! copy, and the jobs accepted but not yet confirmed published.
//!
//! One script claims a key and, only if the claim is new, writes the status copy and records
//! the job in the `accepting` set, all at once. The job leaves that set once the broker has
//! confirmed it. Should the API die in between, the booking is not stranded: a retry of the
//! request republishes it, and the republisher ([`overdue`]) publishes whatever stayed in the
//! set too long. Claims are kept 24 hours, as idempotency keys are in Postgres.

use std::time::Duration;

use uuid::Uuid;

use super::view;
use crate::redis_client::RedisClient;

/// How long a claimed key answers retries.
const CLAIM_TTL_SECONDS: u64 = 24 * 3600;

/// Claims KEYS[1] with ARGV[1] unless it is claimed; if it was not, writes the status copy
/// KEYS[2] (unless its version KEYS[3] is newer) and adds the job ARGV[6] to KEYS[4]. Returns
/// the existing claim, or false (nil) for a new one.
const CLAIM: &str = r"
local existing = redis.call('GET', KEYS[1])
if existing then
    return existing
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
local stored = tonumber(redis.call('GET', KEYS[3]) or '0')
if stored < tonumber(ARGV[4]) then
    redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[5])
    redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
end
redis.call('ZADD', KEYS[4], ARGV[7], ARGV[6])
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
    /// The PENDING status copy, and its version (microseconds of its `updated_at`).
    pub status_json: &'a str,
    pub status_version: i64,
    pub status_ttl: Duration,
    /// The job, as published.
    pub job_json: &'a str,
}

fn claim_key(redis: &RedisClient, user_id: Uuid, idempotency_key: &str) -> String {
    redis.key(&format!("idempotency:{user_id}:{idempotency_key}"))
}

fn accepting_key(redis: &RedisClient) -> String {
    redis.key("accepting")
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
                .key(accepting_key(redis))
                .arg(format!("{}|{}", new.fingerprint, new.booking_id))
                .arg(CLAIM_TTL_SECONDS)
                .arg(new.status_json)
                .arg(new.status_version)
                .arg(new.status_ttl.as_secs().max(1))
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

/// The broker confirmed the job (or Postgres recorded the booking): it leaves the set. Best
/// effort: a job left there is published again, and jobs are idempotent.
pub async fn published(redis: &RedisClient, job_json: &str) {
    let outcome: redis::RedisResult<()> = redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            redis::AsyncCommands::zrem(&mut connection, accepting_key(redis), job_json).await
        })
        .await;
    if let Err(error) = outcome {
        tracing::debug!(%error, "accepted job left in the accepting set; it is published again");
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
        .zrem(accepting_key(redis), new.job_json)
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

/// Jobs accepted more than `older_than` ago and still not confirmed published (their API
/// died before the broker's confirm), oldest first.
pub async fn overdue(
    redis: &RedisClient,
    older_than: Duration,
    limit: usize,
) -> Result<Vec<String>, redis::RedisError> {
    let before = chrono::Utc::now().timestamp_millis()
        - i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
    redis
        .bounded(async {
            let mut connection = redis.connection().await?;
            redis::AsyncCommands::zrangebyscore_limit(
                &mut connection,
                accepting_key(redis),
                "-inf",
                before,
                0,
                isize::try_from(limit).unwrap_or(isize::MAX),
            )
            .await
        })
        .await
}
