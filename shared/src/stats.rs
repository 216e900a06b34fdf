//! Sales statistics for editors and admins: seats sold, held and free, occupancy, revenue and
//! refunds per showtime and per show, sales over time, top shows, and conversion from hold to
//! payment.
//!
//! The statements are constants rather than checked macros so that the benchmark tool can ask
//! Postgres for their plans on a database of a million tickets (`flash-sale stats-plans`, see
//! BENCHMARKS.md); the integration tests run every one of them against known data.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::money::Paise;

/// Seats and money of one showtime (or, summed, of a show). Revenue is what was captured minus
/// what was refunded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct SeatsAndMoney {
    pub seats: i64,
    pub sold: i64,
    pub held: i64,
    pub free: i64,
    /// Sold seats over all seats, 0 to 1.
    pub occupancy: f64,
    pub captured_paise: Paise,
    pub refunded_paise: Paise,
    pub revenue_paise: Paise,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct ShowtimeStats {
    pub showtime_id: Uuid,
    pub starts_at: DateTime<Utc>,
    #[sqlx(flatten)]
    #[serde(flatten)]
    pub totals: SeatsAndMoney,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ShowStats {
    pub show_id: Uuid,
    pub totals: SeatsAndMoney,
    pub showtimes: Vec<ShowtimeStats>,
}

/// Per showtime: inventory counts (a lapsed hold counts as free) and the money of its bookings.
pub const SHOWTIMES: &str = r"
WITH seats AS (
    SELECT ss.showtime_id,
           count(*) AS seats,
           count(*) FILTER (WHERE ss.status = 'SOLD') AS sold,
           count(*) FILTER (WHERE ss.status = 'RESERVED' AND ss.hold_expires_at > now()) AS held
    FROM showtime_seats ss
    WHERE ss.showtime_id = ANY($1)
    GROUP BY ss.showtime_id
),
money AS (
    SELECT b.showtime_id,
           coalesce(sum(p.amount_paise) FILTER (WHERE p.status IN ('CAPTURED', 'REFUNDED')), 0)::bigint AS captured,
           coalesce(sum(p.refunded_paise), 0)::bigint AS refunded
    FROM bookings b JOIN payments p ON p.booking_id = b.id
    WHERE b.showtime_id = ANY($1)
    GROUP BY b.showtime_id
)
SELECT st.id AS showtime_id, st.starts_at,
       coalesce(s.seats, 0) AS seats, coalesce(s.sold, 0) AS sold, coalesce(s.held, 0) AS held,
       coalesce(s.seats - s.sold - s.held, 0) AS free,
       CASE WHEN coalesce(s.seats, 0) = 0 THEN 0 ELSE s.sold::float8 / s.seats END AS occupancy,
       coalesce(m.captured, 0) AS captured_paise, coalesce(m.refunded, 0) AS refunded_paise,
       coalesce(m.captured - m.refunded, 0) AS revenue_paise
FROM showtimes st
LEFT JOIN seats s ON s.showtime_id = st.id
LEFT JOIN money m ON m.showtime_id = st.id
WHERE st.id = ANY($1)
ORDER BY st.starts_at, st.id
";

/// The showtimes of a show.
pub const SHOWTIMES_OF_SHOW: &str = r"
SELECT st.id FROM showtimes st JOIN events e ON e.id = st.event_id WHERE e.show_id = $1
";

pub async fn showtimes(db: &PgPool, ids: &[Uuid]) -> Result<Vec<ShowtimeStats>, sqlx::Error> {
    sqlx::query_as(SHOWTIMES).bind(ids).fetch_all(db).await
}

/// A show's totals and each of its showtimes; `None` if there is no such show.
pub async fn show(db: &PgPool, show_id: Uuid) -> Result<Option<ShowStats>, sqlx::Error> {
    let exists: Option<Uuid> = sqlx::query_scalar("SELECT id FROM shows WHERE id = $1")
        .bind(show_id)
        .fetch_optional(db)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let ids: Vec<Uuid> = sqlx::query_scalar(SHOWTIMES_OF_SHOW)
        .bind(show_id)
        .fetch_all(db)
        .await?;
    let showtimes = showtimes(db, &ids).await?;
    let mut totals = SeatsAndMoney {
        seats: 0,
        sold: 0,
        held: 0,
        free: 0,
        occupancy: 0.0,
        captured_paise: Paise::ZERO,
        refunded_paise: Paise::ZERO,
        revenue_paise: Paise::ZERO,
    };
    for showtime in &showtimes {
        let t = &showtime.totals;
        totals.seats += t.seats;
        totals.sold += t.sold;
        totals.held += t.held;
        totals.free += t.free;
        totals.captured_paise += t.captured_paise;
        totals.refunded_paise += t.refunded_paise;
        totals.revenue_paise += t.revenue_paise;
    }
    if totals.seats > 0 {
        totals.occupancy = totals.sold as f64 / totals.seats as f64;
    }
    Ok(Some(ShowStats {
        show_id,
        totals,
        showtimes,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    Hour,
    Day,
}

impl Interval {
    fn as_str(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct SalesBucket {
    pub period_start: DateTime<Utc>,
    pub payments: i64,
    pub tickets: i64,
    pub captured_paise: Paise,
}

/// Payments captured per hour or day in `[from, to)`, optionally for one show.
pub const SALES_OVER_TIME: &str = r"
SELECT date_trunc($1, p.captured_at) AS period_start,
       count(*) AS payments,
       sum(b.quantity)::bigint AS tickets,
       sum(p.amount_paise)::bigint AS captured_paise
FROM payments p
JOIN bookings b ON b.id = p.booking_id
WHERE p.status IN ('CAPTURED', 'REFUNDED') AND p.captured_at >= $2 AND p.captured_at < $3
  AND ($4::uuid IS NULL OR b.showtime_id IN (
      SELECT st.id FROM showtimes st JOIN events e ON e.id = st.event_id WHERE e.show_id = $4))
GROUP BY 1 ORDER BY 1
";

pub async fn sales_over_time(
    db: &PgPool,
    interval: Interval,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    show_id: Option<Uuid>,
) -> Result<Vec<SalesBucket>, sqlx::Error> {
    sqlx::query_as(SALES_OVER_TIME)
        .bind(interval.as_str())
        .bind(from)
        .bind(to)
        .bind(show_id)
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct TopShow {
    pub show_id: Uuid,
    pub title: String,
    pub tickets: i64,
    pub revenue_paise: Paise,
}

/// Shows by tickets sold (paid bookings) in `[from, to)`.
pub const TOP_SHOWS: &str = r"
SELECT sh.id AS show_id, sh.title,
       sum(b.quantity)::bigint AS tickets,
       sum(p.amount_paise - p.refunded_paise)::bigint AS revenue_paise
FROM payments p
JOIN bookings b ON b.id = p.booking_id
JOIN showtimes st ON st.id = b.showtime_id
JOIN events e ON e.id = st.event_id
JOIN shows sh ON sh.id = e.show_id
WHERE p.status IN ('CAPTURED', 'REFUNDED') AND p.captured_at >= $1 AND p.captured_at < $2
GROUP BY sh.id, sh.title
ORDER BY tickets DESC, revenue_paise DESC, sh.id
LIMIT $3
";

pub async fn top_shows(
    db: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<TopShow>, sqlx::Error> {
    sqlx::query_as(TOP_SHOWS)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(db)
        .await
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct Conversion {
    /// Bookings that got a hold.
    pub holds: i64,
    /// Of those, the ones paid for.
    pub paid: i64,
    /// Held but let lapse.
    pub expired: i64,
    /// Held and canceled before paying.
    pub canceled: i64,
    /// paid / holds, 0 to 1.
    pub rate: f64,
}

/// Holds made in `[from, to)` and what became of them, optionally for one show.
pub const CONVERSION: &str = r"
SELECT count(*) AS holds,
       count(*) FILTER (WHERE b.status IN ('CONFIRMED', 'REFUND_PENDING', 'REFUNDED')) AS paid,
       count(*) FILTER (WHERE b.status = 'EXPIRED') AS expired,
       count(*) FILTER (WHERE b.status = 'CANCELED') AS canceled,
       CASE WHEN count(*) = 0 THEN 0
            ELSE count(*) FILTER (WHERE b.status IN ('CONFIRMED', 'REFUND_PENDING', 'REFUNDED'))::float8 / count(*)
       END AS rate
FROM bookings b
WHERE b.status IN ('RESERVED', 'CONFIRMED', 'EXPIRED', 'CANCELED', 'REFUND_PENDING', 'REFUNDED')
  AND b.created_at >= $1 AND b.created_at < $2
  AND ($3::uuid IS NULL OR b.showtime_id IN (
      SELECT st.id FROM showtimes st JOIN events e ON e.id = st.event_id WHERE e.show_id = $3))
";

pub async fn conversion(
    db: &PgPool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    show_id: Option<Uuid>,
) -> Result<Conversion, sqlx::Error> {
    sqlx::query_as(CONVERSION)
        .bind(from)
        .bind(to)
        .bind(show_id)
        .fetch_one(db)
        .await
}
