//! Where state lives: PostgreSQL, Redis and RabbitMQ.

use std::time::Duration;

use super::{
    SettingsError,
    reader::{Reader, name_part, positive, url_with_scheme},
    values::{HumanDuration, Secret},
};

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Statements slower than this are logged at WARN, with their duration.
    pub slow_query_threshold: Duration,
    pub url: Secret,
    pub pool_size: u32,
    pub connect_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: Secret,
    pub password: Option<Secret>,
    /// Every key this deployment writes starts with `<prefix>:`, so several deployments
    /// (or test runs) can share one Redis.
    pub key_prefix: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct RabbitMqSettings {
    pub url: Secret,
    /// Every queue and exchange name starts with `<prefix>.`.
    pub queue_prefix: String,
    /// Lets short-lived environments (tests, previews) have their queues removed by the broker
    /// once unused for this long. Unset in production.
    pub queue_expires: Option<Duration>,
    /// Partition queues of a partitioned job kind (reservations); a new count makes a new ring
    /// (see `jobs::QueueTopology`).
    pub partitions: u16,
}

impl DatabaseSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let database = DatabaseSettings {
            slow_query_threshold: env
                .or(
                    "DATABASE_SLOW_QUERY_THRESHOLD",
                    HumanDuration(Duration::from_millis(250)),
                )?
                .0,
            url: env.required_with("DATABASE_URL", url_with_scheme(&["postgres", "postgresql"]))?,
            pool_size: env.or_with("DATABASE_POOL_SIZE", 10, positive)?,
            connect_timeout: env
                .or(
                    "DATABASE_CONNECT_TIMEOUT",
                    HumanDuration(Duration::from_secs(5)),
                )?
                .0,
        };
        Ok(database)
    }
}

impl RedisSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        if env.or("REDIS_CLUSTER_ENABLED", false)? {
            return Err(SettingsError::Malformed {
                name: "REDIS_CLUSTER_ENABLED",
                reason: "cluster mode is not supported; point REDIS_URL at a single node or a \
                         cluster proxy and set this to false"
                    .into(),
            });
        }
        let redis = RedisSettings {
            url: env.required_with("REDIS_URL", url_with_scheme(&["redis", "rediss"]))?,
            password: env.optional("REDIS_PASSWORD")?,
            key_prefix: env.or_with("REDIS_KEY_PREFIX", "bms".to_owned(), name_part)?,
            timeout: env
                .or("REDIS_TIMEOUT", HumanDuration(Duration::from_millis(500)))?
                .0,
        };
        Ok(redis)
    }
}

impl RabbitMqSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let rabbitmq = RabbitMqSettings {
            url: env.required_with("RABBITMQ_URL", url_with_scheme(&["amqp", "amqps"]))?,
            queue_prefix: env.or_with("RABBITMQ_QUEUE_PREFIX", "bms".to_owned(), name_part)?,
            queue_expires: env
                .optional::<HumanDuration>("RABBITMQ_QUEUE_EXPIRES")?
                .map(|d| d.0),
            partitions: env.or_with("RABBITMQ_PARTITIONS", 8, |n: u16| {
                if (1..=256).contains(&n) {
                    Ok(n)
                } else {
                    Err("must be between 1 and 256".to_owned())
                }
            })?,
        };
        Ok(rabbitmq)
    }
}
