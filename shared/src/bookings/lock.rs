//! A Redis lock around the reservation of one showtime (named seats) or one section (best
//! available).
//!
//! What the lock is for: it lines up the workers that would otherwise fight over the same rows,
//! so each reservation transaction finds its seats free and commits at the first try, and
//! best-available picks adjacent blocks without racing. What it is not for: correctness. Every
//! seat moves by a conditional update on its row inside a Postgres transaction that holds the
//! row locks, so if the lock expires mid-transaction (TTL `BOOKING_LOCK_TTL`), is lost, or Redis
//! is down, two reservations at worst wait on each other's row locks or fail their conditional
//! update and try again; no seat is ever held twice.
//!
//! Acquire is `SET key token NX PX ttl` with a random token, retried with exponential backoff and
//! jitter; release deletes the key only if it still holds our token (a Lua script), so a worker
//! whose lock expired cannot release the next holder's.

use rand::Rng;
use uuid::Uuid;

use crate::{config::BookingSettings, redis_client::RedisClient};

const RELEASE: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
else
    return 0
end
"#;

/// Loaded once per process; invoked by its hash (EVALSHA), loaded again if Redis lost it.
static RELEASE_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(RELEASE));

pub struct HeldLock {
    redis: RedisClient,
    key: String,
    token: String,
}

/// Takes the lock named `scope`, waiting as the settings allow. `None` when Redis is down or
/// the lock stayed busy through every retry: the caller goes on, as correctness is Postgres's.
pub async fn acquire(
    redis: &RedisClient,
    scope: &str,
    settings: &BookingSettings,
) -> Option<HeldLock> {
    let key = redis.key(&format!("lock:{scope}"));
    let token = Uuid::new_v4().to_string();
    let ttl = u64::try_from(settings.lock_ttl.as_millis()).unwrap_or(u64::MAX);
    let mut delay = settings.lock_retry_min;
    for _ in 0..=settings.lock_retries {
        let attempt: redis::RedisResult<Option<String>> = redis
            .bounded(async {
                let mut connection = redis.connection().await?;
                redis::cmd("SET")
                    .arg(&key)
                    .arg(&token)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async(&mut connection)
                    .await
            })
            .await;
        match attempt {
            Ok(Some(_)) => {
                return Some(HeldLock {
                    redis: redis.clone(),
                    key,
                    token,
                });
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "Redis unavailable; reserving on Postgres locks alone");
                return None;
            }
        }
        let jitter = rand::rng().random_range(0.5..1.5);
        tokio::time::sleep(delay.mul_f64(jitter)).await;
        delay = (delay * 2).min(settings.lock_retry_max);
    }
    tracing::warn!(
        scope,
        "lock still busy after every retry; going on without it"
    );
    None
}

impl HeldLock {
    pub async fn release(self) {
        let outcome: redis::RedisResult<i64> = self
            .redis
            .bounded(async {
                let mut connection = self.redis.connection().await?;
                RELEASE_SCRIPT
                    .key(&self.key)
                    .arg(&self.token)
                    .invoke_async(&mut connection)
                    .await
            })
            .await;
        if let Err(error) = outcome {
            // It expires by itself after its TTL.
            tracing::warn!(%error, "could not release a reservation lock");
        }
    }
}
