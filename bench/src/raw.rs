//! The database's own limit for the work a reservation does: single-seat conditional
//! `UPDATE ... WHERE status = 'AVAILABLE'`, each in its own transaction, issued straight at
//! Postgres by `concurrency` tasks over a pool (capped below the server's connection limit).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use sqlx::{PgPool, postgres::PgPoolOptions};
use test_support::fixtures::ShowtimeFixture;
use uuid::Uuid;

#[derive(Debug, Clone, serde::Serialize)]
pub struct RawLimit {
    pub updates: usize,
    pub seconds: f64,
    pub per_second: f64,
    pub connections: u32,
}

pub async fn single_seat_updates(
    db: &PgPool,
    showtime: &ShowtimeFixture,
    concurrency: usize,
) -> anyhow::Result<RawLimit> {
    // One booking to hold every seat, so the rows satisfy the schema's constraints.
    let user_id: Uuid = sqlx::query_scalar("SELECT id FROM users LIMIT 1")
        .fetch_one(db)
        .await?;
    let booking_id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO bookings (id, user_id, showtime_id, request, quantity, status, hold_expires_at)
         VALUES ($1, $2, $3, '{}', 1, 'PENDING', NULL)",
    )
    .bind(booking_id)
    .bind(user_id)
    .bind(showtime.showtime_id)
    .execute(db)
    .await?;
    let connections = u32::try_from(concurrency.min(60)).unwrap_or(60);
    let options = db.connect_options();
    let pool = PgPoolOptions::new()
        .max_connections(connections)
        .connect_with((*options).clone())
        .await?;
    let seats = Arc::new(showtime.all_seats());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks = (0..concurrency).map(|_| {
        let (pool, seats, next) = (pool.clone(), Arc::clone(&seats), Arc::clone(&next));
        let showtime_id = showtime.showtime_id;
        tokio::spawn(async move {
            let mut done = 0usize;
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(seat) = seats.get(index) else { return Ok::<_, sqlx::Error>(done) };
                let updated = sqlx::query(
                    "UPDATE showtime_seats
                     SET status = 'RESERVED', booking_id = $3, hold_expires_at = now() + interval '1 hour'
                     WHERE showtime_id = $1 AND seat_id = $2 AND status = 'AVAILABLE'",
                )
                .bind(showtime_id)
                .bind(seat)
                .bind(booking_id)
                .execute(&pool)
                .await?;
                done += updated.rows_affected() as usize;
            }
        })
    });
    let mut updates = 0;
    for task in futures::future::join_all(tasks).await {
        updates += task??;
    }
    let seconds = started.elapsed().as_secs_f64();
    pool.close().await;
    Ok(RawLimit {
        updates,
        seconds,
        per_second: updates as f64 / seconds,
        connections,
    })
}
