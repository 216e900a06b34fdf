//! `flash-sale stats-plans`: the stats queries on a database of a million sold tickets, with
//! Postgres's own plans and timings (EXPLAIN ANALYZE) for BENCHMARKS.md.
//!
//! The data: 10 shows, 100 showtimes of 10,000 seats each, every seat sold in bookings of four,
//! paid over the last 30 days, with tickets. It is written straight to a fresh database.

use std::time::Instant;

use shared::stats;
use sqlx::PgPool;
use test_support::TestEnv;
use uuid::Uuid;

const SEED: &str = r"
INSERT INTO users (name, email)
SELECT 'Buyer ' || n, 'buyer-' || n || '@plans.example' FROM generate_series(1, 50000) n;
INSERT INTO venues (name, city, capacity) VALUES ('Arena', 'Mumbai', 10000);
INSERT INTO seat_sections (venue_id, name) SELECT id, 'Floor' FROM venues;
INSERT INTO seats (venue_id, section_id, row_label, row_rank, seat_number)
SELECT s.venue_id, s.id, 'R' || r, r, n FROM seat_sections s, generate_series(0, 99) r, generate_series(1, 100) n;
INSERT INTO shows (title) SELECT 'Show ' || n FROM generate_series(1, 10) n;
INSERT INTO events (show_id, venue_id) SELECT sh.id, v.id FROM shows sh, venues v;
INSERT INTO showtimes (event_id, starts_at, sale_starts_at, sale_ends_at, status)
SELECT e.id, now() + (n || ' days')::interval, now() - interval '40 days', now() + (n || ' days')::interval, 'ON_SALE'
FROM events e, generate_series(1, 10) n;
INSERT INTO price_tiers (showtime_id, section_id, name, price_paise, allocated_capacity)
SELECT st.id, s.id, 'Floor', 99900, 10000 FROM showtimes st, seat_sections s;
INSERT INTO showtime_seats (showtime_id, seat_id, section_id, price_tier_id, row_rank, row_label, seat_number)
SELECT pt.showtime_id, s.id, s.section_id, pt.id, s.row_rank, s.row_label, s.seat_number
FROM price_tiers pt JOIN seats s ON s.section_id = pt.section_id;
CREATE TEMP TABLE numbered AS
SELECT showtime_id, seat_id,
       (row_number() OVER (PARTITION BY showtime_id ORDER BY seat_id) - 1) / 4 AS slot
FROM showtime_seats;
CREATE TEMP TABLE planned AS
SELECT showtime_id, slot, gen_random_uuid() AS booking_id
FROM (SELECT DISTINCT showtime_id, slot FROM numbered) slots;
CREATE TEMP TABLE buyers AS SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM users;
INSERT INTO bookings (id, user_id, showtime_id, status, request, quantity, total_paise, created_at)
SELECT p.booking_id, b.id, p.showtime_id, 'CONFIRMED', '{}', 4, 399600,
       now() - (random() * interval '30 days')
FROM planned p JOIN buyers b ON b.n = p.slot % 50000;
INSERT INTO booking_seats (booking_id, showtime_id, seat_id, price_paise)
SELECT p.booking_id, n.showtime_id, n.seat_id, 99900
FROM numbered n JOIN planned p USING (showtime_id, slot);
UPDATE showtime_seats ss SET status = 'SOLD', booking_id = bs.booking_id
FROM booking_seats bs WHERE bs.showtime_id = ss.showtime_id AND bs.seat_id = ss.seat_id;
INSERT INTO tickets (booking_id, showtime_id, seat_id, code)
SELECT booking_id, showtime_id, seat_id, 'T-' || md5(booking_id::text || seat_id::text) FROM booking_seats;
INSERT INTO payments (booking_id, provider_order_id, provider_payment_id, amount_paise, status, captured_at)
SELECT id, 'order_' || id, 'pay_' || id, total_paise, 'CAPTURED', created_at + interval '2 minutes' FROM bookings;
";

/// Seeds a fresh database and prints each stats query's plan and execution time.
pub async fn run() -> anyhow::Result<()> {
    let env = TestEnv::new().await;
    let db = env.db();
    let started = Instant::now();
    sqlx::raw_sql(SEED).execute(&db).await?;
    // The steady state autovacuum keeps a live database in: statistics and visibility maps.
    sqlx::raw_sql("VACUUM ANALYZE").execute(&db).await?;
    let tickets: i64 = sqlx::query_scalar("SELECT count(*) FROM tickets")
        .fetch_one(&db)
        .await?;
    println!(
        "seeded {tickets} tickets in {:.1} s (database {})",
        started.elapsed().as_secs_f64(),
        env.database_name()
    );
    let showtime: Uuid = sqlx::query_scalar("SELECT id FROM showtimes LIMIT 1")
        .fetch_one(&db)
        .await?;
    let show: Uuid = sqlx::query_scalar("SELECT id FROM shows LIMIT 1")
        .fetch_one(&db)
        .await?;
    let showtimes_of_show: Vec<Uuid> = sqlx::query_scalar(stats::SHOWTIMES_OF_SHOW)
        .bind(show)
        .fetch_all(&db)
        .await?;
    let now = chrono::Utc::now();
    let month_ago = now - chrono::Duration::days(30);

    explain(&db, "one showtime", stats::SHOWTIMES, |q| {
        q.bind(vec![showtime])
    })
    .await?;
    explain(&db, "a show's 10 showtimes", stats::SHOWTIMES, |q| {
        q.bind(showtimes_of_show.clone())
    })
    .await?;
    explain(&db, "sales per day, 30 days", stats::SALES_OVER_TIME, |q| {
        q.bind("day").bind(month_ago).bind(now).bind(None::<Uuid>)
    })
    .await?;
    explain(
        &db,
        "sales per hour of one show, 2 days",
        stats::SALES_OVER_TIME,
        |q| {
            q.bind("hour")
                .bind(now - chrono::Duration::days(2))
                .bind(now)
                .bind(Some(show))
        },
    )
    .await?;
    explain(&db, "top shows, 30 days", stats::TOP_SHOWS, |q| {
        q.bind(month_ago).bind(now).bind(10_i64)
    })
    .await?;
    explain(
        &db,
        "conversion of one show, 30 days",
        stats::CONVERSION,
        |q| q.bind(month_ago).bind(now).bind(Some(show)),
    )
    .await?;
    db.close().await;
    Ok(())
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

/// Runs the statement twice: the first run reads a freshly written table from disk (and sets
/// its hint bits); the second shows the plan and time of a warm database.
async fn explain(
    db: &PgPool,
    what: &str,
    sql: &str,
    bind: impl for<'q> Fn(Query<'q>) -> Query<'q>,
) -> anyhow::Result<()> {
    let statement = format!("EXPLAIN (ANALYZE, BUFFERS) {sql}");
    let mut runs = Vec::new();
    for _ in 0..2 {
        let lines: Vec<String> = bind(sqlx::query(&statement))
            .fetch_all(db)
            .await?
            .iter()
            .map(|row| sqlx::Row::get::<String, _>(row, 0))
            .collect();
        runs.push(lines);
    }
    let cold = runs[0]
        .iter()
        .find(|line| line.starts_with("Execution Time"))
        .cloned()
        .unwrap_or_default();
    println!("\n## {what}\n\n    first run: {cold}\n");
    for line in &runs[1] {
        println!("    {line}");
    }
    Ok(())
}
