//! Tickets: one per seat of a confirmed booking, with a code the door scans. Issued once per
//! seat (a valid ticket per seat is also unique in the schema); voided when the seat is
//! refunded or the booking canceled.

use sqlx::PgConnection;
use uuid::Uuid;

/// Issues the missing tickets of the live seats of `booking_ids`.
pub(crate) async fn issue(
    conn: &mut PgConnection,
    booking_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO tickets (booking_id, showtime_id, seat_id, code)
         SELECT bs.booking_id, bs.showtime_id, bs.seat_id,
                'BMS-' || upper(substr(md5(gen_random_uuid()::text), 1, 12))
         FROM booking_seats bs
         WHERE bs.booking_id = ANY($1) AND bs.released_at IS NULL
           AND NOT EXISTS (SELECT 1 FROM tickets t WHERE t.booking_id = bs.booking_id
                           AND t.seat_id = bs.seat_id AND t.voided_at IS NULL)",
        booking_ids
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Voids the tickets of `seat_ids` of a booking.
pub(crate) async fn void(
    conn: &mut PgConnection,
    booking_id: Uuid,
    seat_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "UPDATE tickets SET voided_at = now() WHERE booking_id = $1 AND seat_id = ANY($2) AND voided_at IS NULL",
        booking_id,
        seat_ids
    )
    .execute(conn)
    .await?;
    Ok(())
}
