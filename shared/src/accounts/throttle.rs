//! Slowing down password guessing: failed logins are counted in Redis per account and per
//! client IP over a window, and past the limit further attempts are refused until the window
//! ends. Counts live in Redis so every API instance sees the same ones.
//!
//! If Redis is down, logins are let through (fail open): locking every user out of their
//! account because a cache is down would be worse than a few minutes without this brake.
//! Argon2 still makes each guess expensive.

use std::{net::IpAddr, time::Duration};

use redis::AsyncCommands;
use sha2::{Digest, Sha256};

use super::Email;
use crate::{config::AuthSettings, redis_client::RedisClient};

#[derive(Clone)]
pub struct LoginThrottle {
    redis: RedisClient,
    max_per_account: u32,
    max_per_ip: u32,
    window: Duration,
}

impl LoginThrottle {
    pub fn new(redis: RedisClient, settings: &AuthSettings) -> Self {
        Self {
            redis,
            max_per_account: settings.login_max_failures_per_account,
            max_per_ip: settings.login_max_failures_per_ip,
            window: settings.login_failure_window,
        }
    }

    fn keys(&self, email: &Email, ip: Option<IpAddr>) -> [(String, u32); 2] {
        // The email is hashed so that no address appears in Redis.
        let account = hex::encode(Sha256::digest(email.as_str().as_bytes()));
        let ip = ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
        [
            (
                self.redis.key(&format!("login-failures:account:{account}")),
                self.max_per_account,
            ),
            (
                self.redis.key(&format!("login-failures:ip:{ip}")),
                self.max_per_ip,
            ),
        ]
    }

    /// How long the caller must wait before trying again, if it must.
    pub async fn blocked_for(&self, email: &Email, ip: Option<IpAddr>) -> Option<Duration> {
        let keys = self.keys(email, ip);
        let outcome: redis::RedisResult<Option<Duration>> = self
            .redis
            .bounded(async {
                let mut connection = self.redis.connection().await?;
                let mut pipe = redis::pipe();
                for (key, _) in &keys {
                    pipe.get(key).pttl(key);
                }
                let (account, account_ttl, ip, ip_ttl): (Option<u32>, i64, Option<u32>, i64) =
                    pipe.query_async(&mut connection).await?;
                let over = |count: Option<u32>, limit: u32, ttl: i64| {
                    (count.unwrap_or(0) >= limit)
                        .then(|| Duration::from_millis(u64::try_from(ttl).unwrap_or(1000)))
                };
                Ok(over(account, keys[0].1, account_ttl).or(over(ip, keys[1].1, ip_ttl)))
            })
            .await;
        outcome.unwrap_or_else(|error| {
            tracing::warn!(%error, "login throttle unavailable; letting the attempt through");
            None
        })
    }

    pub async fn record_failure(&self, email: &Email, ip: Option<IpAddr>) {
        let window = i64::try_from(self.window.as_secs()).unwrap_or(i64::MAX);
        let keys = self.keys(email, ip);
        let outcome: redis::RedisResult<()> = self
            .redis
            .bounded(async {
                let mut connection = self.redis.connection().await?;
                let mut pipe = redis::pipe();
                for (key, _) in &keys {
                    pipe.incr(key, 1)
                        .ignore()
                        .cmd("EXPIRE")
                        .arg(key)
                        .arg(window)
                        .arg("NX")
                        .ignore();
                }
                pipe.query_async(&mut connection).await
            })
            .await;
        if let Err(error) = outcome {
            tracing::warn!(%error, "could not count a failed login");
        }
    }

    /// Forgets an account's failures after it signs in.
    pub async fn clear(&self, email: &Email) {
        let [(account, _), _] = self.keys(email, None);
        let outcome: redis::RedisResult<()> = self
            .redis
            .bounded(async {
                let mut connection = self.redis.connection().await?;
                connection.del(account).await
            })
            .await;
        if let Err(error) = outcome {
            tracing::warn!(%error, "could not clear failed logins");
        }
    }
}
