//! Live booking status in this API instance: one Redis subscription to the `booking-status`
//! channel, fanned out to the long-polls and event streams waiting on each booking. The same
//! subscription carries account changes to the session cache.
//!
//! Waiters are registered per booking, so a message wakes only those who wait on it. The
//! latest status of recent bookings is kept as ready JSON, so a status read answers without a
//! round trip while pushes arrive. The
//! subscription reconnects by itself; while it is down, waiters re-read Postgres, first after
//! half a second, then ever less often (doubling up to 8 s), so they still learn every change
//! without thousands of held connections polling Postgres on a short period. While it is up
//! they re-read only every few seconds, in case a message was lost.
//!
//! Held connections (long-polls and event streams) are counted per user and per instance
//! ([`HeldConnections`]); an event stream also watches its user's account changes and ends
//! when its session is revoked.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use shared::{
    bookings::{BookingStatus, view::BookingView},
    redis_client::RedisClient,
};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::SessionCache;

/// How often a waiter re-reads Postgres while pushes arrive: a safety net only.
const RECHECK_WHILE_SUBSCRIBED: Duration = Duration::from_secs(5);
/// How soon a waiter first re-reads Postgres while the subscription is down, and the longest
/// it then waits between reads.
const RECHECK_WITHOUT_PUSHES: Duration = Duration::from_millis(500);
const RECHECK_WITHOUT_PUSHES_MAX: Duration = Duration::from_secs(8);

pub struct StatusHub {
    waiters: Mutex<HashMap<Uuid, broadcast::Sender<BookingView>>>,
    /// Event streams waiting on each user's account changes (a revoked session ends them).
    accounts: Mutex<HashMap<Uuid, broadcast::Sender<()>>>,
    subscribed: AtomicBool,
    /// The latest pushed status of recent bookings, as ready JSON. Status reads answer from it
    /// without a round trip while pushes arrive. Only pushes are kept, and they arrive in order
    /// (Redis publishes a status only if it is not older than the one it stores). Nothing read
    /// from Redis or Postgres is kept, nor the PENDING status of a booking accepted here: the
    /// cache admits and evicts by weight, so if it let go of a push that overtook such a copy,
    /// the older copy would be served, stale, for its whole lifetime (seen as 5 s long-polls
    /// under a 40,000-buyer sale, when the cache filled).
    recent: moka::sync::Cache<Uuid, Arc<Recent>>,
}

/// A booking's latest known status, ready to send: the JSON, and what is needed to choose
/// between two statuses and to check who may read it (the view itself is parsed back from the
/// JSON when a long-poll needs it; keeping both would double the memory).
#[derive(Debug)]
pub struct Recent {
    pub user_id: Uuid,
    pub status: BookingStatus,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub json: bytes::Bytes,
}

impl Recent {
    pub fn view(&self) -> Option<BookingView> {
        serde_json::from_slice(&self.json).ok()
    }
}

/// Memory the recent statuses may take in one process, counted as their JSON plus what the
/// entry, its key and the cache's bookkeeping take.
const RECENT_MAX_BYTES: u64 = 16 * 1024 * 1024;
const RECENT_ENTRY_OVERHEAD: usize = 320;
/// How long a recent status is kept: long enough for a buyer to follow a booking to its
/// decision and pay, short enough that a missed push is not served for long.
const RECENT_TTL: Duration = Duration::from_secs(120);

impl Default for StatusHub {
    fn default() -> Self {
        Self {
            waiters: Mutex::default(),
            accounts: Mutex::default(),
            subscribed: AtomicBool::new(false),
            recent: moka::sync::Cache::builder()
                .weigher(|_: &Uuid, recent: &Arc<Recent>| {
                    u32::try_from(recent.json.len() + RECENT_ENTRY_OVERHEAD).unwrap_or(u32::MAX)
                })
                .max_capacity(RECENT_MAX_BYTES)
                .time_to_live(RECENT_TTL)
                .build(),
        }
    }
}

/// Receives the status changes of one booking; unregisters itself when dropped.
pub struct Watch {
    hub: Arc<StatusHub>,
    booking_id: Uuid,
    receiver: broadcast::Receiver<BookingView>,
}

impl StatusHub {
    /// Starts the hub and its subscription task.
    /// Starts the hub and its subscription task, which also forwards account changes to the
    /// session cache.
    pub fn start(redis: RedisClient, sessions: SessionCache) -> Arc<Self> {
        let hub = Arc::new(Self::default());
        tokio::spawn(Self::subscribe(Arc::downgrade(&hub), redis, sessions));
        hub
    }

