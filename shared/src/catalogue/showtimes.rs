//! Showtimes: one performance of an event, its sale window, its price tiers per seat section,
//! and its lifecycle. Publishing turns the venue's layout into the showtime's seat inventory
//! in the same transaction that puts it on sale.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    DomainError,
    parse::required_text,
    scopes::{self, Changed},
    venues::VenueBrief,
};
use crate::{
    audit::{self, Actor, AuditEntry},
    bookings::{availability, showtime_cancellation},
    cache::Cache,
    core::Core,
    redis_client::RedisClient,
    validation::FieldError,
};

/// Where a showtime is in its life. Buyers see every status but `Draft`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, sqlx::Type, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[sqlx(type_name = "showtime_status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShowtimeStatus {
    Draft,
    OnSale,
    SoldOut,
    Canceled,
    Completed,
}

impl ShowtimeStatus {
    /// The moves the lifecycle allows; the database refuses the others too
    /// (`showtime_transition_allowed`).
    pub fn can_become(self, next: Self) -> bool {
        use ShowtimeStatus::*;
        self == next
            || matches!(
                (self, next),
                (Draft, OnSale | Canceled)
                    | (OnSale, SoldOut | Canceled | Completed)
                    | (SoldOut, OnSale | Canceled | Completed)
            )
    }

    fn is_final(self) -> bool {
        matches!(self, Self::Canceled | Self::Completed)
    }
}

/// An amount of money in paise: never negative, at most ₹1 crore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paise(i64);

impl Paise {
    const MAX: i64 = 1_000_000_000;

    pub fn parse(field: &'static str, value: i64) -> Result<Self, FieldError> {
        if value < 0 {
            return Err(FieldError::new(field, "a price cannot be negative"));
        }
        if value > Self::MAX {
            return Err(FieldError::new(
                field,
                format!("at most {} paise", Self::MAX),
            ));
        }
        Ok(Self(value))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewShowtime {
    pub event_id: Uuid,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    /// Seats one buyer may hold or own for this showtime (default 10).
    pub max_seats_per_user: Option<i32>,
    #[serde(default)]
    pub price_tiers: Vec<TierInput>,
}

/// Changes to a showtime; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShowtimeChanges {
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sale_starts_at: Option<DateTime<Utc>>,
    pub sale_ends_at: Option<DateTime<Utc>>,
    pub max_seats_per_user: Option<i32>,
}

/// The price of one section of the venue at this showtime.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierInput {
    pub section_id: Uuid,
    /// Defaults to the section's name.
    pub name: Option<String>,
    pub price_paise: i64,
    /// Seats of the section put on sale, best first (default: all of them).
    pub allocated_capacity: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PriceTier {
    pub id: Uuid,
    pub section_id: Uuid,
    pub section_name: String,
    pub name: String,
    pub price_paise: i64,
    pub currency: String,
    pub allocated_capacity: i32,
}

/// A showtime as its page and the show page show it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Showtime {
    pub id: Uuid,
    pub event_id: Uuid,
    pub show_id: Uuid,
    pub show_title: String,
    pub venue: VenueBrief,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub sale_starts_at: DateTime<Utc>,
    pub sale_ends_at: DateTime<Utc>,
    pub status: ShowtimeStatus,
    pub max_seats_per_user: i32,
    pub published_at: Option<DateTime<Utc>>,
    pub price_tiers: Vec<PriceTier>,
}

/// When a showtime happens and when it sells, checked against each other.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    starts_at: DateTime<Utc>,
    ends_at: Option<DateTime<Utc>>,
    sale_starts_at: DateTime<Utc>,
    sale_ends_at: DateTime<Utc>,
}

impl Schedule {
    fn parse(
        starts_at: DateTime<Utc>,
        ends_at: Option<DateTime<Utc>>,
        sale_starts_at: DateTime<Utc>,
        sale_ends_at: DateTime<Utc>,
    ) -> Result<Self, FieldError> {
        if ends_at.is_some_and(|end| end <= starts_at) {
            return Err(FieldError::new("ends_at", "must be after starts_at"));
        }
        if sale_ends_at <= sale_starts_at {
            return Err(FieldError::new(
                "sale_ends_at",
                "must be after sale_starts_at",
            ));
        }
        if starts_at < sale_starts_at {
            return Err(FieldError::new(
                "starts_at",
                "a showtime cannot start before its sale opens",
            ));
        }
        if sale_ends_at > ends_at.unwrap_or(starts_at) {
            return Err(FieldError::new(
                "sale_ends_at",
                "the sale must close by the time the show ends",
            ));
        }
        Ok(Self {
            starts_at,
            ends_at,
            sale_starts_at,
            sale_ends_at,
        })
    }
}

