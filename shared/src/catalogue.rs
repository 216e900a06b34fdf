//! The catalogue as the booking flow needs it: laying out a venue's seats, and turning the
//! layout into the seat inventory of a showtime.

use sqlx::PgConnection;
use uuid::Uuid;

/// Adds a section of `rows` rows of `per_row` seats to a venue's layout. Rows are labelled
/// from A upwards by rank, starting at `first_row_rank` (0 is closest to the stage).
pub async fn add_section(
    conn: &mut PgConnection,
    venue_id: Uuid,
    name: &str,
    sort_order: i32,
    first_row_rank: i32,
    rows: i32,
    per_row: i32,
) -> Result<Uuid, sqlx::Error> {
    let section_id = sqlx::query_scalar!(
        "INSERT INTO seat_sections (venue_id, name, sort_order) VALUES ($1, $2, $3) RETURNING id",
        venue_id,
        name,
        sort_order
    )
    .fetch_one(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO seats (venue_id, section_id, row_label, row_rank, seat_number)
         SELECT $1, $2, chr(ascii('A') + $3 + r), $3 + r, n
         FROM generate_series(0, $4 - 1) AS r, generate_series(1, $5) AS n",
        venue_id,
        section_id,
        first_row_rank,
        rows,
        per_row
    )
    .execute(&mut *conn)
    .await?;
    Ok(section_id)
}

/// Creates the per-seat inventory of a showtime from its venue's layout, one row per seat
/// that has a price tier, in a single statement (fast for tens of thousands of seats).
/// Running it again adds only seats that are missing.
#[tracing::instrument(skip(conn))]
pub async fn create_showtime_inventory(
    conn: &mut PgConnection,
    showtime_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let inserted = sqlx::query!(
        r#"
        INSERT INTO showtime_seats
            (showtime_id, seat_id, section_id, price_tier_id, row_rank, row_label, seat_number)
        SELECT st.id, s.id, s.section_id, pt.id, s.row_rank, s.row_label, s.seat_number
        FROM showtimes st
        JOIN events e ON e.id = st.event_id
        JOIN seats s ON s.venue_id = e.venue_id
        JOIN price_tiers pt ON pt.showtime_id = st.id AND pt.section_id = s.section_id
        WHERE st.id = $1
        ON CONFLICT (showtime_id, seat_id) DO NOTHING
        "#,
        showtime_id
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected())
}
