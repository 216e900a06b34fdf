//! A buyer's bookings, newest first, and the tickets of a confirmed booking.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

use super::{BookingStatus, RejectReason};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BookingSummary {
    pub id: Uuid,
    pub showtime_id: Uuid,
    pub show_title: String,
    pub starts_at: DateTime<Utc>,
    pub status: BookingStatus,
    pub reject_reason: Option<RejectReason>,
    pub quantity: i32,
    pub total_paise: i64,
    pub created_at: DateTime<Utc>,
}

/// One page of the user's bookings older than `before` (a booking id, from the previous page).
pub async fn list_for_user(
    db: &PgPool,
    user_id: Uuid,
    status: Option<BookingStatus>,
    before: Option<Uuid>,
    limit: i64,
) -> Result<Vec<BookingSummary>, sqlx::Error> {
    sqlx::query_as!(
        BookingSummary,
        r#"SELECT b.id, b.showtime_id, sh.title AS show_title, st.starts_at,
                  b.status AS "status: BookingStatus",
                  b.reject_reason AS "reject_reason: RejectReason",
                  b.quantity, b.total_paise, b.created_at
           FROM bookings b
           JOIN showtimes st ON st.id = b.showtime_id
           JOIN events e ON e.id = st.event_id
           JOIN shows sh ON sh.id = e.show_id
           WHERE b.user_id = $1
             AND ($2::booking_status IS NULL OR b.status = $2)
             AND ($3::uuid IS NULL OR (b.created_at, b.id) <
                  (SELECT created_at, id FROM bookings WHERE id = $3 AND user_id = $1))
           ORDER BY b.created_at DESC, b.id DESC
           LIMIT $4"#,
        user_id,
        status as Option<BookingStatus>,
        before,
        limit
    )
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: Uuid,
    pub code: String,
    pub seat_id: Uuid,
    pub section: String,
    pub row: String,
    pub number: i32,
    pub issued_at: DateTime<Utc>,
}

pub async fn tickets(db: &PgPool, booking_id: Uuid) -> Result<Vec<Ticket>, sqlx::Error> {
    sqlx::query_as!(
        Ticket,
        r#"SELECT t.id, t.code, t.seat_id, sec.name AS section, s.row_label AS row,
                  s.seat_number AS number, t.issued_at
           FROM tickets t
           JOIN seats s ON s.id = t.seat_id
           JOIN seat_sections sec ON sec.id = s.section_id
           WHERE t.booking_id = $1 AND t.voided_at IS NULL
           ORDER BY s.row_rank, s.row_label, s.seat_number"#,
        booking_id
    )
    .fetch_all(db)
    .await
}
