//! What every handler can reach: the database, Redis, the job publisher and the settings.

use std::sync::Arc;

use shared::{config::Settings, jobs::JobPublisher, redis_client::RedisClient};
use sqlx::PgPool;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: RedisClient,
    pub jobs: JobPublisher,
    pub settings: Arc<Settings>,
}

impl AppState {
    /// Connects to nothing yet: each dependency connects on first use, so the API starts (and
    /// reports through `/health`) while one of them is down.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        Ok(Self {
            db: shared::db::pool(&settings.database)?,
            redis: RedisClient::new(&settings.redis)?,
            jobs: JobPublisher::new(&settings.rabbitmq),
            settings: Arc::new(settings),
        })
    }
}
