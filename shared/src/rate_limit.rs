//! Rate limits shared by every API instance: fixed windows (aligned on the clock, so every
//! instance counts the same windows), per route group, per signed-in user and per client IP.
//!
//! Counting happens in the process: a request costs a lock and a map look-up, no round trip.
//! Every [`SYNC_INTERVAL`] each instance adds what it counted to Redis (one pipeline for all
//! its counters) and learns the total every instance has counted, which its next decisions
//! start from. So the limit is a bound across instances rather than an exact count: between two
//! syncs each instance may let through what it believes is left, at most the limit more per
//! instance and window. With Redis unreachable each instance keeps counting on its own (a
//! client gets at most the limit per instance), except for OTP sends, which are counted in
//! Redis exactly, one call per request, and refused when Redis cannot be asked: each costs an
//! SMS and is what abusers want.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use uuid::Uuid;

use crate::{
    config::{Rate, RateLimitSettings},
    redis_client::RedisClient,
};

/// How often each instance adds its counts to Redis and reads the totals back.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// The groups of routes limited together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
/// The exact path, for OTP sends.
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

/// Loaded once per process; invoked by its hash (EVALSHA), loaded again if Redis lost it.
static COUNT_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(COUNT));

/// Who a count is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Who {
    /// A client address group (an IPv6 /64 counts as one).
    Address(String),
    User(Uuid),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CounterKey {
    group: Group,
    who: Who,
    /// The window, numbered from the epoch.
    window: u64,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    window_ms: u64,
    /// Counted here and not yet added to Redis.
    pending: u64,
    /// Every instance's count, as Redis last said.
    known: u64,
}

type Counters = Arc<Mutex<HashMap<CounterKey, Counter>>>;

#[derive(Clone)]
pub struct RateLimiter {
    redis: RedisClient,
    settings: RateLimitSettings,
    counters: Counters,
}

