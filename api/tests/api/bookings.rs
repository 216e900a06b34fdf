//! The booking flow over HTTP with an in-process worker: booking, idempotency, rejections,
//! cancellation, expiry, long-poll, server-sent events, history and bad input.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use test_support::{
    TestEnv, eventually,
    fixtures::{self, Buyer, ShowtimeFixture},
};
use uuid::Uuid;

use crate::helpers::{
    TestApp, error_code, key, seat_state, spawn_app, spawn_app_with, spawn_workers,
};

fn named(showtime: &ShowtimeFixture, seats: &[Uuid]) -> Value {
    json!({"showtime_id": showtime.showtime_id, "seat_ids": seats})
}

async fn setup(layout: &[(i32, i32)], buyers: usize) -> (TestApp, ShowtimeFixture, Vec<Buyer>) {
    let app = spawn_app().await;
    let showtime = fixtures::showtime_on_sale(&app.db, layout).await;
    let buyers = fixtures::buyers(&app.db, &app.env.settings(), buyers).await;
    (app, showtime, buyers)
}

#[tokio::test]
async fn a_booking_goes_from_pending_to_reserved_through_the_worker() {
    let (app, showtime, buyers) = setup(&[(2, 5)], 1).await;
    let _workers = spawn_workers(&app).await;
    let seats = &showtime.sections[0].seat_ids[..2];

    let before = app.availability(showtime.showtime_id).await;
    assert_eq!(before.headers()["x-cache"], "miss");
    let again = app.availability(showtime.showtime_id).await;
    assert_eq!(again.headers()["x-cache"], "hit-process");

    let response = app.book(&buyers[0], &key(), &named(&showtime, seats)).await;
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["status"], "PENDING");
    assert_eq!(accepted["status_url"], location.as_str());
    let id = accepted["booking_id"].as_str().unwrap();

    let booking = app.booking_after(&buyers[0], id, "PENDING").await;
    assert_eq!(booking["status"], "RESERVED");
    assert_eq!(booking["seats"].as_array().unwrap().len(), 2);
    assert_eq!(booking["total_paise"], 100_000);
    assert!(booking["hold_expires_at"].as_str().is_some());

    // The reservation dropped the Redis copy; this process's copy lapses within a second.
    let after = app
        .availability_showing(showtime.showtime_id, seats[0], "HELD")
        .await;
    assert_eq!(after["sections"][0]["held"], 2);
    assert_eq!(after["sections"][0]["available"], 8);
}

