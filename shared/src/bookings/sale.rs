//! What the accept path needs to know of a showtime to turn a request away at once: whether it
//! is on sale, which sections it sells and which seats it has. Read from Postgres once per
//! showtime and kept in each API process ([`crate::cache::TypedCache`]), evicted by the same
//! announcements as the catalogue's cached pages (every write to a showtime bumps its scope),
//! so the steady state of an on-sale asks Postgres nothing. The worker checks all of it again
//! under its locks; what the API cannot check (the per-buyer cap) only the worker decides.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::SeatSelection;
use crate::catalogue::showtimes::ShowtimeStatus;

#[derive(Debug, Clone)]
pub struct SaleFacts {
    status: ShowtimeStatus,
    sale_starts_at: DateTime<Utc>,
    sale_ends_at: DateTime<Utc>,
    /// Sections with a price tier.
    sections: HashSet<Uuid>,
    /// Every seat of the showtime's inventory.
    seats: HashSet<Uuid>,
}

/// Why the API turns a request away before accepting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotOnSale,
    UnknownSeats(Vec<Uuid>),
    UnknownSection,
}

impl SaleFacts {
    /// Checks `selection` against the showtime at `now`.
    pub fn check(&self, selection: &SeatSelection, now: DateTime<Utc>) -> Result<(), Refusal> {
        let on_sale = self.status == ShowtimeStatus::OnSale
            && now >= self.sale_starts_at
            && now < self.sale_ends_at;
        if !on_sale {
            return Err(Refusal::NotOnSale);
        }
        let unknown: Vec<Uuid> = selection
            .named_seats()
            .iter()
            .filter(|seat| !self.seats.contains(seat))
            .copied()
            .collect();
        if !unknown.is_empty() {
            return Err(Refusal::UnknownSeats(unknown));
        }
        if let Some(section) = selection.section_id()
            && !self.sections.contains(&section)
        {
            return Err(Refusal::UnknownSection);
        }
        Ok(())
    }
}

/// The facts of `showtime_id` from Postgres; `None` if there is no such showtime.
pub async fn load(db: &PgPool, showtime_id: Uuid) -> Result<Option<SaleFacts>, sqlx::Error> {
    let Some(showtime) = sqlx::query!(
        r#"SELECT status AS "status: ShowtimeStatus", sale_starts_at, sale_ends_at
           FROM showtimes WHERE id = $1"#,
        showtime_id
    )
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let sections = sqlx::query_scalar!(
        "SELECT section_id FROM price_tiers WHERE showtime_id = $1",
        showtime_id
    )
    .fetch_all(db)
    .await?;
    let seats = sqlx::query_scalar!(
        "SELECT seat_id FROM showtime_seats WHERE showtime_id = $1",
        showtime_id
    )
    .fetch_all(db)
    .await?;
    Ok(Some(SaleFacts {
        status: showtime.status,
        sale_starts_at: showtime.sale_starts_at,
        sale_ends_at: showtime.sale_ends_at,
        sections: sections.into_iter().collect(),
        seats: seats.into_iter().collect(),
    }))
}
