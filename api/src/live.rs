//! Live booking status in this API instance: one Redis subscription to the `booking-status`
//! channel, fanned out to the long-polls and event streams waiting on each booking. The same
//! subscription carries account changes to the session cache.
//!
//! Waiters are registered per booking, so a message wakes only those who wait on it. The
//! subscription reconnects by itself; while it is down, waiters re-read Postgres every half
//! second, so they still learn every change, a little later. While it is up they re-read only
//! every few seconds, in case a message was lost.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use futures::StreamExt;
use shared::{bookings::view::BookingView, redis_client::RedisClient};
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::SessionCache;

/// How often a waiter re-reads Postgres while pushes arrive: a safety net only.
const RECHECK_WHILE_SUBSCRIBED: Duration = Duration::from_secs(5);
/// How often a waiter re-reads Postgres while the subscription is down.
const RECHECK_WITHOUT_PUSHES: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct StatusHub {
    waiters: Mutex<HashMap<Uuid, broadcast::Sender<BookingView>>>,
    subscribed: AtomicBool,
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
                            hub.subscribed.store(true, Ordering::Relaxed);
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

    fn dispatch(&self, view: BookingView) {
        if let Ok(waiters) = self.waiters.lock()
            && let Some(sender) = waiters.get(&view.id)
        {
            let _ = sender.send(view);
        }
    }

    /// How long a waiter may wait for a push before it re-reads Postgres.
    pub fn recheck_every(&self) -> Duration {
        if self.subscribed.load(Ordering::Relaxed) {
            RECHECK_WHILE_SUBSCRIBED
        } else {
            RECHECK_WITHOUT_PUSHES
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
