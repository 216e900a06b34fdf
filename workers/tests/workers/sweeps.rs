//! The republishing sweep across replicas: bookings accepted while the broker was away get their
//! job published once, by one replica, and not again while that copy waits in the queue.

use shared::{
    bookings::{
        SeatSelection,
        create::{self, BookingRequest, IdempotencyKey},
    },
    jobs::ReserveSeats,
};
use test_support::{TestEnv, eventually, fixtures};
use uuid::Uuid;
use workers::{context::JobContext, startup::Application};

use crate::helpers::{Harness, Running};

/// A replica that runs only the sweeps (no consumers), so republished jobs stay queued.
async fn sweeping_replica(env: &TestEnv) -> Running {
    let mut app = Application::empty(JobContext::new(env.settings()).unwrap())
        .await
        .unwrap();
    app.sweep_expired_holds().unwrap();
    Running::start(app)
}

#[tokio::test]
async fn one_replica_republishes_a_stale_booking_once_while_its_copy_waits() {
    let mut harness = Harness::new().await;
    harness.env.set("HOLD_SWEEP_SCHEDULE", "* * * * * *");
    harness.env.set("REPUBLISH_PENDING_AFTER", "1s");
    let env = harness.env.clone();
    let showtime = fixtures::showtime_on_sale(&harness.db, &[(1, 10)]).await;
    let buyer = &fixtures::buyers(&harness.db, &env.settings(), 1).await[0];
    // Three bookings stored while the broker was unreachable: rows, and no job.
    let mut bookings = Vec::new();
    for _ in 0..3 {
        let selection =
            SeatSelection::parse(None, Some(showtime.sections[0].section_id), Some(1), 10).unwrap();
        let accepted = create::create_pending(
            &harness.db,
            &BookingRequest {
                user_id: buyer.user_id,
                showtime_id: showtime.showtime_id,
                selection,
                idempotency_key: IdempotencyKey::parse(&Uuid::new_v4().to_string()).unwrap(),
            },
            Uuid::now_v7(),
        )
        .await
        .unwrap();
        bookings.push(accepted.booking_id);
    }

    harness.declare::<ReserveSeats>().await;
    let replicas = [sweeping_replica(&env).await, sweeping_replica(&env).await];
    let queue = harness.topology.queue::<ReserveSeats>();
    eventually!(
        "the stale bookings are republished",
        harness.ready_messages(&queue).await >= 3
    );
    // Several more sweeps run on both replicas: each round below is a sweep seen purging an
    // idempotency key planted before it.
    for round in 0..3 {
        let key = format!("stale-{round}");
        sqlx::query(
            "INSERT INTO idempotency_keys (user_id, key, request_fingerprint, created_at)
             VALUES ($1, $2, 'x', now() - interval '2 days')",
        )
        .bind(buyer.user_id)
        .bind(&key)
        .execute(&harness.db)
        .await
        .unwrap();
        eventually!("a later sweep runs", {
            let left: i64 =
                sqlx::query_scalar("SELECT count(*) FROM idempotency_keys WHERE key = $1")
                    .bind(&key)
                    .fetch_one(&harness.db)
                    .await
                    .unwrap();
            left == 0
        });
    }
    for replica in replicas {
        replica.stop().await;
    }

    assert_eq!(
        harness.ready_messages(&queue).await,
        3,
        "one copy per booking, however many sweeps and replicas"
    );
    let times: Vec<i32> = sqlx::query_scalar(
        "SELECT times FROM republished_jobs WHERE kind = 'reserve-seats' ORDER BY job_id",
    )
    .fetch_all(&harness.db)
    .await
    .unwrap();
    assert_eq!(times, [1, 1, 1]);
}
