//! The showtime as buyers and editors read it: its show, venue and price tiers.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use super::ShowtimeStatus;
use crate::{catalogue::venues::VenueBrief, money::Paise};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PriceTier {
    pub id: Uuid,
    pub section_id: Uuid,
    pub section_name: String,
    pub name: String,
    pub price_paise: Paise,
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
pub(in crate::catalogue) async fn load(
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
        r#"SELECT pt.showtime_id, pt.id, pt.section_id, s.name AS section_name, pt.name,
                  pt.price_paise AS "price_paise: Paise",
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
