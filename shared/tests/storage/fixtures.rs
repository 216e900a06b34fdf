//! Putting a test database into the states the tests need, with plain SQL.

use chrono::{DateTime, Duration, Utc};
use shared::demo::{self, DemoData};
use sqlx::PgPool;
use uuid::Uuid;

pub async fn catalogue(db: &PgPool) -> DemoData {
    demo::load(db, "a-test-password")
        .await
        .expect("demo data loads")
        .0
}

pub async fn buyer(db: &PgPool) -> Uuid {
    sqlx::query_scalar("INSERT INTO users (name, email) VALUES ('Buyer', $1) RETURNING id")
        .bind(format!("buyer-{}@example.com", Uuid::new_v4()))
        .fetch_one(db)
        .await
        .expect("a buyer")
}

pub async fn seats(db: &PgPool, showtime_id: Uuid, count: i64) -> Vec<Uuid> {
    sqlx::query_scalar(
        "SELECT seat_id FROM showtime_seats WHERE showtime_id = $1
         ORDER BY row_rank, seat_number LIMIT $2",
    )
    .bind(showtime_id)
    .bind(count)
    .fetch_all(db)
    .await
    .expect("seats")
}

pub async fn pending_booking(db: &PgPool, user_id: Uuid, showtime_id: Uuid) -> Uuid {
    let id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO bookings (id, user_id, showtime_id, request, quantity)
         VALUES ($1, $2, $3, '{}', 1)",
    )
    .bind(id)
    .bind(user_id)
    .bind(showtime_id)
    .execute(db)
    .await
    .expect("a pending booking");
    id
}

/// Holds `seats` for `booking_id` until `deadline`, as the reservation path does.
pub async fn hold(
    db: &PgPool,
    booking_id: Uuid,
    showtime_id: Uuid,
    seats: &[Uuid],
    deadline: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let taken = sqlx::query(
        "UPDATE showtime_seats SET status = 'RESERVED', booking_id = $1, hold_expires_at = $2
         WHERE showtime_id = $3 AND seat_id = ANY($4)",
    )
    .bind(booking_id)
    .bind(deadline)
    .bind(showtime_id)
    .bind(seats)
    .execute(&mut *tx)
    .await?;
    assert_eq!(taken.rows_affected(), seats.len() as u64);
    sqlx::query(
        "INSERT INTO booking_seats (booking_id, showtime_id, seat_id, price_paise)
         SELECT $1, $2, unnest($3::uuid[]), 100",
    )
    .bind(booking_id)
    .bind(showtime_id)
    .bind(seats)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE bookings SET status = 'RESERVED', hold_expires_at = $2 WHERE id = $1")
        .bind(booking_id)
        .bind(deadline)
        .execute(&mut *tx)
        .await?;
    tx.commit().await
}

pub fn in_minutes(minutes: i64) -> DateTime<Utc> {
    Utc::now() + Duration::minutes(minutes)
}

pub fn constraint_of(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|e| e.constraint())
        .map(str::to_owned)
}
