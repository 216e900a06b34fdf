//! Catalogue and buyers for booking tests, written straight to the database.

use chrono::{Duration, Utc};
use shared::{
    accounts::{Role, tokens::TokenKeys, users::User},
    catalogue,
    config::Settings,
};
use sqlx::PgPool;
use uuid::Uuid;

/// A showtime on sale and the seats of each of its sections, best seats first.
#[derive(Debug, Clone)]
pub struct ShowtimeFixture {
    pub showtime_id: Uuid,
    pub sections: Vec<SectionFixture>,
}

#[derive(Debug, Clone)]
pub struct SectionFixture {
    pub section_id: Uuid,
    pub seat_ids: Vec<Uuid>,
}

impl ShowtimeFixture {
    pub fn all_seats(&self) -> Vec<Uuid> {
        self.sections
            .iter()
            .flat_map(|s| s.seat_ids.clone())
            .collect()
    }
}

/// Creates a venue with one section per `(rows, seats_per_row)`, a show, and a showtime on
/// sale now whose inventory holds every seat.
pub async fn showtime_on_sale(db: &PgPool, layout: &[(i32, i32)]) -> ShowtimeFixture {
    let venue_id: Uuid = sqlx::query_scalar(
        "INSERT INTO venues (name, city) VALUES ('Test Hall', 'Pune') RETURNING id",
    )
    .fetch_one(db)
    .await
    .unwrap();
    let show_id: Uuid =
        sqlx::query_scalar("INSERT INTO shows (title) VALUES ('Test Show') RETURNING id")
            .fetch_one(db)
            .await
            .unwrap();
    let event_id: Uuid =
        sqlx::query_scalar("INSERT INTO events (show_id, venue_id) VALUES ($1, $2) RETURNING id")
            .bind(show_id)
            .bind(venue_id)
            .fetch_one(db)
            .await
            .unwrap();
    let now = Utc::now();
    let showtime_id: Uuid = sqlx::query_scalar(
        "INSERT INTO showtimes (event_id, starts_at, sale_starts_at, sale_ends_at, status)
         VALUES ($1, $2, $3, $2, 'ON_SALE') RETURNING id",
    )
    .bind(event_id)
    .bind(now + Duration::days(3))
    .bind(now - Duration::hours(1))
    .fetch_one(db)
    .await
    .unwrap();
    let mut sections = Vec::new();
    let mut conn = db.acquire().await.unwrap();
    for (index, (rows, per_row)) in layout.iter().enumerate() {
        let name = format!("Section {index}");
        let section_id =
            catalogue::add_section(&mut conn, venue_id, &name, index as i32, 0, *rows, *per_row)
                .await
                .unwrap();
        sqlx::query(
            "INSERT INTO price_tiers (showtime_id, section_id, name, price_paise, allocated_capacity)
             VALUES ($1, $2, 'Standard', $3, $4)",
        )
        .bind(showtime_id)
        .bind(section_id)
        .bind(50_000_i64 + 10_000 * index as i64)
        .bind(rows * per_row)
        .execute(db)
        .await
        .unwrap();
        let seat_ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM seats WHERE section_id = $1 ORDER BY row_rank, seat_number",
        )
        .bind(section_id)
        .fetch_all(db)
        .await
        .unwrap();
        sections.push(SectionFixture {
            section_id,
            seat_ids,
        });
    }
    catalogue::create_showtime_inventory(&mut conn, showtime_id)
        .await
        .unwrap();
    ShowtimeFixture {
        showtime_id,
        sections,
    }
}

/// A signed-in buyer: an account, a live session and an access token for it.
#[derive(Debug, Clone)]
pub struct Buyer {
    pub user_id: Uuid,
    pub token: String,
}

/// Creates `count` buyers at once (no password hashing: the booking path is under test).
pub async fn buyers(db: &PgPool, settings: &Settings, count: usize) -> Vec<Buyer> {
    let keys = TokenKeys::new(&settings.auth);
    let rows: Vec<(Uuid, Uuid, String, chrono::DateTime<Utc>)> = sqlx::query_as(
        "WITH new_users AS (
             INSERT INTO users (name, email)
             SELECT 'Buyer ' || n, 'buyer-' || n || '-' || gen_random_uuid() || '@example.com'
             FROM generate_series(1, $1) AS n
             RETURNING id, email, created_at
         ),
         new_sessions AS (
             INSERT INTO sessions (user_id, expires_at)
             SELECT id, now() + interval '1 day' FROM new_users
             RETURNING id, user_id
         )
         SELECT u.id, s.id, u.email, u.created_at
         FROM new_users u JOIN new_sessions s ON s.user_id = u.id",
    )
    .bind(count as i64)
    .fetch_all(db)
    .await
    .unwrap();
    // The buyers sign in after their accounts were made, as real buyers do. A token issued in
    // the very second of the account's creation counts as older than that change, so the
    // session gate would check each of them in Postgres; whether the bulk insert above ended
    // in the second it began decided that run by run, and with it the benchmark's speed.
    if let Some(created) = rows.iter().map(|row| row.3).max() {
        let next_second = created.timestamp() + 1;
        let wait = next_second * 1000 - Utc::now().timestamp_millis();
        if wait > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(wait.unsigned_abs())).await;
        }
    }
    rows.into_iter()
        .map(|(user_id, session_id, email, created_at)| {
            let user = User {
                id: user_id,
                name: "Buyer".into(),
                email: Some(email),
                email_verified: false,
                phone: None,
                phone_verified: false,
                role: Role::User,
                created_at,
            };
            Buyer {
                user_id,
                token: keys.issue_access(&user, session_id, Utc::now()).unwrap(),
            }
        })
        .collect()
}
