//! The lock order (`shared::bookings`, "Lock order") where it matters most on the night:
//! reservations taking over lapsed holds at the moment the sweep expires the same holds. The
//! takeover used to lock the seats and then their holder, the sweep the holder and then its
//! seats: a deadlock whenever the two met. Round after round, every new booking names seats of
//! two lapsed holds, and its own hold lapses at once, to be taken over in the next round.

use std::time::Duration;

use futures::future::join_all;
use shared::bookings::{
    SeatSelection,
    create::{self, BookingRequest, IdempotencyKey},
    expire_overdue_holds, reserve,
};
use sqlx::PgPool;
use test_support::{TestEnv, invariants};
use uuid::Uuid;

use crate::fixtures;

fn is_deadlock(error: &sqlx::Error) -> bool {
    error
        .as_database_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "40P01")
}

async fn deadlocks(db: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(db)
        .await
        .unwrap()
}

async fn pending(db: &PgPool, showtime_id: Uuid, seats: &[Uuid]) -> Uuid {
    let selection = SeatSelection::parse(Some(seats.to_vec()), None, None, 10).unwrap();
    create::create_pending(
        db,
        &BookingRequest {
            user_id: fixtures::buyer(db).await,
            showtime_id,
            selection,
            idempotency_key: IdempotencyKey::parse(&Uuid::new_v4().to_string()).unwrap(),
        },
        Uuid::now_v7(),
    )
    .await
    .unwrap()
    .booking_id
}

#[tokio::test]
async fn taking_over_lapsed_holds_while_the_sweep_expires_them_never_deadlocks() {
    let env = TestEnv::new().await;
    let db = env.db();
    let demo = fixtures::catalogue(&db).await;
    let showtime = demo.on_sale_showtime_id;
    let seats = fixtures::seats(&db, showtime, 64).await;
    // The first lapsed holds: seats in pairs (0, 1), (2, 3), ...
    for pair in seats.chunks(2) {
        let booking = fixtures::pending_booking(&db, fixtures::buyer(&db).await, showtime).await;
        fixtures::hold(&db, booking, showtime, pair, fixtures::in_minutes(-1))
            .await
            .unwrap();
    }
    let before = deadlocks(&db).await;
    let mut deadlocked = 0;
    for round in 0..12 {
        // New bookings straddle two lapsed holds each: (1, 2), (3, 4), ... or back to the
        // first pairing, so each takes over two holders and shares them with its neighbours.
        let offset = 1 - round % 2;
        let mut batches: Vec<Vec<Uuid>> = vec![Vec::new(); 4];
        for (i, start) in (offset..seats.len() - 1).step_by(2).enumerate() {
            let booking = pending(&db, showtime, &seats[start..start + 2]).await;
            batches[i % 4].push(booking);
        }
        let reservations = batches.iter().map(|batch| {
            let db = db.clone();
            let batch: Vec<_> = batch.iter().map(|id| (*id, None)).collect();
            async move {
                reserve::reserve_batch(&db, &batch, Duration::ZERO, None)
                    .await
                    .err()
            }
        });
        let sweeps = (0..2).map(|_| {
            let db = db.clone();
            async move { expire_overdue_holds(&db, 500).await.err() }
        });
        let (reserved, swept) = tokio::join!(join_all(reservations), join_all(sweeps));
        for error in reserved.into_iter().chain(swept).flatten() {
            if is_deadlock(&error) {
                deadlocked += 1;
            }
        }
    }
    assert_eq!(
        deadlocked, 0,
        "transactions were chosen as deadlock victims"
    );
    db.close().await;
    let db = env.db();
    assert_eq!(deadlocks(&db).await, before);
    invariants::check_sale(&db, showtime).await.unwrap();
}
