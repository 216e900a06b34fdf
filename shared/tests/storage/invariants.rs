//! What the database refuses by itself: illegal transitions, a seat in two live bookings,
//! changes to the audit log.

use crate::fixtures::{self, constraint_of, in_minutes};
use test_support::TestEnv;

#[tokio::test]
async fn the_database_refuses_an_illegal_booking_transition() {
    let env = TestEnv::new().await;
    let db = env.db();
    let demo = fixtures::catalogue(&db).await;
    let buyer = fixtures::buyer(&db).await;
    let booking = fixtures::pending_booking(&db, buyer, demo.on_sale_showtime_id).await;

    let error = sqlx::query("UPDATE bookings SET status = 'CONFIRMED' WHERE id = $1")
        .bind(booking)
        .execute(&db)
        .await
        .expect_err("PENDING -> CONFIRMED is refused");
    assert_eq!(
        constraint_of(&error).as_deref(),
        Some("booking_status_transition")
    );

    sqlx::query(
        "UPDATE bookings SET status = 'REJECTED', reject_reason = 'SOLD_OUT' WHERE id = $1",
    )
    .bind(booking)
    .execute(&db)
    .await
    .expect("PENDING -> REJECTED is allowed");
    let error = sqlx::query(
        "UPDATE bookings SET status = 'RESERVED', reject_reason = NULL,
                             hold_expires_at = now() + interval '1 minute' WHERE id = $1",
    )
    .bind(booking)
    .execute(&db)
    .await
    .expect_err("REJECTED is final");
    assert_eq!(
        constraint_of(&error).as_deref(),
        Some("booking_status_transition")
    );
}

#[tokio::test]
async fn a_seat_cannot_be_in_two_live_bookings() {
    let env = TestEnv::new().await;
    let db = env.db();
    let demo = fixtures::catalogue(&db).await;
    let showtime = demo.on_sale_showtime_id;
    let seats = fixtures::seats(&db, showtime, 2).await;
    let first = fixtures::pending_booking(&db, fixtures::buyer(&db).await, showtime).await;
    let second = fixtures::pending_booking(&db, fixtures::buyer(&db).await, showtime).await;
    fixtures::hold(&db, first, showtime, &seats, in_minutes(10))
        .await
        .unwrap();

    // Taking over a hold that has not expired is refused on the inventory row ...
    let error = fixtures::hold(&db, second, showtime, &seats[..1], in_minutes(10))
        .await
        .expect_err("a live hold cannot be taken over");
    assert_eq!(
        constraint_of(&error).as_deref(),
        Some("showtime_seat_transition")
    );

    // ... and a second live claim on the seat is refused on its own.
    let error = sqlx::query(
        "INSERT INTO booking_seats (booking_id, showtime_id, seat_id, price_paise)
         VALUES ($1, $2, $3, 100)",
    )
    .bind(second)
    .bind(showtime)
    .bind(seats[0])
    .execute(&db)
    .await
    .expect_err("two live claims on one seat");
    assert_eq!(
        constraint_of(&error).as_deref(),
        Some("booking_seats_one_live_booking_per_seat")
    );
}

#[tokio::test]
async fn a_sold_seat_cannot_be_held_again() {
    let env = TestEnv::new().await;
    let db = env.db();
    let demo = fixtures::catalogue(&db).await;
    let showtime = demo.on_sale_showtime_id;
    let seats = fixtures::seats(&db, showtime, 1).await;
    let booking = fixtures::pending_booking(&db, fixtures::buyer(&db).await, showtime).await;
    fixtures::hold(&db, booking, showtime, &seats, in_minutes(10))
        .await
        .unwrap();
    sqlx::query(
        "UPDATE showtime_seats SET status = 'SOLD', hold_expires_at = NULL
         WHERE showtime_id = $1 AND seat_id = $2",
    )
    .bind(showtime)
    .bind(seats[0])
    .execute(&db)
    .await
    .expect("RESERVED -> SOLD by the same booking");

    let error = sqlx::query(
        "UPDATE showtime_seats SET status = 'RESERVED', hold_expires_at = now() + interval '1 minute'
         WHERE showtime_id = $1 AND seat_id = $2",
    )
    .bind(showtime)
    .bind(seats[0])
    .execute(&db)
    .await
    .expect_err("SOLD -> RESERVED is refused");
    assert_eq!(
        constraint_of(&error).as_deref(),
        Some("showtime_seat_transition")
    );
}

#[tokio::test]
async fn the_audit_log_is_append_only() {
    let env = TestEnv::new().await;
    let db = env.db();
    sqlx::query(
        "INSERT INTO audit_log (action, resource_type, resource_id) VALUES ('test', 'thing', '1')",
    )
    .execute(&db)
    .await
    .unwrap();
    for statement in [
        "UPDATE audit_log SET action = 'changed'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let error = sqlx::query(statement)
            .execute(&db)
            .await
            .expect_err(statement);
        assert_eq!(
            constraint_of(&error).as_deref(),
            Some("audit_log_append_only")
        );
    }
}

#[tokio::test]
async fn an_amount_read_from_the_database_is_never_negative() {
    let env = TestEnv::new().await;
    let db = env.db();

    let amount: shared::money::Paise = sqlx::query_scalar("SELECT 45000::bigint")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(amount.get(), 45_000);
    let negative = sqlx::query_scalar::<_, shared::money::Paise>("SELECT -1::bigint")
        .fetch_one(&db)
        .await;
    assert!(
        negative.is_err(),
        "a negative amount is refused where it is read"
    );
}
