//! What must hold in the database after any sale, however it ran: used by the pipeline tests
//! and by the flash-sale benchmark, which fails its run if one breaks.

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, Default, Serialize)]
pub struct SaleInvariants {
    pub seats: i64,
    pub held: i64,
    pub sold: i64,
    pub free: i64,
}

/// Checks the showtime's sale and describes the first broken invariant, if any.
pub async fn check_sale(db: &PgPool, showtime_id: Uuid) -> Result<SaleInvariants, String> {
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .bind(showtime_id)
            .fetch_one(db)
            .await
            .map_err(|e| e.to_string())
    };
    let pending =
        count("SELECT count(*) FROM bookings WHERE showtime_id = $1 AND status = 'PENDING'")
            .await?;
    if pending != 0 {
        return Err(format!(
            "LOST: {pending} bookings never reached a final state"
        ));
    }
    let twice = count(
        "SELECT count(*) FROM (SELECT seat_id FROM booking_seats
                               WHERE showtime_id = $1 AND released_at IS NULL
                               GROUP BY seat_id HAVING count(*) > 1) AS t",
    )
    .await?;
    if twice != 0 {
        return Err(format!("OVERSOLD: {twice} seats are in two live bookings"));
    }
    let mismatched = count(
        "SELECT count(*) FROM showtime_seats ss
         FULL JOIN (SELECT bs.seat_id, bs.booking_id,
                           CASE WHEN b.status = 'RESERVED' THEN 'RESERVED' ELSE 'SOLD' END AS seat_status
                    FROM booking_seats bs
                    JOIN bookings b ON b.id = bs.booking_id
                    WHERE bs.showtime_id = $1 AND bs.released_at IS NULL
                      AND b.status IN ('RESERVED', 'CONFIRMED', 'REFUND_PENDING')) live
           ON live.seat_id = ss.seat_id
         WHERE ss.showtime_id = $1
           AND (ss.status <> 'AVAILABLE') IS DISTINCT FROM (live.booking_id IS NOT NULL
                                                            AND live.booking_id = ss.booking_id
                                                            AND live.seat_status = ss.status::text)",
    )
    .await?;
    if mismatched != 0 {
        return Err(format!(
            "{mismatched} seats disagree between inventory and live claims"
        ));
    }
    let wrong_size = count(
        "SELECT count(*) FROM bookings b
         WHERE b.showtime_id = $1 AND b.status IN ('RESERVED', 'CONFIRMED')
           AND b.quantity <> (SELECT count(*) FROM booking_seats bs
                              WHERE bs.booking_id = b.id AND bs.released_at IS NULL)",
    )
    .await?;
    if wrong_size != 0 {
        return Err(format!(
            "{wrong_size} bookings do not have the seats they asked for"
        ));
    }
    let (seats, held, sold, free): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE status = 'RESERVED'),
                count(*) FILTER (WHERE status = 'SOLD'), count(*) FILTER (WHERE status = 'AVAILABLE')
         FROM showtime_seats WHERE showtime_id = $1",
    )
    .bind(showtime_id)
    .fetch_one(db)
    .await
    .map_err(|e| e.to_string())?;
    if held + sold + free != seats {
        return Err(format!(
            "held {held} + sold {sold} + free {free} != {seats} seats"
        ));
    }
    Ok(SaleInvariants {
        seats,
        held,
        sold,
        free,
    })
}
