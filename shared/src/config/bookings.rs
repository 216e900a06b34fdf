//! The booking flow: holds and their sweep, the per-booking cap, reservation locks, and how long
//! availability and statuses are kept.

use std::time::Duration;

use super::{
    SettingsError,
    reader::{Reader, positive},
    values::{CronExpression, HumanDuration},
};

#[derive(Debug, Clone)]
pub struct BookingSettings {
    pub hold_duration: Duration,
    pub hold_sweep_schedule: CronExpression,
    pub max_seats_per_booking: u32,
    /// How long a reservation lock lives if its holder never releases it.
    pub lock_ttl: Duration,
    /// Tries to take a busy lock before reserving without it.
    pub lock_retries: u32,
    pub lock_retry_min: Duration,
    pub lock_retry_max: Duration,
    /// Longest time an availability answer may be served from cache.
    pub availability_cache_ttl: Duration,
    /// How long the Redis copy of a booking's status is kept.
    pub status_ttl: Duration,
    /// A booking still PENDING this long after it was made has its job published again.
    pub republish_pending_after: Duration,
    /// Long-polls and event streams one user, and one API instance, may hold open at once.
    pub live_max_per_user: usize,
    pub live_max_per_instance: usize,
}

impl BookingSettings {
    pub(super) fn read<F: Fn(&str) -> Option<String>>(
        env: &Reader<'_, F>,
    ) -> Result<Self, SettingsError> {
        let bookings = BookingSettings {
            hold_duration: env
                .or("HOLD_DURATION", HumanDuration(Duration::from_secs(600)))?
                .0,
            hold_sweep_schedule: env.or(
                "HOLD_SWEEP_SCHEDULE",
                CronExpression("*/15 * * * * *".to_owned()),
            )?,
            max_seats_per_booking: env.or_with("MAX_SEATS_PER_BOOKING", 10, positive)?,
            lock_ttl: env
                .or("BOOKING_LOCK_TTL", HumanDuration(Duration::from_secs(5)))?
                .0,
            lock_retries: env.or("BOOKING_LOCK_RETRIES", 40)?,
            lock_retry_min: env
                .or(
                    "BOOKING_LOCK_RETRY_MIN",
                    HumanDuration(Duration::from_millis(2)),
                )?
                .0,
            lock_retry_max: env
                .or(
                    "BOOKING_LOCK_RETRY_MAX",
                    HumanDuration(Duration::from_millis(50)),
                )?
                .0,
            availability_cache_ttl: env
                .or(
                    "AVAILABILITY_CACHE_TTL",
                    HumanDuration(Duration::from_secs(30)),
                )?
                .0,
            status_ttl: env
                .or(
                    "BOOKING_STATUS_TTL",
                    HumanDuration(Duration::from_secs(3600)),
                )?
                .0,
            republish_pending_after: env
                .or(
                    "REPUBLISH_PENDING_AFTER",
                    HumanDuration(Duration::from_secs(30)),
                )?
                .0,
            live_max_per_user: env.or_with("LIVE_MAX_PER_USER", 8, positive)?,
            live_max_per_instance: env.or_with("LIVE_MAX_PER_INSTANCE", 10_000, positive)?,
        };
        Ok(bookings)
    }
}
