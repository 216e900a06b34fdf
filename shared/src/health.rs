//! Health of the components a process depends on, each probed with one real round trip.

use std::{future::Future, time::Instant};

use serde::Serialize;
use sqlx::PgPool;

use crate::{jobs::JobPublisher, redis_client::RedisClient};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Up,
    Down,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ComponentHealth {
    pub status: Status,
    pub latency_ms: f64,
    /// Why the component is down, in words safe to show an operator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HealthReport {
    pub status: Status,
    pub postgres: ComponentHealth,
    pub redis: ComponentHealth,
    pub rabbitmq: ComponentHealth,
}

impl HealthReport {
    /// Probes every component at once.
    pub async fn probe(db: &PgPool, redis: &RedisClient, jobs: &JobPublisher) -> Self {
        let (postgres, redis, rabbitmq) = tokio::join!(
            timed(async { sqlx::query("SELECT 1").execute(db).await.map(|_| ()) }),
            timed(redis.ping()),
            timed(jobs.ping()),
        );
        let all_up = [&postgres, &redis, &rabbitmq]
            .iter()
            .all(|component| component.status == Status::Up);
        Self {
            status: if all_up { Status::Up } else { Status::Down },
            postgres,
            redis,
            rabbitmq,
        }
    }
}

async fn timed<E: std::fmt::Display>(
    probe: impl Future<Output = Result<(), E>>,
) -> ComponentHealth {
    let started = Instant::now();
    let outcome = probe.await;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match outcome {
        Ok(()) => ComponentHealth {
            status: Status::Up,
            latency_ms,
            error: None,
        },
        Err(error) => ComponentHealth {
            status: Status::Down,
            latency_ms,
            error: Some(error.to_string()),
        },
    }
}

/// The dependency `error` says is unreachable (dropped connection, refused, timed out), if it
/// is a database or Redis error of that kind: an outage to report as such, not a bug.
pub fn outage(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    if let Some(error) = error.downcast_ref::<sqlx::Error>() {
        return crate::db::is_unavailable(error).then_some("the database");
    }
    if let Some(error) = error.downcast_ref::<redis::RedisError>() {
        let unreachable = error.is_io_error()
            || error.is_connection_dropped()
            || error.is_connection_refusal()
            || error.is_timeout();
        return unreachable.then_some("the cache");
    }
    None
}
