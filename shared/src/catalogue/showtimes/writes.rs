//! Creating, changing, publishing, cancelling and deleting a showtime, each in one transaction
//! that also says which cached pages it made stale.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{
    ShowtimeStatus,
    read::{Showtime, load},
    requests::{NewShowtime, Schedule, ShowtimeChanges, TierInput, seats_per_user},
};
use crate::catalogue::{
    DomainError,
    parse::required_text,
    scopes::{self, Changed},
};
use crate::{
    audit::{self, Actor, AuditEntry},
    bookings::{availability, showtime_cancellation},
    cache::Cache,
    core::Core,
    money::Paise,
    redis_client::RedisClient,
    validation::FieldError,
};

#[tracing::instrument(skip_all, fields(event_id = %new.event_id))]
pub async fn create(db: &PgPool, cache: &Cache, new: NewShowtime) -> Result<Showtime, DomainError> {
    let schedule = Schedule::parse(
        new.starts_at,
        new.ends_at,
        new.sale_starts_at,
        new.sale_ends_at,
    )?;
    if schedule.starts_at <= Utc::now() {
        return Err(FieldError::new("starts_at", "must be in the future").into());
    }
    let max_seats = seats_per_user(new.max_seats_per_user)?;
    let mut tx = db.begin().await?;
    let event = sqlx::query!(
        "SELECT e.archived_at IS NOT NULL AS archived FROM events e WHERE e.id = $1 FOR SHARE",
        new.event_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| FieldError::new("event_id", "no such event"))?;
    if event.archived == Some(true) {
        return Err(FieldError::new("event_id", "the event is archived").into());
    }
    let id = sqlx::query_scalar!(
        "INSERT INTO showtimes (event_id, starts_at, ends_at, sale_starts_at, sale_ends_at, max_seats_per_user)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        new.event_id,
        schedule.starts_at,
        schedule.ends_at,
        schedule.sale_starts_at,
        schedule.sale_ends_at,
        max_seats
    )
    .fetch_one(&mut *tx)
    .await?;
    write_tiers(&mut tx, id, &new.price_tiers).await?;
    finish(tx, cache, id).await
}

#[tracing::instrument(skip(db, cache, changes))]
pub async fn update(
    db: &PgPool,
    cache: &Cache,
    id: Uuid,
    changes: ShowtimeChanges,
) -> Result<Showtime, DomainError> {
    let mut tx = db.begin().await?;
    let current = lock(&mut tx, id).await?;
    if current.status.is_final() {
        return Err(DomainError::conflict(
            "SHOWTIME_CLOSED",
            "a canceled or completed showtime cannot change",
        ));
    }
    let schedule = Schedule::parse(
        changes.starts_at.unwrap_or(current.starts_at),
        changes.ends_at.or(current.ends_at),
        changes.sale_starts_at.unwrap_or(current.sale_starts_at),
        changes.sale_ends_at.unwrap_or(current.sale_ends_at),
    )?;
    let max_seats = seats_per_user(
        changes
            .max_seats_per_user
            .or(Some(current.max_seats_per_user)),
    )?;
    sqlx::query!(
        "UPDATE showtimes SET starts_at = $2, ends_at = $3, sale_starts_at = $4, sale_ends_at = $5,
                              max_seats_per_user = $6, updated_at = now()
         WHERE id = $1",
        id,
        schedule.starts_at,
        schedule.ends_at,
        schedule.sale_starts_at,
        schedule.sale_ends_at,
        max_seats
    )
    .execute(&mut *tx)
    .await?;
    finish(tx, cache, id).await
}

/// Replaces the price tiers of a draft showtime (published prices are what buyers paid).
#[tracing::instrument(skip(db, cache, tiers))]
pub async fn replace_price_tiers(
    db: &PgPool,
    cache: &Cache,
    id: Uuid,
    tiers: Vec<TierInput>,
) -> Result<Showtime, DomainError> {
    let mut tx = db.begin().await?;
    let current = lock(&mut tx, id).await?;
    if current.status != ShowtimeStatus::Draft {
        return Err(DomainError::conflict(
            "SHOWTIME_PUBLISHED",
            "price tiers can change only while the showtime is a draft",
        ));
    }
    sqlx::query!("DELETE FROM price_tiers WHERE showtime_id = $1", id)
        .execute(&mut *tx)
        .await?;
    write_tiers(&mut tx, id, &tiers).await?;
    finish(tx, cache, id).await
}

