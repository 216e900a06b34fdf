//! The catalogue as the booking flow needs it: turning a venue layout into the seat
//! inventory of a showtime.

use sqlx::PgConnection;
use uuid::Uuid;

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
