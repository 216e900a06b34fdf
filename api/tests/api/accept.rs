//! The accept path's degraded paths, each with a dependency cut through a proxy the test
//! controls (the workers keep their own connections): a booking is never lost, never made twice,
//! and never 404 for its owner.

use chrono::Utc;
use serde_json::{Value, json};
use shared::{
    bookings::{
        SeatSelection, claims,
        create::{BookingRequest, IdempotencyKey},
        ids::BookingIds,
        view::BookingView,
    },
    jobs::{NewBooking, ReservationScope, ReserveSeats},
    redis_client::RedisClient,
};
use test_support::{TestEnv, fixtures};
use uuid::Uuid;

use crate::helpers::{error_code, spawn_app_with, spawn_workers_with};

fn named(showtime: Uuid, seats: &[Uuid]) -> Value {
    json!({"showtime_id": showtime, "seat_ids": seats})
}

async fn bookings(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn with_the_broker_cut_a_booking_is_recorded_in_postgres_and_the_sweep_publishes_it() {
    let mut env = TestEnv::new().await;
    env.set("HOLD_SWEEP_SCHEDULE", "*/1 * * * * *");
    let (_workers, _) = spawn_workers_with(&env).await;
    let broker = env.route_through_proxy("RABBITMQ_URL", 5672).await;
    let app = spawn_app_with(env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let buyer = &fixtures::buyers(&app.db, &app.env.settings(), 1).await[0];
    let body = named(showtime.showtime_id, &showtime.sections[0].seat_ids[..2]);

    broker.cut();
    let accepted = app.book(buyer, "broker-cut", &body).await;
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.unwrap();
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    assert_eq!(bookings(&app.db).await, 1, "recorded in Postgres at once");
    let replay: Value = app
        .book(buyer, "broker-cut", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay["booking_id"], id.as_str());

    // The sweep publishes it (the workers reach the broker), though the API still cannot.
    let decided = app.booking_after(buyer, &id, "PENDING").await;
    assert_eq!(decided["status"], "RESERVED");
    broker.restore();
    let replay: Value = app
        .book(buyer, "broker-cut", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay["booking_id"], id.as_str());
    assert_eq!(
        bookings(&app.db).await,
        1,
        "one booking, however often asked"
    );
    let held: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM showtime_seats WHERE booking_id = $1::uuid AND status = 'RESERVED'",
    )
    .bind(&id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(held, 2);
}

#[tokio::test]
async fn with_redis_cut_idempotency_and_status_go_to_postgres() {
    let env = TestEnv::new().await;
    let (_workers, _) = spawn_workers_with(&env).await;
    let mut api_env = env.clone();
    let redis = api_env.route_through_proxy("REDIS_URL", 6379).await;
    let app = spawn_app_with(api_env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let buyer = &fixtures::buyers(&app.db, &app.env.settings(), 1).await[0];
    let body = named(showtime.showtime_id, &showtime.sections[0].seat_ids[..2]);

    redis.cut();
    let accepted = app.book(buyer, "redis-cut", &body).await;
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.unwrap();
    let id = accepted["booking_id"].as_str().unwrap().to_owned();
    let replay = app.book(buyer, "redis-cut", &body).await;
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let other = app
        .book(
            buyer,
            "redis-cut",
            &named(showtime.showtime_id, &showtime.sections[0].seat_ids[2..3]),
        )
        .await;
    assert_eq!(other.status(), 409);
    assert_eq!(error_code(other).await, "IDEMPOTENCY_KEY_REUSED");
    // Status reads come from Postgres meanwhile.
    let decided = app.booking_after(buyer, &id, "PENDING").await;
    assert_eq!(decided["status"], "RESERVED");

    // Redis back: the same key still names the same booking.
    redis.restore();
    let replay: Value = app
        .book(buyer, "redis-cut", &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(replay["booking_id"], id.as_str());
    assert_eq!(bookings(&app.db).await, 1);
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM showtime_seats WHERE status = 'RESERVED'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(held, 2, "its seats, held once");
}

#[tokio::test]
async fn an_accepted_booking_known_only_to_the_queue_is_pending_for_its_owner_not_404() {
    let env = TestEnv::new().await;
    let app = spawn_app_with(env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let buyers = fixtures::buyers(&app.db, &app.env.settings(), 2).await;
    let body = named(showtime.showtime_id, &showtime.sections[0].seat_ids[..1]);
    let accepted: Value = app
        .book(&buyers[0], "only-in-the-queue", &body)
        .await
        .json()
        .await
        .unwrap();
    let id = accepted["booking_id"].as_str().unwrap();

    // Redis loses its copy (a restart) and no worker has recorded the booking yet.
    let redis = RedisClient::new(&app.env.settings().redis).unwrap();
    let key = redis.key(&format!("booking:{id}"));
    let mut connection = redis.connection().await.unwrap();
    let _: () = redis::AsyncCommands::del(&mut connection, &[&key, &format!("{key}:version")])
        .await
        .unwrap();
    assert_eq!(bookings(&app.db).await, 0);

    let response = app.booking(&buyers[0].token, id).await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["id"], id);
    assert_eq!(view["status"], "PENDING");
    let stranger = app.booking(&buyers[1].token, id).await;
    assert_eq!(stranger.status(), 404);
    let made_up = app
        .get_as(
            &format!("/api/bookings/{}", Uuid::new_v4()),
            &buyers[0].token,
        )
        .await;
    assert_eq!(made_up.status(), 404);
}

/// Claims `key` for a named seat as an API does before it publishes, with its clock reading
/// `now`, and publishes nothing: what an API that died at that point leaves behind.
async fn claim_without_publishing(
    app: &crate::helpers::TestApp,
    buyer: &fixtures::Buyer,
    showtime: &fixtures::ShowtimeFixture,
    key: &str,
    seat: usize,
    now: chrono::DateTime<Utc>,
) -> (Uuid, Value) {
    let settings = app.env.settings();
    let ids = BookingIds::new(&settings.auth.jwt_secret);
    let redis = RedisClient::new(&settings.redis).unwrap();
    let seats = vec![showtime.sections[0].seat_ids[seat]];
    let request = BookingRequest {
        user_id: buyer.user_id,
        showtime_id: showtime.showtime_id,
        selection: SeatSelection::parse(Some(seats.clone()), None, None, 10).unwrap(),
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
    };
    let booking_id = ids.mint(buyer.user_id, key);
    let job = ReserveSeats {
        booking_id,
        scope: Some(ReservationScope {
            showtime_id: showtime.showtime_id,
            section_id: None,
        }),
        request: Some(NewBooking {
            user_id: buyer.user_id,
            showtime_id: showtime.showtime_id,
            selection: request.selection.clone(),
            idempotency_key: key.into(),
            fingerprint: request.fingerprint(),
            accepted_at: now,
        }),
    };
    let status = serde_json::to_string(&BookingView::accepted(booking_id, &request, now)).unwrap();
    let job_json = serde_json::to_string(&job).unwrap();
    let claimed = claims::claim(
        &redis,
        &claims::NewClaim {
            user_id: buyer.user_id,
            idempotency_key: key,
            fingerprint: &request.fingerprint(),
            booking_id,
            status_json: &status,
            status_ttl: std::time::Duration::from_secs(60),
            job_json: &job_json,
        },
    )
    .await
    .unwrap();
    assert_eq!(claimed, None);
    (booking_id, named(showtime.showtime_id, &seats))
}

/// An app and its workers whose sweep republishes every second what waited a second, with a
/// showtime on sale and one buyer.
async fn with_a_quick_republisher() -> (
    crate::helpers::TestApp,
    tokio_util::sync::CancellationToken,
    fixtures::ShowtimeFixture,
    fixtures::Buyer,
) {
    let mut env = TestEnv::new().await;
    env.set("HOLD_SWEEP_SCHEDULE", "*/1 * * * * *")
        .set("REPUBLISH_PENDING_AFTER", "1s");
    let (workers, _) = spawn_workers_with(&env).await;
    let app = spawn_app_with(env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let buyer = fixtures::buyers(&app.db, &app.env.settings(), 1)
        .await
        .remove(0);
    (app, workers, showtime, buyer)
}

/// An API that claimed a key and died before publishing: the client got no answer. Whether the
/// client retries or not, the booking is decided.
#[tokio::test]
async fn a_booking_whose_api_died_before_the_publish_is_published_all_the_same() {
    let (app, _workers, showtime, buyer) = with_a_quick_republisher().await;
    let buyer = &buyer;

    // What the dead API left behind for two requests: claims, PENDING copies and kept jobs,
    // and nothing published.
    let mut left = Vec::new();
    for (key, seat) in [("died-1", 0), ("died-2", 1)] {
        left.push(claim_without_publishing(&app, buyer, &showtime, key, seat, Utc::now()).await);
    }

    // The first client retries: the replay publishes its job.
    let (retried, body) = &left[0];
    let replay: Value = app.book(buyer, "died-1", body).await.json().await.unwrap();
    assert_eq!(replay["booking_id"], retried.to_string());
    // The second never comes back: the republisher publishes the job kept with its claim.
    for (booking_id, _) in &left {
        let decided = app
            .booking_after(buyer, &booking_id.to_string(), "PENDING")
            .await;
        assert_eq!(decided["status"], "RESERVED", "{booking_id}");
    }
    assert_eq!(bookings(&app.db).await, 2);
}

/// A job the broker confirmed and then lost (a broker that lost its disk, a dead letter, a
/// partition nobody consumes) is kept with its claim until a worker records the booking: once
/// the queues have run dry, the republisher publishes it again.
#[tokio::test]
async fn a_booking_whose_confirmed_job_was_lost_is_published_again() {
    let (app, _workers, showtime, buyer) = with_a_quick_republisher().await;
    let buyer = &buyer;
    let (booking_id, _) =
        claim_without_publishing(&app, buyer, &showtime, "lost", 0, Utc::now()).await;
    // The broker confirmed it, then lost it: the API moved on.
    let redis = RedisClient::new(&app.env.settings().redis).unwrap();
    claims::published(&redis, booking_id).await;

    let decided = app
        .booking_after(buyer, &booking_id.to_string(), "PENDING")
        .await;
    assert_eq!(decided["status"], "RESERVED");
    assert_eq!(bookings(&app.db).await, 1);
}

/// The PENDING copy is stamped by the API's clock, every later status by the database's: an
/// API whose clock runs an hour ahead must not hide the worker's decision behind its PENDING.
#[tokio::test]
async fn an_api_clock_running_ahead_never_hides_the_decision() {
    let env = TestEnv::new().await;
    let (_workers, _) = spawn_workers_with(&env).await;
    let app = spawn_app_with(env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let buyer = &fixtures::buyers(&app.db, &app.env.settings(), 1).await[0];
    let ahead = Utc::now() + chrono::Duration::hours(1);
    let (booking_id, body) =
        claim_without_publishing(&app, buyer, &showtime, "fast-clock", 0, ahead).await;

    // The client retries (its first answer was lost): the replay publishes the job.
    let replay = app.book(buyer, "fast-clock", &body).await;
    assert_eq!(replay.status(), 202);
    let decided = app
        .booking_after(buyer, &booking_id.to_string(), "PENDING")
        .await;
    assert_eq!(decided["status"], "RESERVED");
    // And a plain read, from Redis's copy and the process's recent statuses, says the same.
    let read: Value = app
        .booking(&buyer.token, booking_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read["status"], "RESERVED");
}

/// In the steady state the API asks Postgres nothing to accept a booking: with its database
/// cut, a signed-in buyer's booking is still accepted, decided by the worker, and followed
/// through to its decision.
#[tokio::test]
async fn the_accept_path_asks_postgres_nothing() {
    let env = TestEnv::new().await;
    let (_workers, _) = spawn_workers_with(&env).await;
    let mut api_env = env.clone();
    let database = api_env.route_through_proxy("DATABASE_URL", 5432).await;
    let app = spawn_app_with(api_env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let buyer = &fixtures::buyers(&app.db, &app.env.settings(), 1).await[0];
    // The first booking reads the showtime into the API's process.
    let first = app
        .book_and_wait(
            buyer,
            &named(showtime.showtime_id, &showtime.sections[0].seat_ids[..1]),
        )
        .await;
    assert_eq!(first["status"], "RESERVED");

    database.cut();
    let accepted = app
        .book(
            buyer,
            "while-postgres-is-away",
            &named(showtime.showtime_id, &showtime.sections[0].seat_ids[1..2]),
        )
        .await;
    assert_eq!(accepted.status(), 202);
    let accepted: Value = accepted.json().await.unwrap();
    let decided = app
        .booking_after(buyer, accepted["booking_id"].as_str().unwrap(), "PENDING")
        .await;
    assert_eq!(decided["status"], "RESERVED");
    database.restore();
}
