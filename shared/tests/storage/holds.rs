//! The hold-expiry sweep, alone and racing copies of itself.

use shared::bookings::expire_overdue_holds;
use sqlx::PgPool;
use test_support::TestEnv;
use uuid::Uuid;

use crate::fixtures::{self, in_minutes};

async fn status_of(db: &PgPool, booking: Uuid) -> String {
    sqlx::query_scalar("SELECT status::text FROM bookings WHERE id = $1")
        .bind(booking)
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_sweep_expires_overdue_holds_and_frees_their_seats() {
    let env = TestEnv::new().await;
    let db = env.db();
    let demo = fixtures::catalogue(&db).await;
    let showtime = demo.on_sale_showtime_id;
    let seats = fixtures::seats(&db, showtime, 4).await;
    let overdue = fixtures::pending_booking(&db, fixtures::buyer(&db).await, showtime).await;
    let live = fixtures::pending_booking(&db, fixtures::buyer(&db).await, showtime).await;
    fixtures::hold(&db, overdue, showtime, &seats[..2], in_minutes(-1))
        .await
        .unwrap();
    fixtures::hold(&db, live, showtime, &seats[2..], in_minutes(10))
        .await
        .unwrap();

    let expired = expire_overdue_holds(&db, 100).await.unwrap();

    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].booking_id, overdue);
    assert_eq!(expired[0].showtime_id, showtime);
    assert_eq!(status_of(&db, overdue).await, "EXPIRED");
    assert_eq!(status_of(&db, live).await, "RESERVED");
    let freed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM showtime_seats
         WHERE showtime_id = $1 AND seat_id = ANY($2) AND status = 'AVAILABLE' AND booking_id IS NULL",
    )
    .bind(showtime)
    .bind(&seats[..2])
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(freed, 2);
    let live_claims: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM booking_seats WHERE booking_id = $1 AND released_at IS NULL",
    )
    .bind(overdue)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(live_claims, 0);
    assert!(expire_overdue_holds(&db, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn concurrent_sweeps_expire_each_hold_exactly_once() {
    let env = TestEnv::new().await;
    let db = env.db();
    let demo = fixtures::catalogue(&db).await;
    let showtime = demo.on_sale_showtime_id;
    let seats = fixtures::seats(&db, showtime, 60).await;
    let mut bookings = Vec::new();
    for pair in seats.chunks(2) {
        let booking = fixtures::pending_booking(&db, fixtures::buyer(&db).await, showtime).await;
        fixtures::hold(&db, booking, showtime, pair, in_minutes(-1))
            .await
            .unwrap();
        bookings.push(booking);
    }

    let sweeps = (0..4).map(|_| {
        let db = db.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = expire_overdue_holds(&db, 3).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|hold| hold.booking_id));
            }
        })
    });
    let mut expired: Vec<Uuid> = Vec::new();
    for sweep in sweeps {
        expired.extend(sweep.await.unwrap());
    }

    expired.sort();
    bookings.sort();
    assert_eq!(expired, bookings, "every hold expired by exactly one sweep");
    let reserved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM showtime_seats WHERE showtime_id = $1 AND status <> 'AVAILABLE'",
    )
    .bind(showtime)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(reserved, 0);
}
