//! What every handler can reach: the use cases' [`Core`], and the services only the API has
//! (sign-in, rate limits, live statuses, the booking acceptor).

use std::sync::Arc;

use shared::{
    accounts::{PasswordHasher, google::GoogleVerifier, throttle::LoginThrottle},
    bookings::{accept::Acceptor, ids::BookingIds},
    config::Settings,
    core::{AccountListener, Core},
    jobs::admin::QueueAdmin,
    payments::razorpay::Razorpay,
    rate_limit::RateLimiter,
};
use uuid::Uuid;

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
    /// The stores, the job publisher, the caches and the settings, as every use case of
    /// `shared` takes them.
    pub core: Core,
    /// Queue depths and dead letters, for operators.
    pub queues: QueueAdmin,
    pub passwords: PasswordHasher,
    pub login_throttle: LoginThrottle,
    pub limiter: RateLimiter,
    pub google: Arc<GoogleVerifier>,
    pub razorpay: Razorpay,
    pub status_hub: Arc<StatusHub>,
    /// Long-polls and event streams held open, against their caps.
    pub held_connections: Arc<HeldConnections>,
    pub sessions: SessionCache,
    /// Accepts booking requests (and recognises their ids).
    pub acceptor: Acceptor,
}

/// This instance's session gate and live streams, told of each account change its own
/// requests make (the other instances hear of it through Redis).
struct SessionListener {
    sessions: SessionCache,
    status_hub: Arc<StatusHub>,
}

impl AccountListener for SessionListener {
    fn account_changed(&self, user_id: Uuid) {
        self.sessions.forget_user(user_id);
        self.status_hub.account_changed(user_id);
    }
}

impl AppState {
    /// Connects to nothing yet: each dependency connects on first use, so the API starts (and
    /// reports through `/health`) while one of them is down.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        shared::metrics::recorder();
        let http = reqwest::Client::builder().build()?;
        let sessions = SessionCache::new(
            settings.auth.session_cache_ttl,
            settings.auth.jwt_expires_in,
        );
        let core = Core::new(settings)?;
        let settings = &core.settings;
        core.cache.listen();
        sessions.start_sync(&core.db, settings.auth.jwt_expires_in);
        let status_hub = StatusHub::start(core.redis.clone(), sessions.clone());
        let acceptor = Acceptor::new(
            core.db.clone(),
            core.redis.clone(),
            core.jobs.clone(),
            BookingIds::new(&settings.auth.jwt_secret),
            &core.cache,
            settings.cache.details_ttl,
            settings.bookings.status_ttl,
        );
        Ok(Self(Arc::new(Services {
            acceptor,
            queues: QueueAdmin::new(&settings.rabbitmq),
            passwords: PasswordHasher::new(&settings.auth.argon2)?,
            login_throttle: LoginThrottle::new(core.redis.clone(), &settings.auth),
            limiter: RateLimiter::new(core.redis.clone(), settings.rate_limits.clone()),
            google: Arc::new(GoogleVerifier::new(&settings.google, http.clone())),
            razorpay: Razorpay::new(&settings.razorpay, http),
            held_connections: HeldConnections::new(
                settings.bookings.live_max_per_user,
                settings.bookings.live_max_per_instance,
            ),
            core: core.clone().with_listener(Arc::new(SessionListener {
                sessions: sessions.clone(),
                status_hub: status_hub.clone(),
            })),
            status_hub,
            sessions,
        })))
    }
}
