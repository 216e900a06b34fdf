//! Rate limits shared by every API instance: fixed windows counted in Redis, per route group,
//! per signed-in user and per client IP (one Lua call counts both, atomically).
//!
//! When Redis cannot be asked, [`RateLimiter::check`] says so and the caller chooses: the API
//! lets requests through (an outage of a cache must not take the site down with it), except
//! OTP sends, which it refuses, because each one costs an SMS and is what abusers want.

use std::net::IpAddr;

use uuid::Uuid;

use crate::{
    config::{Rate, RateLimitSettings},
    redis_client::RedisClient,
};

/// The groups of routes limited together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Reads,
    Writes,
    Auth,
    Otp,
    Bookings,
}

impl Group {
    fn name(self) -> &'static str {
        match self {
            Self::Reads => "reads",
            Self::Writes => "writes",
            Self::Auth => "auth",
            Self::Otp => "otp",
            Self::Bookings => "bookings",
        }
    }

    /// Whether requests go through when the limiter cannot count them.
    pub fn fails_open(self) -> bool {
        self != Self::Otp
    }
}

/// The outcome for one request: the tighter of its per-user and per-IP counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window that decided this ends.
    pub reset_seconds: u64,
}

/// Counts each key and returns, per key, its count and the milliseconds left in its window.
const COUNT: &str = r"
local result = {}
for i, key in ipairs(KEYS) do
    local count = redis.call('INCR', key)
    if count == 1 then
        redis.call('PEXPIRE', key, ARGV[1])
    end
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
        redis.call('PEXPIRE', key, ARGV[1])
        ttl = tonumber(ARGV[1])
    end
    result[2 * i - 1] = count
    result[2 * i] = ttl
end
return result
";

#[derive(Clone)]
pub struct RateLimiter {
    redis: RedisClient,
    settings: RateLimitSettings,
}

impl RateLimiter {
    pub fn new(redis: RedisClient, settings: RateLimitSettings) -> Self {
        Self { redis, settings }
    }

    fn rate(&self, group: Group) -> Rate {
        match group {
            Group::Reads => self.settings.reads,
            Group::Writes => self.settings.writes,
            Group::Auth => self.settings.auth,
            Group::Otp => self.settings.otp,
            Group::Bookings => self.settings.bookings,
        }
    }

    /// Counts one request of `group` from `ip` (and `user`, if signed in).
    pub async fn check(
        &self,
        group: Group,
        ip: Option<IpAddr>,
        user: Option<Uuid>,
    ) -> Result<Decision, redis::RedisError> {
        let rate = self.rate(group);
        let window_ms = u64::try_from(rate.window.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let ip = ip.map_or_else(|| "unknown".to_owned(), crate::client_address::limit_group);
        let mut keys = vec![(
            self.redis.key(&format!("rate:{}:ip:{ip}", group.name())),
            rate.count.saturating_mul(self.settings.ip_factor),
        )];
        if let Some(user) = user {
            keys.push((
                self.redis
                    .key(&format!("rate:{}:user:{user}", group.name())),
                rate.count,
            ));
        }
        let counts: Vec<i64> = self
            .redis
            .bounded(async {
                let mut connection = self.redis.connection().await?;
                let script = redis::Script::new(COUNT);
                let mut invocation = script.prepare_invoke();
                for (key, _) in &keys {
                    invocation.key(key);
                }
                invocation
                    .arg(window_ms)
                    .invoke_async(&mut connection)
                    .await
            })
            .await?;
        let mut decision = Decision {
            allowed: true,
            limit: u32::MAX,
            remaining: u32::MAX,
            reset_seconds: 0,
        };
        for ((_, limit), pair) in keys.iter().zip(counts.chunks(2)) {
            let [count, ttl_ms] = pair else { continue };
            let count = u64::try_from(*count).unwrap_or(u64::MAX);
            let remaining = u64::from(*limit).saturating_sub(count);
            let reset_seconds = u64::try_from(*ttl_ms).unwrap_or(0).div_ceil(1000).max(1);
            let over = count > u64::from(*limit);
            // The key with the least left decides what the client is told.
            if over || remaining < u64::from(decision.remaining) {
                decision = Decision {
                    allowed: decision.allowed && !over,
                    limit: *limit,
                    remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                    reset_seconds,
                };
            }
            if over {
                decision.allowed = false;
            }
        }
        Ok(decision)
    }
}
