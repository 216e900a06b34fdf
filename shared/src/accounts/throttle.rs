//! Slowing down password guessing: sign-in attempts are counted in Redis over a window per
//! account and address pair, per account and per client address (grouped: a whole IPv6 /64
//! counts as one address). Past a limit, further attempts are refused until the window ends.
//! Counts live in Redis so every API instance sees the same ones.
//!
//! Each attempt is counted *before* its password is checked, in one atomic script that refuses
//! it if any count is full and counts it otherwise: 80 parallel guesses against a limit of 5
//! are checked 5 times. A refused attempt is not counted. A successful sign-in takes its own
//! attempt back and clears its pair; so does an attempt that could not be checked.
//!
//! Why three counts: an attacker on one address is stopped by the pair limit (5 by default)
//! without locking out the owner, who signs in from another address. The per-account limit
//! (higher, 20 by default) stops guessing spread over many addresses; reaching it does lock
//! the account for the rest of the window, the price of bounding distributed guessing. The
//! per-address limit stops one address trying many accounts.
//!
//! If Redis is down, logins are let through (fail open): locking every user out of their
//! account because a cache is down would be worse than a few minutes without this brake.
//! Argon2 still makes each guess expensive.

use std::{net::IpAddr, time::Duration};

use sha2::{Digest, Sha256};

use super::Email;
use crate::{client_address, config::AuthSettings, redis_client::RedisClient};

/// Refuses an attempt over any limit, or counts it in all three: KEYS are the pair's, the
/// account's and the address's counts; ARGV the window in ms, then each count's limit. Returns
/// the wait in ms when refused (the longest of the full counts), else 0. A refused attempt is
/// not counted, so one address hammering an account fills only its own pair and cannot push
/// the account's count to its limit.
const COUNT_ATTEMPT: &str = r"
local wait = 0
for i = 1, #KEYS do
  local count = tonumber(redis.call('GET', KEYS[i]) or '0')
  if count >= tonumber(ARGV[i + 1]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 1 then ttl = 1000 end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
end
return 0";

/// Loaded once per process; invoked by its hash (EVALSHA), loaded again if Redis lost it.
static COUNT_ATTEMPT_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(COUNT_ATTEMPT));

/// Takes one attempt off each count (deleting the pair's when ARGV[1] is 1), without
/// recreating a count that has expired meanwhile: it would have no expiry of its own.
const TAKE_BACK: &str = r"
for i = 1, #KEYS do
  if i == 1 and ARGV[1] == '1' then
    redis.call('DEL', KEYS[i])
  elseif redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('DECR', KEYS[i])
  end
end
return 0";

/// Loaded once per process; invoked by its hash (EVALSHA), loaded again if Redis lost it.
static TAKE_BACK_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(TAKE_BACK));

#[derive(Clone)]
pub struct LoginThrottle {
    redis: RedisClient,
    max_per_pair: u32,
    max_per_account: u32,
    max_per_ip: u32,
    window: Duration,
}

impl LoginThrottle {
    pub fn new(redis: RedisClient, settings: &AuthSettings) -> Self {
        Self {
            redis,
            max_per_pair: settings.login_max_failures_per_account_address,
            max_per_account: settings.login_max_failures_per_account,
            max_per_ip: settings.login_max_failures_per_ip,
            window: settings.login_failure_window,
        }
    }

    /// The pair's key first, then the account's and the address's, each with its limit.
    fn keys(&self, email: &Email, ip: Option<IpAddr>) -> [(String, u32); 3] {
        // The email is hashed so that no address appears in Redis.
        let account = hex::encode(Sha256::digest(email.as_str().as_bytes()));
        let address = ip.map_or_else(|| "unknown".to_owned(), client_address::limit_group);
        [
            (
                self.redis
                    .key(&format!("login-attempts:pair:{account}:{address}")),
                self.max_per_pair,
            ),
            (
                self.redis.key(&format!("login-attempts:account:{account}")),
                self.max_per_account,
            ),
            (
                self.redis.key(&format!("login-attempts:ip:{address}")),
                self.max_per_ip,
            ),
        ]
    }

    /// Counts one sign-in attempt. `Some(wait)` if it is over a limit and must be refused
    /// without checking the password; `None` if the password may be checked.
    pub async fn attempt(&self, email: &Email, ip: Option<IpAddr>) -> Option<Duration> {
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        let keys = self.keys(email, ip);
        let outcome: redis::RedisResult<i64> = self
            .redis
            .bounded(async {
                let mut connection = self.redis.connection().await?;
                let script = &*COUNT_ATTEMPT_SCRIPT;
                let mut script = script.prepare_invoke();
                for (key, _) in &keys {
                    script.key(key);
                }
                script.arg(window_ms);
                for (_, limit) in &keys {
                    script.arg(*limit);
                }
                script.invoke_async(&mut connection).await
            })
            .await;
        match outcome {
            Ok(wait_ms) if wait_ms > 0 => Some(Duration::from_millis(wait_ms.unsigned_abs())),
            Ok(_) => None,
            Err(error) => {
                tracing::warn!(%error, "login throttle unavailable; letting the attempt through");
                None
            }
        }
    }

    /// After a successful sign-in: its attempt was no guess, and its pair starts afresh. The
    /// account's other failures stay counted, so signing in does not reset a distributed guess.
    pub async fn succeeded(&self, email: &Email, ip: Option<IpAddr>) {
        self.take_back(email, ip, true).await;
    }

    /// After an attempt whose password could not be checked (hashing busy, database down): it
    /// was no guess, and a client retrying through an outage must not lock itself out.
    pub async fn not_checked(&self, email: &Email, ip: Option<IpAddr>) {
        self.take_back(email, ip, false).await;
    }

    async fn take_back(&self, email: &Email, ip: Option<IpAddr>, clear_pair: bool) {
        let [(pair, _), (account, _), (address, _)] = self.keys(email, ip);
        let outcome: redis::RedisResult<()> = self
            .redis
            .bounded(async {
                let mut connection = self.redis.connection().await?;
                TAKE_BACK_SCRIPT
                    .key(pair)
                    .key(account)
                    .key(address)
                    .arg(if clear_pair { "1" } else { "0" })
                    .invoke_async(&mut connection)
                    .await
            })
            .await;
        if let Err(error) = outcome {
            tracing::warn!(%error, "could not take back a successful sign-in attempt");
        }
    }
}
