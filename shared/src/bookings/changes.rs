//! What follows the commit of any change to bookings, wherever it was made (a buyer's or an
//! admin's action, a reservation batch, the hold sweep, a payment or a refund settling): the
//! showtimes' cached availability is dropped, in Redis and in this process, then the bookings'
//! new statuses are stored and announced to whoever waits on them. Best effort: a failure is
//! logged, availability expires by its TTL, and status readers fall back to Postgres.
//!
//! Availability goes first, so a buyer told of a released seat finds it on sale.

use std::collections::BTreeSet;

use uuid::Uuid;

use super::view::{self, BookingView};
use crate::core::Core;

/// Bookings read from Postgres per announcement, however many changed.
const ANNOUNCE_CHUNK: usize = 500;

/// After the bookings of `showtimes` changed (a showtime may be named more than once): `known`
/// are views already in hand, `others` are read first.
pub async fn bookings_changed(
    core: &Core,
    showtimes: &[Uuid],
    known: &[BookingView],
    others: &[Uuid],
) {
    let showtimes: BTreeSet<Uuid> = showtimes.iter().copied().collect();
    for showtime_id in showtimes {
        super::availability::invalidate(&core.redis, showtime_id).await;
        core.availability.forget(showtime_id).await;
    }
    let ttl = core.settings.bookings.status_ttl;
    view::announce_views(&core.redis, known, ttl).await;
    for chunk in others.chunks(ANNOUNCE_CHUNK) {
        view::announce_many(&core.db, &core.redis, chunk, ttl).await;
    }
}

/// After one booking's seats were taken or given back: the booking as it now stands, announced.
/// `None` if it does not exist.
pub async fn seats_changed(
    core: &Core,
    showtime_id: Uuid,
    booking_id: Uuid,
) -> Result<Option<BookingView>, sqlx::Error> {
    bookings_changed(core, &[showtime_id], &[], &[]).await;
    status_changed(core, booking_id).await
}

/// After one booking's status changed and its seats did not: the booking as it now stands,
/// announced.
pub async fn status_changed(
    core: &Core,
    booking_id: Uuid,
) -> Result<Option<BookingView>, sqlx::Error> {
    let view = view::load(&core.db, booking_id).await?;
    if let Some(view) = &view {
        view::announce_view(&core.redis, view, core.settings.bookings.status_ttl).await;
    }
    Ok(view)
}