impl RateLimiter {
    /// A limiter, and the task that syncs its counts with Redis (for as long as it lives).
    pub fn new(redis: RedisClient, settings: RateLimitSettings) -> Self {
        let limiter = Self {
            redis,
            settings,
            counters: Counters::default(),
        };
        let syncing = limiter.clone();
        let counters = Arc::downgrade(&limiter.counters);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SYNC_INTERVAL);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(counters) = counters.upgrade() else {
                    return;
                };
                syncing.sync(&counters).await;
            }
        });
        limiter
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

    /// The keys one request counts against, with each one's limit.
    fn keys(&self, group: Group, ip: Option<IpAddr>, user: Option<Uuid>) -> Vec<(Who, u32)> {
        let rate = self.rate(group);
        let ip = ip.map_or_else(|| "unknown".to_owned(), crate::client_address::limit_group);
        let mut keys = vec![(
            Who::Address(ip),
            rate.count.saturating_mul(self.settings.ip_factor),
        )];
        if let Some(user) = user {
            keys.push((Who::User(user), rate.count));
        }
        keys
    }

    fn redis_key(&self, group: Group, who: &Who, window: Option<u64>) -> String {
        let who = match who {
            Who::Address(ip) => format!("ip:{ip}"),
            Who::User(user) => format!("user:{user}"),
        };
        let window = window.map(|w| format!(":{w}")).unwrap_or_default();
        self.redis
            .key(&format!("rate:{}:{who}{window}", group.name()))
    }

    /// Counts one request of `group` from `ip` (and `user`, if signed in). Errs only for a
    /// group counted exactly in Redis ([`Group::Otp`]) when Redis cannot be asked.
    pub async fn check(
        &self,
        group: Group,
        ip: Option<IpAddr>,
        user: Option<Uuid>,
    ) -> Result<Decision, redis::RedisError> {
        if group == Group::Otp {
            return self.check_exactly(group, ip, user).await;
        }
        let window_ms = window_ms(self.rate(group));
        let now = now_ms();
        let window = now / window_ms;
        let reset_seconds = ((window + 1) * window_ms - now).div_ceil(1000).max(1);
        let keys = self.keys(group, ip, user);
        let Ok(mut counters) = self.counters.lock() else {
            return Ok(Decision::unlimited());
        };
        let counts = keys.into_iter().map(|(who, limit)| {
            let counter = counters
                .entry(CounterKey { group, who, window })
                .or_insert(Counter {
                    window_ms,
                    pending: 0,
                    known: 0,
                });
            // Refused requests count too, as a client hammering past its limit stays over it.
            counter.pending += 1;
            (counter.known + counter.pending, limit)
        });
        Ok(Decision::tightest(
            counts.collect::<Vec<_>>(),
            reset_seconds,
        ))
    }

    /// Adds every counter's pending count to Redis in one pipeline and takes the totals back;
    /// drops counters of windows that are over. A failure keeps the counts for the next try.
    async fn sync(&self, counters: &Counters) {
        let now = now_ms();
        let due: Vec<(CounterKey, Counter)> = match counters.lock() {
            Ok(mut counters) => {
                counters.retain(|key, counter| (key.window + 1) * counter.window_ms > now);
                counters
                    .iter()
                    .filter(|(_, counter)| counter.pending > 0)
                    .map(|(key, counter)| (key.clone(), *counter))
                    .collect()
            }
            Err(_) => return,
        };
        if due.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (key, counter) in &due {
            let redis_key = self.redis_key(key.group, &key.who, Some(key.window));
            pipe.cmd("INCRBY").arg(&redis_key).arg(counter.pending);
            pipe.cmd("PEXPIRE")
                .arg(&redis_key)
                .arg(counter.window_ms * 2)
                .ignore();
        }
        let totals: redis::RedisResult<Vec<u64>> = self
            .redis
            .bounded(async {
                let mut connection = self.redis.connection().await?;
                pipe.query_async(&mut connection).await
            })
            .await;
        let totals = match totals {
            Ok(totals) => totals,
            Err(error) => {
                tracing::debug!(%error, "rate-limit counts not synced; counting locally");
                return;
            }
        };
        if let Ok(mut counters) = counters.lock() {
            for ((key, sent), total) in due.iter().zip(totals) {
                if let Some(counter) = counters.get_mut(key) {
                    counter.pending = counter.pending.saturating_sub(sent.pending);
                    counter.known = counter.known.max(total);
                }
            }
        }
    }

    /// One Redis call per request: every instance sees every request at once.
    async fn check_exactly(
        &self,
        group: Group,
        ip: Option<IpAddr>,
        user: Option<Uuid>,
    ) -> Result<Decision, redis::RedisError> {
        let window_ms = window_ms(self.rate(group));
        let keys: Vec<(String, u32)> = self
            .keys(group, ip, user)
            .into_iter()
            .map(|(who, limit)| (self.redis_key(group, &who, None), limit))
            .collect();
        let counts: Vec<i64> = self
            .redis
            .bounded(async {
                let mut connection = self.redis.connection().await?;
                let script = &*COUNT_SCRIPT;
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
        let reset_ms = counts.get(1).copied().unwrap_or(0);
        let reset_seconds = u64::try_from(reset_ms).unwrap_or(0).div_ceil(1000).max(1);
        let counted: Vec<(u64, u32)> = keys
            .iter()
            .zip(counts.chunks(2))
            .map(|((_, limit), pair)| (u64::try_from(pair[0]).unwrap_or(u64::MAX), *limit))
            .collect();
        Ok(Decision::tightest(counted, reset_seconds))
    }
}

impl Decision {
    fn unlimited() -> Self {
        Self {
            allowed: true,
            limit: u32::MAX,
            remaining: u32::MAX,
            reset_seconds: 0,
        }
    }

    /// The decision of several counts `(count, limit)`: refused if any is over; the key with
    /// the least left decides what the client is told.
    fn tightest(counts: Vec<(u64, u32)>, reset_seconds: u64) -> Self {
        let mut decision = Self::unlimited();
        for (count, limit) in counts {
            let remaining = u64::from(limit).saturating_sub(count);
            let over = count > u64::from(limit);
            if over || remaining < u64::from(decision.remaining) {
                decision = Self {
                    allowed: decision.allowed && !over,
                    limit,
                    remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                    reset_seconds,
                };
            }
            if over {
                decision.allowed = false;
            }
        }
        decision
    }
}

fn window_ms(rate: Rate) -> u64 {
    u64::try_from(rate.window.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::Decision;

    #[test]
    fn the_tightest_count_decides() {
        let decision = Decision::tightest(vec![(3, 20), (5, 5)], 7);
        assert!(decision.allowed);
        assert_eq!((decision.limit, decision.remaining), (5, 0));
        let refused = Decision::tightest(vec![(3, 20), (6, 5)], 7);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.reset_seconds, 7);
    }
}