/// Puts a draft on sale: its seat inventory is created from the layout and its tiers, in the
/// same transaction.
#[tracing::instrument(skip(db, redis, cache))]
pub async fn publish(
    db: &PgPool,
    redis: &RedisClient,
    cache: &Cache,
    id: Uuid,
) -> Result<Showtime, DomainError> {
    let mut tx = db.begin().await?;
    let current = lock(&mut tx, id).await?;
    if current.status != ShowtimeStatus::Draft {
        return Err(DomainError::conflict(
            "ALREADY_PUBLISHED",
            "only a draft showtime can be published",
        ));
    }
    if current.sale_ends_at <= Utc::now() {
        return Err(FieldError::new(
            "sale_ends_at",
            "the sale window is over; move it before publishing",
        )
        .into());
    }
    let seats = crate::catalogue::create_showtime_inventory(&mut tx, id).await?;
    if seats == 0 {
        return Err(FieldError::new(
            "price_tiers",
            "price at least one section with seats before publishing",
        )
        .into());
    }
    set_status(&mut tx, id, current.status, ShowtimeStatus::OnSale).await?;
    let showtime = finish(tx, cache, id).await?;
    availability::invalidate(redis, id).await;
    Ok(showtime)
}

/// Cancels a showtime for good, and with it its bookings: holds released, paid bookings
/// refunded, all audited, in one transaction (`bookings::showtime_cancellation`). Cancelling a
/// canceled showtime again asks for any refund missing and hands back every refund still open,
/// so a cancellation interrupted after its commit is finished by running it again. After the
/// commit, the buyers are told and the refund jobs published on a task of their own.
#[tracing::instrument(skip(core, by))]
pub async fn cancel(core: &Core, by: &Actor, id: Uuid) -> Result<Showtime, DomainError> {
    let mut tx = core.db.begin().await?;
    let current = lock(&mut tx, id).await?;
    set_status(&mut tx, id, current.status, ShowtimeStatus::Canceled).await?;
    let canceled = showtime_cancellation::cancel_bookings(&mut tx, id, by).await?;
    audit::record(
        &mut tx,
        AuditEntry {
            before: Some(serde_json::json!({"status": current.status})),
            after: Some(serde_json::json!({
                "status": ShowtimeStatus::Canceled,
                "requests_rejected": canceled.turned_away.len(),
                "holds_released": canceled.released.len(),
                "refunds_requested": canceled.refunding.len(),
                "comps_canceled": canceled.comps.len(),
                "refunds_open": canceled.open_refunds.len(),
            })),
            ..by.entry("showtime.canceled", "showtime", id)
        },
    )
    .await?;
    let showtime = finish(tx, &core.cache, id).await?;
    core.availability.forget(id).await;
    showtime_cancellation::publish_refunds(core, canceled);
    Ok(showtime)
}

/// Deletes a showtime no booking refers to; one with bookings must be canceled instead.
#[tracing::instrument(skip(db, cache))]
pub async fn delete(db: &PgPool, cache: &Cache, id: Uuid) -> Result<(), DomainError> {
    let mut tx = db.begin().await?;
    lock(&mut tx, id).await?;
    let booked = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM bookings WHERE showtime_id = $1) AS "booked!""#,
        id
    )
    .fetch_one(&mut *tx)
    .await?;
    if booked {
        return Err(DomainError::conflict(
            "HAS_BOOKINGS",
            "buyers have booked this showtime; cancel it instead",
        ));
    }
    let stale = scopes::affected(&mut tx, Changed::Showtime(id)).await?;
    sqlx::query!("DELETE FROM showtimes WHERE id = $1", id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    cache.invalidate(&stale).await;
    Ok(())
}

