//! What every use case reaches: the stores, the job publisher, the caches and the settings.
//! The API and the workers each build one [`Core`] at start-up and pass it to the use cases
//! (`bookings::manual::move_seats`, `payments::refunds::request`, `accounts::admin::set_disabled`...),
//! so a use case is called the same way from a handler and from a job, and its after-commit
//! effects (caches dropped, statuses announced, jobs published) are written once, beside it.

use std::sync::Arc;

use sqlx::PgPool;
use uuid::Uuid;

use crate::{
    accounts::{sessions, tokens::TokenKeys, users},
    bookings::availability,
    cache::Cache,
    config::Settings,
    jobs::JobPublisher,
    redis_client::RedisClient,
};

/// Cloned into every request and job: a handful of reference counts.
#[derive(Clone)]
pub struct Core {
    pub db: PgPool,
    pub redis: RedisClient,
    pub jobs: JobPublisher,
    /// Cached catalogue pages, listings and profiles (in this process, then Redis).
    pub cache: Cache,
    /// This process's level of the availability cache.
    pub availability: availability::LocalCache,
    pub tokens: TokenKeys,
    pub settings: Arc<Settings>,
    listener: Arc<dyn AccountListener>,
}

/// What this process keeps of a user's sessions and must drop the moment they change (the
/// API's session gate and live streams). Other processes hear of the change through Redis;
/// this one cannot wait for its own announcement to come back.
pub trait AccountListener: Send + Sync + 'static {
    fn account_changed(&self, user_id: Uuid);
}

/// A process that keeps nothing of anyone's sessions (the workers).
impl AccountListener for () {
    fn account_changed(&self, _: Uuid) {}
}

impl Core {
    /// Connects to nothing yet: each dependency connects on first use, so a process starts
    /// (and reports through its health check) while one of them is down.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        let redis = RedisClient::new(&settings.redis)?;
        let cache = Cache::new(redis.clone(), settings.cache.clone());
        Ok(Self {
            db: crate::db::pool(&settings.database)?,
            jobs: JobPublisher::new(&settings.rabbitmq),
            availability: availability::LocalCache::new(&cache),
            tokens: TokenKeys::new(&settings.auth),
            cache,
            redis,
            settings: Arc::new(settings),
            listener: Arc::new(()),
        })
    }

    /// The same, telling `listener` of every account change made through it.
    #[must_use]
    pub fn with_listener(self, listener: Arc<dyn AccountListener>) -> Self {
        Self { listener, ..self }
    }

    /// After a change to a user's sessions, role or standing: this process forgets it at once,
    /// the others are told, and the profile's cached copies go.
    pub async fn account_changed(&self, user_id: Uuid) {
        self.listener.account_changed(user_id);
        sessions::announce_change(&self.redis, user_id).await;
        self.profile_changed(user_id).await;
    }

    /// After a change to what a user's profile shows: its cached copies go, everywhere.
    pub async fn profile_changed(&self, user_id: Uuid) {
        self.cache.invalidate(&[users::cache_scope(user_id)]).await;
    }
}
