//! What every handler can reach: the database, Redis, the job publisher, the settings, and
//! the account services built from them.

use std::sync::Arc;

use shared::{
    accounts::{
        PasswordHasher, google::GoogleVerifier, throttle::LoginThrottle, tokens::TokenKeys,
    },
    bookings::{accept::Acceptor, availability, ids::BookingIds},
    cache::Cache,
    config::Settings,
    jobs::{JobPublisher, admin::QueueAdmin},
    payments::razorpay::Razorpay,
    rate_limit::RateLimiter,
    redis_client::RedisClient,
};
use sqlx::PgPool;

use crate::{
    auth::SessionCache,
    live::{HeldConnections, StatusHub},
};

/// Cloned by every handler and middleware of every request: one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

pub struct Services {
    pub db: PgPool,
    pub redis: RedisClient,
    pub jobs: JobPublisher,
    /// Queue depths and dead letters, for operators.
    pub queues: QueueAdmin,
    pub settings: Arc<Settings>,
    pub tokens: TokenKeys,
    pub passwords: PasswordHasher,
    pub login_throttle: LoginThrottle,
    pub limiter: RateLimiter,
    pub google: Arc<GoogleVerifier>,
    pub razorpay: Razorpay,
    pub status_hub: Arc<StatusHub>,
    /// Long-polls and event streams held open, against their caps.
    pub held_connections: Arc<HeldConnections>,
    pub sessions: SessionCache,
    /// Cached catalogue pages and listings (in-process, then Redis).
    pub cache: Cache,
    /// The in-process level of the availability cache.
    pub availability: availability::LocalCache,
    /// Accepts booking requests (and recognises their ids).
    pub acceptor: Acceptor,
}

impl AppState {
    /// Connects to nothing yet: each dependency connects on first use, so the API starts (and
    /// reports through `/health`) while one of them is down.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        shared::metrics::recorder();
        let redis = RedisClient::new(&settings.redis)?;
        let http = reqwest::Client::builder().build()?;
        let sessions = SessionCache::new(
            settings.auth.session_cache_ttl,
            settings.auth.jwt_expires_in,
        );
        let cache = Cache::new(redis.clone(), settings.cache.clone());
        cache.listen();
        let db = shared::db::pool(&settings.database)?;
        sessions.start_sync(db.clone(), settings.auth.jwt_expires_in);
        let jobs = JobPublisher::new(&settings.rabbitmq);
        let acceptor = Acceptor::new(
            db.clone(),
            redis.clone(),
            jobs.clone(),
            BookingIds::new(&settings.auth.jwt_secret),
            &cache,
            settings.cache.details_ttl,
            settings.bookings.status_ttl,
        );
        Ok(Self(Arc::new(Services {
            db,
            jobs,
            acceptor,
            queues: QueueAdmin::new(&settings.rabbitmq),
            tokens: TokenKeys::new(&settings.auth),
            passwords: PasswordHasher::new(&settings.auth.argon2)?,
            login_throttle: LoginThrottle::new(redis.clone(), &settings.auth),
            limiter: RateLimiter::new(redis.clone(), settings.rate_limits.clone()),
            google: Arc::new(GoogleVerifier::new(&settings.google, http.clone())),
            razorpay: Razorpay::new(&settings.razorpay, http),
            status_hub: StatusHub::start(redis.clone(), sessions.clone()),
            held_connections: HeldConnections::new(
                settings.bookings.live_max_per_user,
                settings.bookings.live_max_per_instance,
            ),
            sessions,
            availability: availability::LocalCache::new(&cache),
            cache,
            redis,
            settings: Arc::new(settings),
        })))
    }
}