async fn set_status(
    conn: &mut PgConnection,
    id: Uuid,
    from: ShowtimeStatus,
    to: ShowtimeStatus,
) -> Result<(), DomainError> {
    if !from.can_become(to) {
        return Err(DomainError::conflict(
            "ILLEGAL_TRANSITION",
            format!("a {from:?} showtime cannot become {to:?}"),
        ));
    }
    sqlx::query!(
        "UPDATE showtimes SET status = $2 WHERE id = $1",
        id,
        to as ShowtimeStatus
    )
    .execute(conn)
    .await?;
    Ok(())
}

struct Current {
    status: ShowtimeStatus,
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    sale_starts_at: DateTime<Utc>,
    sale_ends_at: DateTime<Utc>,
    max_seats_per_user: i32,
}

async fn lock(conn: &mut PgConnection, id: Uuid) -> Result<Current, DomainError> {
    sqlx::query_as!(
        Current,
        r#"SELECT status AS "status: ShowtimeStatus", starts_at, ends_at, sale_starts_at, sale_ends_at,
                  max_seats_per_user
           FROM showtimes WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(DomainError::NotFound("showtime"))
}

/// Checks tiers against the venue's sections and writes them.
async fn write_tiers(
    conn: &mut PgConnection,
    showtime_id: Uuid,
    tiers: &[TierInput],
) -> Result<(), DomainError> {
    if tiers.len() > 200 {
        return Err(FieldError::new("price_tiers", "at most 200 price tiers").into());
    }
    let sections = sqlx::query!(
        r#"SELECT s.id, s.name, (SELECT count(*) FROM seats WHERE section_id = s.id) AS "seats!"
           FROM showtimes st JOIN events e ON e.id = st.event_id
           JOIN seat_sections s ON s.venue_id = e.venue_id
           WHERE st.id = $1"#,
        showtime_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut section_ids = Vec::with_capacity(tiers.len());
    let mut names = Vec::with_capacity(tiers.len());
    let mut prices = Vec::with_capacity(tiers.len());
    let mut capacities = Vec::with_capacity(tiers.len());
    for tier in tiers {
        let section = sections
            .iter()
            .find(|s| s.id == tier.section_id)
            .ok_or_else(|| {
                FieldError::new(
                    "price_tiers.section_id",
                    format!("{} is not a section of this venue", tier.section_id),
                )
            })?;
        if section_ids.contains(&section.id) {
            return Err(FieldError::new(
                "price_tiers",
                format!("section {:?} is priced twice", section.name),
            )
            .into());
        }
        let seats = i32::try_from(section.seats).unwrap_or(i32::MAX);
        let allocated = tier.allocated_capacity.unwrap_or(seats);
        if !(0..=seats).contains(&allocated) {
            return Err(FieldError::new(
                "price_tiers.allocated_capacity",
                format!(
                    "section {:?} has {seats} seats; allocate between 0 and {seats}",
                    section.name
                ),
            )
            .into());
        }
        section_ids.push(section.id);
        names.push(required_text(
            "price_tiers.name",
            tier.name.as_deref().unwrap_or(&section.name),
            100,
        )?);
        prices.push(Paise::price("price_tiers.price_paise", tier.price_paise)?.get());
        capacities.push(allocated);
    }
    sqlx::query!(
        "INSERT INTO price_tiers (showtime_id, section_id, name, price_paise, allocated_capacity)
         SELECT $1, section_id, name, price, capacity
         FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::int[]) AS t(section_id, name, price, capacity)",
        showtime_id,
        &section_ids,
        &names,
        &prices,
        &capacities
    )
    .execute(conn)
    .await?;
    Ok(())
}

async fn finish(
    tx: sqlx::Transaction<'_, sqlx::Postgres>,
    cache: &Cache,
    id: Uuid,
) -> Result<Showtime, DomainError> {
    crate::catalogue::finish(tx, cache, Changed::Showtime(id), "showtime", async |conn| {
        Ok(load(conn, &[id], true).await?.pop())
    })
    .await
}