#[tokio::test]
async fn best_available_prefers_adjacent_seats_in_the_best_row() {
    let (app, showtime, buyers) = setup(&[(3, 4)], 2).await;
    let _workers = spawn_workers(&app).await;
    let section = &showtime.sections[0];
    // Row A has only two seats left apart from each other.
    let first = app
        .book(
            &buyers[0],
            &key(),
            &named(&showtime, &[section.seat_ids[1], section.seat_ids[2]]),
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    app.booking_after(&buyers[0], first["booking_id"].as_str().unwrap(), "PENDING")
        .await;

    let body = json!({"showtime_id": showtime.showtime_id, "section_id": section.section_id, "quantity": 2});
    let booking = app.book_and_wait(&buyers[1], &body).await;

    assert_eq!(booking["status"], "RESERVED");
    let seats = booking["seats"].as_array().unwrap();
    assert!(seats.iter().all(|seat| seat["row"] == "B"), "{seats:?}");
    assert_eq!(seats[0]["number"], 1);
    assert_eq!(seats[1]["number"], 2);
}

#[tokio::test]
async fn the_same_key_and_body_give_the_same_booking_and_another_body_a_conflict() {
    let (app, showtime, buyers) = setup(&[(1, 6)], 1).await;
    let key = key();
    let body = named(&showtime, &showtime.sections[0].seat_ids[..1]);

    let first: Value = app
        .book(&buyers[0], &key, &body)
        .await
        .json()
        .await
        .unwrap();
    let replay = app.book(&buyers[0], &key, &body).await;
    assert_eq!(replay.status(), 202);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay: Value = replay.json().await.unwrap();
    assert_eq!(replay["booking_id"], first["booking_id"]);

    let other = named(&showtime, &showtime.sections[0].seat_ids[1..2]);
    let conflict = app.book(&buyers[0], &key, &other).await;
    assert_eq!(conflict.status(), 409);
    assert_eq!(error_code(conflict).await, "IDEMPOTENCY_KEY_REUSED");
}

#[tokio::test]
async fn a_retry_gets_its_booking_even_once_the_cap_is_reached_or_the_sale_is_over() {
    let (app, showtime, buyers) = setup(&[(1, 6)], 1).await;
    let _workers = spawn_workers(&app).await;
    sqlx::query("UPDATE showtimes SET max_seats_per_user = 2 WHERE id = $1")
        .bind(showtime.showtime_id)
        .execute(&app.db)
        .await
        .unwrap();
    let key = key();
    let body = named(&showtime, &showtime.sections[0].seat_ids[..2]);
    let first: Value = app
        .book(&buyers[0], &key, &body)
        .await
        .json()
        .await
        .unwrap();
    let held = app
        .booking_after(&buyers[0], first["booking_id"].as_str().unwrap(), "PENDING")
        .await;
    assert_eq!(held["status"], "RESERVED");

    // The booking itself now fills the buyer's cap: its retry is still its own answer.
    let retry = app.book(&buyers[0], &key, &body).await;
    assert_eq!(retry.status(), 202);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    let retry: Value = retry.json().await.unwrap();
    assert_eq!(retry["booking_id"], first["booking_id"]);

    // So is a retry after the sale closed (as an editor's change announces it).
    sqlx::query("UPDATE showtimes SET sale_ends_at = now() - interval '1 second' WHERE id = $1")
        .bind(showtime.showtime_id)
        .execute(&app.db)
        .await
        .unwrap();
    app.catalogue_changed(showtime.showtime_id).await;
    eventually!(app.book(&buyers[0], &self::key(), &body).await.status() == 409);
    let late = app.book(&buyers[0], &key, &body).await;
    assert_eq!(late.status(), 202);
    let late: Value = late.json().await.unwrap();
    assert_eq!(late["booking_id"], first["booking_id"]);
    assert_eq!(late["status"], "RESERVED");
    // A new key is checked as ever.
    let other = app.book(&buyers[0], &self::key(), &body).await;
    assert_eq!(other.status(), 409);
    assert_eq!(error_code(other).await, "NOT_ON_SALE");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_key_make_one_booking() {
    let (app, showtime, buyers) = setup(&[(1, 6)], 1).await;
    let _workers = spawn_workers(&app).await;
    let key = key();
    let body = named(&showtime, &showtime.sections[0].seat_ids[..2]);

    let requests = (0..20).map(|_| app.book(&buyers[0], &key, &body));
    let responses = futures::future::join_all(requests).await;

    let mut ids = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 202);
        ids.push(response.json::<Value>().await.unwrap()["booking_id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "every answer names the same booking");
    let decided = app
        .booking_after(&buyers[0], ids[0].as_str().unwrap(), "PENDING")
        .await;
    assert_eq!(decided["status"], "RESERVED");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn rejections_carry_their_reason() {
    let (app, showtime, buyers) = setup(&[(1, 3), (1, 2)], 4).await;
    let _workers = spawn_workers(&app).await;
    let front = &showtime.sections[0];
    let back = &showtime.sections[1];
    app.book_and_wait(&buyers[0], &named(&showtime, &front.seat_ids[..1]))
        .await;

    let taken = app
        .book_and_wait(&buyers[1], &named(&showtime, &front.seat_ids[..2]))
        .await;
    assert_eq!(taken["status"], "REJECTED");
    assert_eq!(taken["reject_reason"], "SEAT_TAKEN");
    assert!(taken["seats"].as_array().unwrap().is_empty());

    let too_many =
        json!({"showtime_id": showtime.showtime_id, "section_id": back.section_id, "quantity": 3});
    let sold_out = app.book_and_wait(&buyers[2], &too_many).await;
    assert_eq!(sold_out["reject_reason"], "SOLD_OUT");

    sqlx::query("UPDATE showtimes SET max_seats_per_user = 1")
        .execute(&app.db)
        .await
        .unwrap();
    // The cap is the worker's to decide, under its lock: the request is accepted, then
    // turned away.
    let over_limit = app
        .book_and_wait(&buyers[0], &named(&showtime, &back.seat_ids[..1]))
        .await;
    assert_eq!(over_limit["status"], "REJECTED");
    assert_eq!(over_limit["reject_reason"], "LIMIT_REACHED");
}

#[tokio::test]
async fn a_cancelled_hold_frees_its_seats_at_once() {
    let (app, showtime, buyers) = setup(&[(1, 4)], 2).await;
    let _workers = spawn_workers(&app).await;
    let seats = &showtime.sections[0].seat_ids[..2];
    let accepted: Value = app
        .book(&buyers[0], &key(), &named(&showtime, seats))
        .await
        .json()
        .await
        .unwrap();
    let id = accepted["booking_id"].as_str().unwrap();
    app.booking_after(&buyers[0], id, "PENDING").await;

    let by_stranger = app.cancel_booking(&buyers[1].token, id).await;
    assert_eq!(by_stranger.status(), 404);

    let canceled = app.cancel_booking(&buyers[0].token, id).await;
    assert_eq!(canceled.status(), 200);
    let canceled: Value = canceled.json().await.unwrap();
    assert_eq!(canceled["status"], "CANCELED");
    let availability: Value = app
        .availability(showtime.showtime_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seat_state(&availability, seats[0]), "AVAILABLE");

    let again = app.cancel_booking(&buyers[0].token, id).await;
    assert_eq!(again.status(), 409);
    assert_eq!(error_code(again).await, "NOT_CANCELABLE");

    // Someone else can have them now.
    let next = app
        .book_and_wait(&buyers[1], &named(&showtime, seats))
        .await;
    assert_eq!(next["status"], "RESERVED");
}

#[tokio::test]
async fn an_expired_hold_frees_the_seats_for_the_next_buyer() {
    let mut env = TestEnv::new().await;
    let stand_in = env.start_stand_in().await;
    env.set("HOLD_DURATION", "1s")
        .set("HOLD_SWEEP_SCHEDULE", "0 0 0 1 1 *");
    let mut app = spawn_app_with(env).await;
    app.stand_in = stand_in;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 3)]).await;
    let buyers = fixtures::buyers(&app.db, &app.env.settings(), 2).await;
    let _workers = spawn_workers(&app).await;
    let seats = &showtime.sections[0].seat_ids[..2];

    let first: Value = app
        .book(&buyers[0], &key(), &named(&showtime, seats))
        .await
        .json()
        .await
        .unwrap();
    let first_id = first["booking_id"].as_str().unwrap().to_owned();
    app.booking_after(&buyers[0], &first_id, "PENDING").await;
    let held: Value = app
        .availability(showtime.showtime_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(seat_state(&held, seats[0]), "HELD");

    // The sweep never runs in this test: the lapsed hold is free by itself. (The cached
    // availability may say HELD for up to AVAILABILITY_CACHE_TTL, so ask Postgres.)
    let lapsing: Uuid = first_id.parse().unwrap();
    eventually!(
        "the hold lapses",
        sqlx::query_scalar::<_, bool>(
            "SELECT hold_expires_at <= now() FROM bookings WHERE id = $1"
        )
        .bind(lapsing)
        .fetch_one(&app.db)
        .await
        .unwrap()
    );
    let map = shared::bookings::availability::seat_map(&app.db, showtime.showtime_id)
        .await
        .unwrap()
        .unwrap();
    let fresh = shared::bookings::availability::compute(&app.db, showtime.showtime_id)
        .await
        .unwrap()
        .unwrap()
        .spell_out(&map);
    assert!(
        fresh
            .seats
            .iter()
            .filter(|s| seats.contains(&s.seat_id))
            .all(|s| { s.state == shared::bookings::availability::SeatState::Available })
    );

    let second = app
        .book_and_wait(&buyers[1], &named(&showtime, seats))
        .await;
    assert_eq!(second["status"], "RESERVED");
    let first = app.booking_after(&buyers[0], &first_id, "RESERVED").await;
    assert_eq!(
        first["status"], "EXPIRED",
        "expired in the same transaction"
    );
    let holders: Vec<Option<Uuid>> =
        sqlx::query_scalar("SELECT booking_id FROM showtime_seats WHERE seat_id = ANY($1)")
            .bind(seats)
            .fetch_all(&app.db)
            .await
            .unwrap();
    let second_id: Uuid = second["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(holders, vec![Some(second_id); 2]);
}

#[tokio::test]
async fn the_sweep_expires_lapsed_holds_and_long_polls_see_it() {
    let mut env = TestEnv::new().await;
    env.set("HOLD_DURATION", "1s")
        .set("HOLD_SWEEP_SCHEDULE", "* * * * * *");
    let app = spawn_app_with(env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 3)]).await;
    let buyers = fixtures::buyers(&app.db, &app.env.settings(), 1).await;
    let _workers = spawn_workers(&app).await;
    let accepted: Value = app
        .book(
            &buyers[0],
            &key(),
            &named(&showtime, &showtime.sections[0].seat_ids[..1]),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = accepted["booking_id"].as_str().unwrap();
    let reserved = app.booking_after(&buyers[0], id, "PENDING").await;
    assert_eq!(reserved["status"], "RESERVED");

    let expired = app.booking_after(&buyers[0], id, "RESERVED").await;

    assert_eq!(expired["status"], "EXPIRED");
    let seat_status: String =
        sqlx::query_scalar("SELECT status::text FROM showtime_seats WHERE seat_id = $1")
            .bind(showtime.sections[0].seat_ids[0])
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(seat_status, "AVAILABLE");
}

#[tokio::test]
async fn server_sent_events_push_each_status_change() {
    let (app, showtime, buyers) = setup(&[(1, 3)], 1).await;
    let accepted: Value = app
        .book(
            &buyers[0],
            &key(),
            &named(&showtime, &showtime.sections[0].seat_ids[..1]),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = accepted["booking_id"].as_str().unwrap();
    let response = app.booking_events(&buyers[0].token, id).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut statuses = Vec::new();
    let mut workers = None;
    while statuses.len() < 2 {
        let chunk = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("an event arrives")
            .expect("the stream stays open")
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            if let Some(data) = event.lines().find_map(|line| line.strip_prefix("data:")) {
                let view: Value = serde_json::from_str(data.trim()).unwrap();
                statuses.push(view["status"].as_str().unwrap().to_owned());
            }
        }
        // Start the workers only once the stream has shown the booking waiting.
        if statuses.len() == 1 && workers.is_none() {
            workers = Some(spawn_workers(&app).await);
        }
    }
    assert_eq!(statuses, ["PENDING", "RESERVED"]);
}

#[tokio::test]
async fn bad_booking_requests_are_refused_and_write_nothing() {
    let (app, showtime, buyers) = setup(&[(1, 3)], 2).await;
    let other = fixtures::showtime_on_sale(&app.db, &[(1, 2)]).await;
    let seat = showtime.sections[0].seat_ids[0];
    let section = showtime.sections[0].section_id;
    let cases = [
        (named(&showtime, &[Uuid::new_v4()]), 422, "UNKNOWN_SEATS"),
        (
            named(&showtime, &[other.sections[0].seat_ids[0]]),
            422,
            "UNKNOWN_SEATS",
        ),
        (named(&showtime, &[seat, seat]), 422, "VALIDATION_FAILED"),
        (named(&showtime, &[]), 422, "VALIDATION_FAILED"),
        (
            json!({"showtime_id": showtime.showtime_id, "section_id": section, "quantity": 0}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"showtime_id": showtime.showtime_id, "section_id": section, "quantity": 10_000}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"showtime_id": showtime.showtime_id, "section_id": other.sections[0].section_id, "quantity": 1}),
            422,
            "UNKNOWN_SECTION",
        ),
        (
            json!({"showtime_id": showtime.showtime_id}),
            422,
            "VALIDATION_FAILED",
        ),
        (
            json!({"showtime_id": Uuid::new_v4(), "seat_ids": [seat]}),
            404,
            "NOT_FOUND",
        ),
        (
            json!({"showtime_id": "not-a-uuid", "seat_ids": [seat]}),
            422,
            "INVALID_BODY",
        ),
    ];
    for (body, status, code) in cases {
        let response = app.book(&buyers[0], &key(), &body).await;
        assert_eq!(response.status(), status, "{body}");
        assert_eq!(error_code(response).await, code, "{body}");
    }

    let malformed = app
        .client
        .post(app.url("/api/bookings"))
        .bearer_auth(&buyers[0].token)
        .header("idempotency-key", key())
        .header("content-type", "application/json")
        .body("{\"showtime_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(error_code(malformed).await, "INVALID_JSON");

    let no_key = app
        .client
        .post(app.url("/api/bookings"))
        .bearer_auth(&buyers[0].token)
        .json(&named(&showtime, &[seat]))
        .send()
        .await
        .unwrap();
    assert_eq!(no_key.status(), 400);
    assert_eq!(error_code(no_key).await, "MISSING_IDEMPOTENCY_KEY");

    let anonymous = app
        .client
        .post(app.url("/api/bookings"))
        .json(&named(&showtime, &[seat]))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    sqlx::query("UPDATE showtimes SET status = 'CANCELED' WHERE id = $1")
        .bind(other.showtime_id)
        .execute(&app.db)
        .await
        .unwrap();
    let canceled = app
        .book(
            &buyers[0],
            &key(),
            &named(&other, &other.sections[0].seat_ids[..1]),
        )
        .await;
    assert_eq!(canceled.status(), 409);
    assert_eq!(error_code(canceled).await, "NOT_ON_SALE");

    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM bookings")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(rows, 0, "no refused request left a booking behind");

    // Someone else's booking is not found, whatever its state.
    let mine: Value = app
        .book(&buyers[0], &key(), &named(&showtime, &[seat]))
        .await
        .json()
        .await
        .unwrap();
    let id = mine["booking_id"].as_str().unwrap();
    for path in [
        format!("/api/bookings/{id}"),
        format!("/api/bookings/{id}/tickets"),
    ] {
        let response = app.get_as(&path, &buyers[1].token).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, "NOT_FOUND");
    }
    let wait_too_long = app
        .get_as(&format!("/api/bookings/{id}?wait=31"), &buyers[0].token)
        .await;
    assert_eq!(wait_too_long.status(), 422);
}

