//! Demo data for a fresh local database: an admin, a venue with a seat layout, a show with an
//! event, one showtime on sale and one in draft, and their price tiers.
//!
//! Loading is idempotent: if the demo admin exists, nothing is written.

use argon2::{
    Argon2, PasswordHasher,
    password_hash::{SaltString, rand_core::OsRng},
};
use chrono::{Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

pub const ADMIN_EMAIL: &str = "admin@bms.local";

#[derive(Debug, Clone)]
pub struct DemoData {
    pub admin_id: Uuid,
    pub venue_id: Uuid,
    pub show_id: Uuid,
    pub on_sale_showtime_id: Uuid,
    pub draft_showtime_id: Uuid,
    pub seats: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error("could not hash the admin password: {0}")]
    Hash(String),
    #[error("the demo admin exists but the rest of the demo data does not")]
    Partial,
}

/// Sections of the demo hall: name, first row letter, rows, seats per row, price in paise.
const SECTIONS: [(&str, char, i32, i32, i64); 3] = [
    ("Front", 'A', 5, 20, 149_900),
    ("Middle", 'F', 7, 20, 99_900),
    ("Balcony", 'M', 4, 15, 49_900),
];

/// Loads the demo data, or returns what was loaded before. `None` means it already existed.
pub async fn load(db: &PgPool, admin_password: &str) -> Result<(DemoData, bool), DemoError> {
    if let Some(existing) = existing(db).await? {
        return Ok((existing, false));
    }
    let password_hash = Argon2::default()
        .hash_password(admin_password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map_err(|e| DemoError::Hash(e.to_string()))?
        .to_string();
    let mut tx = db.begin().await?;
    let admin_id = sqlx::query_scalar!(
        "INSERT INTO users (name, email, email_verified_at, password_hash, role)
         VALUES ('Demo Admin', $1, now(), $2, 'SUPER_ADMIN') RETURNING id",
        ADMIN_EMAIL,
        password_hash
    )
    .fetch_one(&mut *tx)
    .await?;
    let venue_id = sqlx::query_scalar!(
        r#"INSERT INTO venues (name, address, city, latitude, longitude, rules)
           VALUES ('BMS Demo Hall', '1 Demo Road, Bandra West', 'Mumbai', 19.0596, 72.8295,
                   '{"age_limit": 16, "bag_policy": "small bags only", "rules": ["No recording"]}')
           RETURNING id"#
    )
    .fetch_one(&mut *tx)
    .await?;
    let show_id = sqlx::query_scalar!(
        "INSERT INTO shows (title, description, artist, language, duration_minutes, age_rating)
         VALUES ('Late Night Stand-up', 'Ninety minutes of new material.', 'The Demo Comic',
                 'en', 90, '16+')
         RETURNING id"
    )
    .fetch_one(&mut *tx)
    .await?;
    let event_id = sqlx::query_scalar!(
        "INSERT INTO events (show_id, venue_id, title) VALUES ($1, $2, 'Mumbai') RETURNING id",
        show_id,
        venue_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let now = Utc::now();
    let on_sale_showtime_id = sqlx::query_scalar!(
        "INSERT INTO showtimes (event_id, starts_at, ends_at, sale_starts_at, sale_ends_at,
                                status, published_at)
         VALUES ($1, $2, $3, $4, $2, 'ON_SALE', now()) RETURNING id",
        event_id,
        now + Duration::days(7),
        now + Duration::days(7) + Duration::minutes(90),
        now - Duration::hours(1),
    )
    .fetch_one(&mut *tx)
    .await?;
    let draft_showtime_id = sqlx::query_scalar!(
        "INSERT INTO showtimes (event_id, starts_at, sale_starts_at, sale_ends_at)
         VALUES ($1, $2, $3, $2) RETURNING id",
        event_id,
        now + Duration::days(14),
        now + Duration::days(2),
    )
    .fetch_one(&mut *tx)
    .await?;
    for (order, (name, first_row, rows, per_row, price)) in (0..).zip(SECTIONS) {
        let section_id = crate::catalogue::add_section(
            &mut tx,
            venue_id,
            name,
            order,
            row_rank(first_row),
            rows,
            per_row,
        )
        .await?;
        for showtime_id in [on_sale_showtime_id, draft_showtime_id] {
            sqlx::query!(
                "INSERT INTO price_tiers
                     (showtime_id, section_id, name, price_paise, allocated_capacity)
                 VALUES ($1, $2, $3, $4, $5)",
                showtime_id,
                section_id,
                name,
                price,
                rows * per_row
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    sqlx::query!(
        "UPDATE venues SET capacity = (SELECT count(*) FROM seats WHERE venue_id = $1) WHERE id = $1",
        venue_id
    )
    .execute(&mut *tx)
    .await?;
    let seats = crate::catalogue::create_showtime_inventory(&mut tx, on_sale_showtime_id).await?;
    tx.commit().await?;
    let data = DemoData {
        admin_id,
        venue_id,
        show_id,
        on_sale_showtime_id,
        draft_showtime_id,
        seats: i64::try_from(seats).unwrap_or(i64::MAX),
    };
    Ok((data, true))
}

/// Rows are ranked from the stage: A is 0.
fn row_rank(label: char) -> i32 {
    i32::from(u8::try_from(label).unwrap_or(b'A') - b'A')
}

async fn existing(db: &PgPool) -> Result<Option<DemoData>, DemoError> {
    let Some(admin_id) = sqlx::query_scalar!("SELECT id FROM users WHERE email = $1", ADMIN_EMAIL)
        .fetch_optional(db)
        .await?
    else {
        return Ok(None);
    };
    let row = sqlx::query!(
        r#"SELECT v.id AS venue_id, sh.id AS show_id,
                  (SELECT id FROM showtimes WHERE event_id = e.id AND status = 'ON_SALE'
                   ORDER BY starts_at LIMIT 1) AS on_sale,
                  (SELECT id FROM showtimes WHERE event_id = e.id AND status = 'DRAFT'
                   ORDER BY starts_at LIMIT 1) AS draft,
                  (SELECT count(*) FROM seats WHERE venue_id = v.id) AS "seats!"
           FROM venues v
           JOIN events e ON e.venue_id = v.id
           JOIN shows sh ON sh.id = e.show_id
           WHERE v.name = 'BMS Demo Hall'
           LIMIT 1"#
    )
    .fetch_optional(db)
    .await?
    .ok_or(DemoError::Partial)?;
    Ok(Some(DemoData {
        admin_id,
        venue_id: row.venue_id,
        show_id: row.show_id,
        on_sale_showtime_id: row.on_sale.ok_or(DemoError::Partial)?,
        draft_showtime_id: row.draft.ok_or(DemoError::Partial)?,
        seats: row.seats,
    }))
}