    async fn subscribe(hub: std::sync::Weak<Self>, redis: RedisClient, sessions: SessionCache) {
        let status = shared::bookings::view::status_channel(&redis);
        let accounts = shared::accounts::sessions::changes_channel(&redis);
        loop {
            match redis.pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&[&status, &accounts]).await {
                    Ok(()) => {
                        if let Some(hub) = hub.upgrade() {
                            // What was pushed while nobody listened is unknown.
                            hub.recent.invalidate_all();
                            hub.subscribed.store(true, Ordering::Relaxed);
                            // Changes pushed while the subscription was down are lost: every
                            // stream checks its session once.
                            hub.every_account_changed();
                        }
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            let Some(hub) = hub.upgrade() else { return };
                            let Ok(payload) = message.get_payload::<String>() else {
                                continue;
                            };
                            if message.get_channel_name() == accounts {
                                if let Ok(user_id) = payload.parse::<Uuid>() {
                                    sessions.forget_user(user_id);
                                    hub.account_changed(user_id);
                                }
                            } else if let Ok(view) = serde_json::from_str::<BookingView>(&payload) {
                                hub.dispatch(view);
                            }
                        }
                        if let Some(hub) = hub.upgrade() {
                            hub.subscribed.store(false, Ordering::Relaxed);
                        }
                        tracing::warn!("booking status subscription ended; reconnecting");
                    }
                    Err(error) => tracing::warn!(%error, "cannot subscribe to booking status"),
                },
                Err(error) => tracing::debug!(%error, "Redis unavailable for booking status"),
            }
            if hub.strong_count() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Keeps a pushed `view` as the booking's latest status unless a newer one is known. A
    /// decided status always wins over PENDING, which an API stamps with its own clock, and
    /// PENDING never replaces a decided one.
    fn remember(&self, view: BookingView) {
        let pending = |status: BookingStatus| status == BookingStatus::Pending;
        // Read, then written, without a lock: the subscription task is the only writer.
        let newer = self.recent.get(&view.id).is_none_or(|known| {
            match (pending(known.status), pending(view.status)) {
                (false, true) => false,
                (true, false) => true,
                _ => known.updated_at <= view.updated_at,
            }
        });
        if newer {
            let json = bytes::Bytes::from(serde_json::to_vec(&view).unwrap_or_default());
            let recent = Recent {
                user_id: view.user_id,
                status: view.status,
                updated_at: view.updated_at,
                json,
            };
            self.recent.insert(view.id, Arc::new(recent));
        }
    }

    /// The latest status this process knows, if it may be trusted (pushes arrive).
    pub fn recent(&self, booking_id: Uuid) -> Option<Arc<Recent>> {
        if !self.subscribed.load(Ordering::Relaxed) {
            return None;
        }
        self.recent.get(&booking_id)
    }

    fn dispatch(&self, view: BookingView) {
        self.remember(view.clone());
        if let Ok(waiters) = self.waiters.lock()
            && let Some(sender) = waiters.get(&view.id)
        {
            let _ = sender.send(view);
        }
    }

    /// Tells this instance's streams of `user_id` that the account changed (sessions, role,
    /// standing), so each re-checks its session. Called for changes made here and, through the
    /// subscription, elsewhere.
    pub fn account_changed(&self, user_id: Uuid) {
        if let Ok(accounts) = self.accounts.lock()
            && let Some(sender) = accounts.get(&user_id)
        {
            let _ = sender.send(());
        }
    }

    fn every_account_changed(&self) {
        if let Ok(accounts) = self.accounts.lock() {
            for sender in accounts.values() {
                let _ = sender.send(());
            }
        }
    }

    /// Changes to `user_id`'s account from now on; unregisters when dropped.
    pub fn watch_account(self: &Arc<Self>, user_id: Uuid) -> AccountWatch {
        let receiver = match self.accounts.lock() {
            Ok(mut accounts) => accounts
                .entry(user_id)
                .or_insert_with(|| broadcast::channel(4).0)
                .subscribe(),
            Err(_) => broadcast::channel(1).1,
        };
        AccountWatch {
            hub: Arc::clone(self),
            user_id,
            receiver,
            recheck_at: tokio::time::Instant::now() + SESSION_RECHECK,
        }
    }

    /// How long a waiter may wait for a push before it re-reads Postgres: a few seconds while
    /// pushes arrive; while they do not, `quiet_rounds` doubles the first short pause.
    pub fn recheck_after(&self, quiet_rounds: u32) -> Duration {
        if self.subscribed.load(Ordering::Relaxed) {
            RECHECK_WHILE_SUBSCRIBED
        } else {
            RECHECK_WITHOUT_PUSHES
                .saturating_mul(2u32.saturating_pow(quiet_rounds))
                .min(RECHECK_WITHOUT_PUSHES_MAX)
        }
    }

    pub fn watch(self: &Arc<Self>, booking_id: Uuid) -> Watch {
        let receiver = match self.waiters.lock() {
            Ok(mut waiters) => waiters
                .entry(booking_id)
                .or_insert_with(|| broadcast::channel(8).0)
                .subscribe(),
            // A poisoned map only loses the push; the waiter still re-reads Postgres.
            Err(_) => broadcast::channel(1).1,
        };
        Watch {
            hub: Arc::clone(self),
            booking_id,
            receiver,
        }
    }
}

