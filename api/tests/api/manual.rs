//! Bookings an admin makes and changes for users: outside the sale window and past the cap,
//! comps, moved seats, cancellation without refund, and no oversell against racing buyers.

use futures::future::join_all;
use serde_json::{Value, json};
use uuid::Uuid;

use test_support::eventually;

use crate::{
    helpers::{access, error_code},
    payments::Shop,
};

async fn valid_tickets_on(shop: &Shop, booking: &str) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT seat_id FROM tickets WHERE booking_id = $1::uuid AND voided_at IS NULL ORDER BY seat_id")
        .bind(booking)
        .fetch_all(&shop.app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_admin_books_comps_past_the_cap_and_outside_the_sale_moves_and_cancels_them() {
    let shop = Shop::open().await;
    let admin = shop.admin().await;
    let editor = access(&shop.app.signed_up_as("EDITOR").await).to_owned();
    let showtime = shop.showtime.showtime_id;
    let patched = shop
        .app
        .update_showtime(&editor, showtime, &json!({"max_seats_per_user": 1}))
        .await;
    assert_eq!(patched.status(), 200);
    let seats = shop.seats(0..6);
    let user = shop.buyers[0].user_id;

    let response = shop
        .app
        .admin_book(
            &admin,
            &json!({"user_id": user, "showtime_id": showtime,
        "seat_ids": &seats[0..3], "comp": true, "reason": "artist's guests"}),
        )
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    let comp = accepted["booking_id"].as_str().unwrap().to_owned();
    let view = shop.booking_after(0, &comp, "PENDING").await;
    assert_eq!(view["status"], "CONFIRMED", "{view}");
    assert_eq!(view["total_paise"], 0);
    assert_eq!(
        valid_tickets_on(&shop, &comp).await.len(),
        3,
        "three seats past a cap of one"
    );

    // The sale closes: buyers are turned away, an admin still books.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let patched = shop
        .app
        .update_showtime(&editor, showtime, &json!({"sale_starts_at": later}))
        .await;
    assert_eq!(patched.status(), 200);
    let refused = shop
        .app
        .book(
            &shop.buyers[1],
            "closed-sale",
            &json!({"showtime_id": showtime, "seat_ids": [seats[3]]}),
        )
        .await;
    assert_eq!(error_code(refused).await, "NOT_ON_SALE");
    let response = shop
        .app
        .admin_book(
            &admin,
            &json!({"user_id": shop.buyers[1].user_id, "showtime_id": showtime,
        "seat_ids": [seats[3]], "reason": "box office"}),
        )
        .await;
    let held: Value = response.json().await.unwrap();
    let held = held["booking_id"].as_str().unwrap().to_owned();
    let view = shop.booking_after(1, &held, "PENDING").await;
    assert_eq!(view["status"], "RESERVED");
    assert_eq!(
        view["total_paise"], 50_000,
        "not a comp: priced, to be paid"
    );

    // A seat someone holds cannot be taken, by a manual booking or by a move.
    let response = shop
        .app
        .admin_book(
            &admin,
            &json!({"user_id": user, "showtime_id": showtime,
        "seat_ids": [seats[3]], "reason": "double"}),
        )
        .await;
    let taken: Value = response.json().await.unwrap();
    let taken = shop
        .booking_after(0, taken["booking_id"].as_str().unwrap(), "PENDING")
        .await;
    assert_eq!(
        (taken["status"].as_str(), taken["reject_reason"].as_str()),
        (Some("REJECTED"), Some("SEAT_TAKEN"))
    );
    let response = shop
        .app
        .move_seats(
            &admin,
            &comp,
            &json!({"seat_ids": [seats[0], seats[1], seats[3]], "reason": "x"}),
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "SEAT_TAKEN");
    let response = shop
        .app
        .move_seats(
            &admin,
            &comp,
            &json!({"seat_ids": [seats[4]], "reason": "x"}),
        )
        .await;
    assert_eq!(response.status(), 422, "as many seats as the booking has");

    let response = shop
        .app
        .move_seats(
            &admin,
            &comp,
            &json!({"seat_ids": [seats[0], seats[4], seats[5]], "reason": "sightline"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let mut moved = vec![seats[0], seats[4], seats[5]];
    moved.sort();
    assert_eq!(
        valid_tickets_on(&shop, &comp).await,
        moved,
        "tickets follow the seats"
    );
    let freed: Vec<String> = sqlx::query_scalar(
        "SELECT status::text FROM showtime_seats WHERE seat_id = ANY($1) ORDER BY seat_id",
    )
    .bind(&seats[1..3])
    .fetch_all(&shop.app.db)
    .await
    .unwrap();
    assert_eq!(freed, ["AVAILABLE", "AVAILABLE"]);

    let response = shop
        .app
        .admin_cancel(
            &admin,
            &comp,
            &json!({"refund": false, "reason": "no-show"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let canceled: Value = response.json().await.unwrap();
    assert_eq!(canceled["status"], "CANCELED");
    assert!(valid_tickets_on(&shop, &comp).await.is_empty());
    let sold: i64 = sqlx::query_scalar("SELECT count(*) FROM showtime_seats WHERE status = 'SOLD'")
        .fetch_one(&shop.app.db)
        .await
        .unwrap();
    assert_eq!(sold, 0);

    let actions: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'booking.%' ORDER BY id",
    )
    .fetch_all(&shop.app.db)
    .await
    .unwrap();
    assert_eq!(
        actions,
        [
            "booking.manual_created",
            "booking.manual_created",
            "booking.manual_created",
            "booking.seats_moved",
            "booking.canceled_without_refund"
        ]
    );
    for body in [
        json!({"user_id": Uuid::new_v4(), "showtime_id": showtime, "seat_ids": [seats[1]], "reason": "x"}),
        json!({"user_id": user, "showtime_id": showtime, "seat_ids": [Uuid::new_v4()], "reason": "x"}),
        json!({"user_id": user, "showtime_id": showtime, "seat_ids": [seats[1]], "reason": " "}),
        json!({"user_id": user, "showtime_id": showtime, "seat_ids": [], "reason": "x"}),
        // The reason lands in the audit log's JSON, where Postgres refuses a NUL: once a 500.
        json!({"user_id": user, "showtime_id": showtime, "seat_ids": [seats[1]], "reason": "no\u{0}show"}),
    ] {
        assert_eq!(shop.app.admin_book(&admin, &body).await.status(), 422);
    }
    assert_eq!(
        shop.app
            .admin_book(&shop.buyers[0].token, &json!({}))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn manual_bookings_racing_buyers_never_oversell() {
    let shop = Shop::open().await;
    let admin = shop.admin().await;
    let showtime = shop.showtime.showtime_id;
    let seats = shop.seats(0..6);
    let buyers = test_support::fixtures::buyers(&shop.app.db, &shop.app.env.settings(), 12).await;
    let buyer_requests = buyers.iter().enumerate().map(|(i, buyer)| {
        let body = json!({"showtime_id": showtime, "seat_ids": [seats[i % 6]]});
        let app = &shop.app;
        async move { app.book(buyer, &format!("race-{i}"), &body).await.status() }
    });
    let admin_requests = (0..6).map(|i| {
        let body = json!({"user_id": shop.buyers[0].user_id, "showtime_id": showtime,
                          "seat_ids": [seats[i]], "comp": i % 2 == 0, "reason": "race"});
        let admin = admin.clone();
        let shop = &shop;
        async move { shop.app.admin_book(&admin, &body).await.status() }
    });
    let (buyers_answered, admins_answered) =
        tokio::join!(join_all(buyer_requests), join_all(admin_requests));
    assert!(
        buyers_answered
            .iter()
            .chain(&admins_answered)
            .all(|status| status.as_u16() == 202)
    );
    eventually!({
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM bookings WHERE status = 'PENDING'")
                .fetch_one(&shop.app.db)
                .await
                .unwrap();
        pending == 0
    });
    let checked = test_support::invariants::check_sale(&shop.app.db, showtime).await;
    assert!(checked.is_ok(), "{checked:?}");
    let winners: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bookings WHERE status IN ('RESERVED', 'CONFIRMED') AND showtime_id = $1",
    )
    .bind(showtime)
    .fetch_one(&shop.app.db)
    .await
    .unwrap();
    assert_eq!(
        winners, 6,
        "each of the six seats went to exactly one of 18 requests"
    );
}
