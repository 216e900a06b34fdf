//! The Redis connection shared by a process: locks, caches, rate limits and booking status.
//!
//! Redis speeds things up but is never the source of truth, so the handle connects lazily and
//! every command is bounded by a short timeout: when Redis is down callers get an error fast
//! and fall back to Postgres instead of hanging.

use std::{future::Future, sync::Arc, time::Duration};

use redis::{
    AsyncCommands, Client, IntoConnectionInfo, RedisError,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::sync::OnceCell;

use crate::config::RedisSettings;

/// Cheap to clone (one reference count): handlers clone it per request.
#[derive(Clone)]
pub struct RedisClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    config: ConnectionManagerConfig,
    key_prefix: Box<str>,
    timeout: Duration,
    manager: OnceCell<ConnectionManager>,
}

impl RedisClient {
    pub fn new(settings: &RedisSettings) -> Result<Self, RedisError> {
        let mut info = settings.url.expose().into_connection_info()?;
        if let Some(password) = &settings.password {
            info.redis.password = Some(password.expose().to_owned());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(settings.timeout)
            .set_response_timeout(settings.timeout)
            .set_number_of_retries(1);
        Ok(Self {
            inner: Arc::new(Inner {
                client: Client::open(info)?,
                config,
                key_prefix: settings.key_prefix.as_str().into(),
                timeout: settings.timeout,
                manager: OnceCell::new(),
            }),
        })
    }

    /// `<prefix>:<name>`: every key this deployment writes goes through here.
    pub fn key(&self, name: &str) -> String {
        format!("{}:{name}", self.inner.key_prefix)
    }

    /// A multiplexed connection that reconnects by itself once established.
    pub async fn connection(&self) -> Result<ConnectionManager, RedisError> {
        let inner = &self.inner;
        inner
            .manager
            .get_or_try_init(|| {
                ConnectionManager::new_with_config(inner.client.clone(), inner.config.clone())
            })
            .await
            .cloned()
    }

    /// Runs `work` (which talks to Redis) for at most `REDIS_TIMEOUT`. Every command goes
    /// through here, so a Redis that is down, slow or half-connected costs each caller one
    /// timeout at worst, whatever the client library is doing underneath.
    pub async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, RedisError> {
        tokio::time::timeout(self.inner.timeout, work)
            .await
            .unwrap_or_else(|_| {
                Err(RedisError::from((
                    redis::ErrorKind::IoError,
                    "Redis did not answer in time",
                )))
            })
    }

    /// A dedicated connection for subscribing to channels.
    pub async fn pubsub(&self) -> Result<redis::aio::PubSub, RedisError> {
        self.inner.client.get_async_pubsub().await
    }

    /// Makes one round trip to Redis, for health reports.
    pub async fn ping(&self) -> Result<(), RedisError> {
        self.bounded(async {
            let mut connection = self.connection().await?;
            connection.ping::<String>().await.map(|_| ())
        })
        .await
    }
}