fn seats_per_user(value: Option<i32>) -> Result<i32, FieldError> {
    let value = value.unwrap_or(10);
    if (1..=100).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            "max_seats_per_user",
            "must be between 1 and 100",
        ))
    }
}

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
    let seats = super::create_showtime_inventory(&mut tx, id).await?;
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
        prices.push(Paise::parse("price_tiers.price_paise", tier.price_paise)?.get());
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
    super::finish(tx, cache, Changed::Showtime(id), "showtime", async |conn| {
        Ok(load(conn, &[id], true).await?.pop())
    })
    .await
}

/// The showtime page: `None` if there is none, or (for buyers) it is a draft.
pub async fn details(
    db: &PgPool,
    id: Uuid,
    include_drafts: bool,
) -> Result<Option<Showtime>, sqlx::Error> {
    let mut conn = db.acquire().await?;
    Ok(load(&mut conn, &[id], include_drafts).await?.pop())
}

/// Showtimes by id, soonest first, with their venue and tiers.
pub(super) async fn load(
    conn: &mut PgConnection,
    ids: &[Uuid],
    include_drafts: bool,
) -> Result<Vec<Showtime>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT st.id, st.event_id, e.show_id, sh.title AS show_title,
                  v.id AS venue_id, v.name AS venue_name, v.city, v.address, v.latitude, v.longitude,
                  st.starts_at, st.ends_at, st.sale_starts_at, st.sale_ends_at,
                  st.status AS "status: ShowtimeStatus", st.max_seats_per_user, st.published_at
           FROM showtimes st
           JOIN events e ON e.id = st.event_id
           JOIN shows sh ON sh.id = e.show_id
           JOIN venues v ON v.id = e.venue_id
           WHERE st.id = ANY($1) AND ($2 OR st.status <> 'DRAFT')
           ORDER BY st.starts_at, st.id"#,
        ids,
        include_drafts
    )
    .fetch_all(&mut *conn)
    .await?;
    let found: Vec<Uuid> = rows.iter().map(|row| row.id).collect();
    let tiers = sqlx::query!(
        r#"SELECT pt.showtime_id, pt.id, pt.section_id, s.name AS section_name, pt.name, pt.price_paise,
                  pt.currency::text AS "currency!", pt.allocated_capacity
           FROM price_tiers pt JOIN seat_sections s ON s.id = pt.section_id
           WHERE pt.showtime_id = ANY($1)
           ORDER BY s.sort_order, s.name"#,
        &found
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Showtime {
            price_tiers: tiers
                .iter()
                .filter(|tier| tier.showtime_id == row.id)
                .map(|tier| PriceTier {
                    id: tier.id,
                    section_id: tier.section_id,
                    section_name: tier.section_name.clone(),
                    name: tier.name.clone(),
                    price_paise: tier.price_paise,
                    currency: tier.currency.clone(),
                    allocated_capacity: tier.allocated_capacity,
                })
                .collect(),
            id: row.id,
            event_id: row.event_id,
            show_id: row.show_id,
            show_title: row.show_title,
            venue: VenueBrief {
                id: row.venue_id,
                name: row.venue_name,
                city: row.city,
                address: row.address,
                latitude: row.latitude,
                longitude: row.longitude,
            },
            starts_at: row.starts_at,
            ends_at: row.ends_at,
            sale_starts_at: row.sale_starts_at,
            sale_ends_at: row.sale_ends_at,
            status: row.status,
            max_seats_per_user: row.max_seats_per_user,
            published_at: row.published_at,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::{ShowtimeStatus::*, *};

    #[test]
    fn lifecycle_moves_forward_only() {
        assert!(
            Draft.can_become(OnSale) && OnSale.can_become(SoldOut) && SoldOut.can_become(OnSale)
        );
        assert!(
            !OnSale.can_become(Draft)
                && !Canceled.can_become(OnSale)
                && !Completed.can_become(Canceled)
        );
        assert!(!Draft.can_become(Completed));
    }

    #[test]
    fn a_schedule_holds_together() {
        let now = Utc::now();
        let day = Duration::days(1);
        assert!(Schedule::parse(now + day, None, now, now + day).is_ok());
        assert!(
            Schedule::parse(now, None, now + day, now + day * 2).is_err(),
            "starts before sale"
        );
        assert!(
            Schedule::parse(now + day, Some(now), now - day, now).is_err(),
            "ends before start"
        );
        assert!(
            Schedule::parse(now + day, None, now, now - day).is_err(),
            "sale ends before it opens"
        );
    }

    #[test]
    fn prices_are_never_negative() {
        assert!(Paise::parse("price", -1).is_err());
        assert_eq!(Paise::parse("price", 0).unwrap().get(), 0);
        assert!(Paise::parse("price", Paise::MAX + 1).is_err());
    }
}