impl Watch {
    /// The next pushed change, or `None` after `wait` without one.
    pub async fn next(&mut self, wait: Duration) -> Option<BookingView> {
        match tokio::time::timeout(wait, self.receiver.recv()).await {
            Ok(Ok(view)) => Some(view),
            _ => None,
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(mut waiters) = self.hub.waiters.lock() {
            let unused = waiters
                .get(&self.booking_id)
                .is_some_and(|sender| sender.receiver_count() <= 1);
            if unused {
                waiters.remove(&self.booking_id);
            }
        }
    }
}

/// Changes to one user's account; unregisters itself when dropped.
pub struct AccountWatch {
    hub: Arc<StatusHub>,
    user_id: Uuid,
    receiver: broadcast::Receiver<()>,
    recheck_at: tokio::time::Instant,
}

/// How often a stream checks its session even without a pushed change, in case one was lost.
const SESSION_RECHECK: Duration = Duration::from_secs(300);

impl AccountWatch {
    /// Resolves at the next change (a lagging receiver counts as one), or when a few minutes
    /// passed since the last time it resolved, so a stream never relies on pushes alone.
    /// Cancel-safe: dropped before it resolves, it keeps its deadline.
    pub async fn changed(&mut self) {
        let deadline = self.recheck_at;
        let pushed = async {
            loop {
                match self.receiver.recv().await {
                    Ok(()) | Err(broadcast::error::RecvError::Lagged(_)) => return,
                    // The sender is gone only with the hub: only the deadline is left.
                    Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
                }
            }
        };
        tokio::select! {
            () = pushed => {}
            () = tokio::time::sleep_until(deadline) => {}
        }
        self.recheck_at = tokio::time::Instant::now() + SESSION_RECHECK;
    }
}

impl Drop for AccountWatch {
    fn drop(&mut self) {
        if let Ok(mut accounts) = self.hub.accounts.lock() {
            let unused = accounts
                .get(&self.user_id)
                .is_some_and(|sender| sender.receiver_count() <= 1);
            if unused {
                accounts.remove(&self.user_id);
            }
        }
    }
}

/// Long-polls and event streams held open, per user and in all, against their caps.
pub struct HeldConnections {
    per_user_cap: usize,
    per_instance_cap: usize,
    held: Mutex<(usize, HashMap<Uuid, usize>)>,
}

/// Why a connection may not be held open now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldRefused {
    /// This user holds as many as one may.
    User,
    /// This instance holds as many as it may.
    Instance,
}

/// One held connection; gives its place back when dropped.
pub struct Held {
    owner: Arc<HeldConnections>,
    user_id: Uuid,
}

impl HeldConnections {
    pub fn new(per_user_cap: usize, per_instance_cap: usize) -> Arc<Self> {
        Arc::new(Self {
            per_user_cap,
            per_instance_cap,
            held: Mutex::new((0, HashMap::new())),
        })
    }

    /// A place for one more connection of `user_id`, if both caps allow it.
    pub fn hold(self: &Arc<Self>, user_id: Uuid) -> Result<Held, HoldRefused> {
        let mut held = self.held.lock().map_err(|_| HoldRefused::Instance)?;
        let (total, per_user) = &mut *held;
        if *total >= self.per_instance_cap {
            return Err(HoldRefused::Instance);
        }
        let mine = per_user.entry(user_id).or_insert(0);
        if *mine >= self.per_user_cap {
            return Err(HoldRefused::User);
        }
        *mine += 1;
        *total += 1;
        metrics::gauge!("held_connections").set(*total as f64);
        Ok(Held {
            owner: Arc::clone(self),
            user_id,
        })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Ok(mut held) = self.owner.held.lock() {
            let (total, per_user) = &mut *held;
            *total = total.saturating_sub(1);
            if let Some(mine) = per_user.get_mut(&self.user_id) {
                *mine = mine.saturating_sub(1);
                if *mine == 0 {
                    per_user.remove(&self.user_id);
                }
            }
            metrics::gauge!("held_connections").set(*total as f64);
        }
    }
}