#[tokio::test]
async fn the_history_lists_newest_first_by_page_and_status() {
    let (app, showtime, buyers) = setup(&[(1, 6)], 1).await;
    let _workers = spawn_workers(&app).await;
    sqlx::query("UPDATE showtimes SET max_seats_per_user = 1")
        .execute(&app.db)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for seat in &showtime.sections[0].seat_ids[..5] {
        // The first is held; the others are over the cap of one and turned away.
        let decided = app
            .book_and_wait(&buyers[0], &named(&showtime, &[*seat]))
            .await;
        ids.push(decided["id"].as_str().unwrap().to_owned());
    }
    ids.reverse();

    let first: Value = app
        .my_bookings(&buyers[0].token, "limit=2")
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = first["bookings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids[..2]);
    let next = first["next_before"].as_str().unwrap();
    let second: Value = app
        .get_as(
            &format!("/api/users/me/bookings?limit=2&before={next}"),
            &buyers[0].token,
        )
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> = second["bookings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids[2..4]);

    let reserved: Value = app
        .my_bookings(&buyers[0].token, "status=RESERVED")
        .await
        .json()
        .await
        .unwrap();
    let reserved: Vec<&str> = reserved["bookings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(reserved, [ids[4].as_str()]);
    assert_eq!(
        app.my_bookings(&buyers[0].token, "limit=1000")
            .await
            .status(),
        422
    );
    let tickets = app.tickets(&buyers[0].token, &ids[0]).await;
    assert_eq!(tickets.status(), 409);
    assert_eq!(error_code(tickets).await, "NOT_CONFIRMED");
}

/// Once a section (or the whole showtime) has no free seat, the worker turns requests away
/// without reading seats, but never past the moment a hold lapses: that seat is free at once.
#[tokio::test]
async fn a_sold_out_section_sells_again_the_moment_a_hold_lapses() {
    let mut env = TestEnv::new().await;
    env.set("HOLD_DURATION", "3s");
    let app = spawn_app_with(env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 2)]).await;
    let buyers = fixtures::buyers(&app.db, &app.env.settings(), 3).await;
    let _workers = spawn_workers(&app).await;
    let one = json!({"showtime_id": showtime.showtime_id,
                     "section_id": showtime.sections[0].section_id, "quantity": 1});
    let first = app.book_and_wait(&buyers[0], &one).await;
    let second = app.book_and_wait(&buyers[1], &one).await;
    assert_eq!(first["status"], "RESERVED");
    assert_eq!(second["status"], "RESERVED");
    let first_seat = first["seats"][0]["seat_id"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    let by_name = named(&showtime, &[first_seat]);
    for _ in 0..3 {
        let turned_away = app.book_and_wait(&buyers[2], &one).await;
        assert_eq!(turned_away["reject_reason"], "SOLD_OUT");
        let turned_away = app.book_and_wait(&buyers[2], &by_name).await;
        assert_eq!(turned_away["reject_reason"], "SEAT_TAKEN");
    }

    let lapsed = |booking: Value| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, bool>(
                "SELECT hold_expires_at <= now() FROM bookings WHERE id = $1::uuid",
            )
            .bind(booking["id"].as_str().unwrap())
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    eventually!(lapsed(first.clone()).await);
    let by_name = app.book_and_wait(&buyers[2], &by_name).await;
    assert_eq!(
        by_name["status"], "RESERVED",
        "at the first request after the lapse"
    );
    eventually!(lapsed(second.clone()).await);
    let best_available = app.book_and_wait(&buyers[2], &one).await;
    assert_eq!(
        best_available["status"], "RESERVED",
        "the other lapsed hold"
    );
}

/// A cancelled hold's seat sells again within the sold-out recheck (a second).
#[tokio::test]
async fn a_sold_out_section_sells_again_soon_after_a_cancellation() {
    let (app, showtime, buyers) = setup(&[(1, 1)], 2).await;
    let _workers = spawn_workers(&app).await;
    let one = json!({"showtime_id": showtime.showtime_id,
                     "section_id": showtime.sections[0].section_id, "quantity": 1});
    let held = app.book_and_wait(&buyers[0], &one).await;
    assert_eq!(held["status"], "RESERVED");
    let turned_away = app.book_and_wait(&buyers[1], &one).await;
    assert_eq!(turned_away["reject_reason"], "SOLD_OUT");
    let cancelled = app
        .cancel_booking(&buyers[0].token, held["id"].as_str().unwrap())
        .await;
    assert_eq!(cancelled.status(), 200);
    eventually!(app.book_and_wait(&buyers[1], &one).await["status"] == "RESERVED");
}

/// The compact availability says what the full one says, seat by seat, in a fraction of the
/// bytes.
#[tokio::test]
async fn the_compact_availability_says_what_the_full_one_says() {
    let (app, showtime, buyers) = setup(&[(2, 10), (1, 7)], 2).await;
    let _workers = spawn_workers(&app).await;
    let held = app
        .book_and_wait(
            &buyers[0],
            &named(&showtime, &showtime.sections[0].seat_ids[3..6]),
        )
        .await;
    assert_eq!(held["status"], "RESERVED");
    let other = app
        .book_and_wait(
            &buyers[1],
            &named(&showtime, &showtime.sections[1].seat_ids[..1]),
        )
        .await;
    assert_eq!(other["status"], "RESERVED");
    sqlx::query("UPDATE showtime_seats SET status = 'SOLD', hold_expires_at = NULL WHERE booking_id = $1::uuid")
        .bind(other["id"].as_str().unwrap())
        .execute(&app.db)
        .await
        .unwrap();
    app.availability_showing(
        showtime.showtime_id,
        showtime.sections[1].seat_ids[0],
        "SOLD",
    )
    .await;

    let full: Value = app
        .availability(showtime.showtime_id)
        .await
        .json()
        .await
        .unwrap();
    let compact = app
        .get(&format!(
            "/api/showtimes/{}/availability/compact",
            showtime.showtime_id
        ))
        .await;
    assert_eq!(compact.status(), 200);
    let compact: Value = compact.json().await.unwrap();
    let map: Value = app
        .get(compact["seat_map"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let bits = |name: &str| {
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            compact[name].as_str().unwrap(),
        )
        .unwrap()
    };
    let (held_bits, sold_bits) = (bits("held"), bits("sold"));
    let set = |bits: &[u8], i: usize| bits[i / 8] & (0x80 >> (i % 8)) != 0;
    let seats = map["seats"].as_array().unwrap();
    assert_eq!(compact["seats"], seats.len());
    assert_eq!(compact["sections"], full["sections"]);
    for (i, seat) in seats.iter().enumerate() {
        let state = if set(&sold_bits, i) {
            "SOLD"
        } else if set(&held_bits, i) {
            "HELD"
        } else {
            "AVAILABLE"
        };
        let id: Uuid = seat["seat_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(state, seat_state(&full, id), "seat {i}");
    }
    assert_eq!(held_bits.iter().map(|b| b.count_ones()).sum::<u32>(), 3);
    assert_eq!(sold_bits.iter().map(|b| b.count_ones()).sum::<u32>(), 1);
}

#[tokio::test]
async fn a_seat_section_shows_its_price_and_each_seat_as_the_showtime_sells_it() {
    let (app, showtime, buyers) = setup(&[(2, 3), (1, 4)], 1).await;
    let _workers = spawn_workers(&app).await;
    let front = &showtime.sections[0];
    let back = &showtime.sections[1];
    let held = app
        .book_and_wait(&buyers[0], &named(&showtime, &front.seat_ids[..1]))
        .await;
    assert_eq!(held["status"], "RESERVED");

    let section: Value = eventually!("the hold shows in its section", {
        let section: Value = app
            .seat_section(front.section_id, showtime.showtime_id)
            .await
            .json()
            .await
            .unwrap();
        (section["section"]["held"] == 1).then_some(section)
    });
    assert_eq!(
        section["section"]["section_id"],
        front.section_id.to_string()
    );
    assert_eq!(section["section"]["price_paise"], 50_000);
    assert_eq!(section["section"]["total"], 6);
    let seats = section["seats"].as_array().unwrap();
    assert_eq!(seats.len(), 6, "only this section's seats");
    let states: Vec<&str> = seats.iter().map(|s| s["state"].as_str().unwrap()).collect();
    assert_eq!(states.iter().filter(|s| **s == "HELD").count(), 1);
    let held_seat = seats.iter().find(|s| s["state"] == "HELD").unwrap();
    assert_eq!(held_seat["seat_id"], front.seat_ids[0].to_string());

    let other: Value = app
        .seat_section(back.section_id, showtime.showtime_id)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["section"]["price_paise"], 60_000);
    assert_eq!(other["seats"].as_array().unwrap().len(), 4);
    assert!(
        other["seats"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "AVAILABLE" && s["section_id"] == back.section_id.to_string())
    );

    // A section the showtime does not sell, a showtime that does not exist, no showtime.
    let elsewhere = fixtures::showtime_on_sale(&app.db, &[(1, 1)]).await;
    let response = app
        .seat_section(elsewhere.sections[0].section_id, showtime.showtime_id)
        .await;
    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "NOT_FOUND");
    let response = app.seat_section(front.section_id, Uuid::new_v4()).await;
    assert_eq!(response.status(), 404);
    let response = app
        .get(&format!("/api/seat-sections/{}", front.section_id))
        .await;
    assert_eq!(response.status(), 400, "showtime_id is required");
}
