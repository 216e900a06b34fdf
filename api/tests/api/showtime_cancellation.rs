//! Cancelling a showtime gives everyone their money back: holds released, paid bookings
//! refunded through refund jobs, free tickets canceled, orders unpayable, all audited, and an
//! admin can follow the refunds. A cancellation whose refund jobs could not be published is
//! finished by cancelling again.

use serde_json::{Value, json};
use test_support::{TestEnv, eventually};
use uuid::Uuid;

use crate::{
    helpers::{access, error_code},
    payments::Shop,
};

impl Shop {
    async fn paid(&self, buyer: usize, seats: std::ops::Range<usize>) -> String {
        let booking = self.reserve(buyer, &self.seats(seats)).await;
        let checkout = self
            .pay(&self.order_id(buyer, &booking).await, json!({}))
            .await;
        assert_eq!(self.verify(buyer, &checkout).await.status(), 202);
        assert_eq!(
            self.booking_after(buyer, &booking, "RESERVED").await["status"],
            "CONFIRMED"
        );
        booking
    }

    async fn cancel_showtime(&self, editor: &str) -> reqwest::Response {
        self.app
            .cancel_showtime(editor, self.showtime.showtime_id)
            .await
    }

    async fn progress(&self, admin: &str) -> Value {
        let response = self
            .app
            .get_as(
                &format!("/api/admin/showtimes/{}/refunds", self.showtime.showtime_id),
                admin,
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn status_of(&self, booking: &str) -> String {
        self.scalar("SELECT status::text FROM bookings WHERE id = $1", booking)
            .await
    }

    async fn audited(&self, action: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = $1")
            .bind(action)
            .fetch_one(&self.app.db)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn cancelling_a_showtime_refunds_every_paid_booking_and_releases_every_hold() {
    let mut env = TestEnv::new().await;
    // The broker is reached through a proxy, to lose the refund jobs' first publish.
    let broker = env.route_through_proxy("RABBITMQ_URL", 5672).await;
    env.set("REPUBLISH_PENDING_AFTER", "1h");
    let shop = Shop::open_in(env, &[(1, 10)]).await;
    let admin = shop.admin().await;
    let editor = access(&shop.app.signed_up_as("EDITOR").await).to_owned();

    let first = shop.paid(0, 0..2).await;
    let second = shop.paid(1, 2..5).await;
    let held = shop.reserve(0, &shop.seats(5..7)).await;
    let held_order = shop.order_id(0, &held).await;
    let comp: Value = shop
        .app
        .admin_book(
            &admin,
            &json!({"user_id": shop.buyers[1].user_id, "showtime_id": shop.showtime.showtime_id,
                    "seat_ids": [shop.seats(7..8)[0]], "comp": true, "reason": "guest"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let comp = comp["booking_id"].as_str().unwrap().to_owned();
    assert_eq!(
        shop.booking_after(1, &comp, "PENDING").await["status"],
        "CONFIRMED"
    );

    // The first attempt commits, but its refund jobs never reach the broker.
    broker.cut();
    let response = shop.cancel_showtime(&editor).await;
    assert_eq!(response.status(), 200);
    let canceled: Value = response.json().await.unwrap();
    assert_eq!(canceled["status"], "CANCELED");
    assert_eq!(shop.status_of(&held).await, "CANCELED");
    assert_eq!(shop.status_of(&comp).await, "CANCELED");
    for booking in [&first, &second] {
        assert_eq!(shop.status_of(booking).await, "REFUND_PENDING");
    }
    let progress = shop.progress(&admin).await;
    assert_eq!(progress["open"], 2);
    assert_eq!(progress["requested_paise"], 250_000);
    assert_eq!(progress["bookings_awaiting_refund"], 2);

    // Cancelling again, once the broker is back, finishes the job without asking twice.
    broker.restore();
    let again = shop.cancel_showtime(&editor).await;
    assert_eq!(again.status(), 200);
    eventually!({
        let progress = shop.progress(&admin).await;
        progress["processed"] == 2 && progress["open"] == 0
    });
    let progress = shop.progress(&admin).await;
    assert_eq!(progress["processed_paise"], 250_000);
    assert_eq!(progress["failed"], 0);
    assert_eq!(progress["bookings_awaiting_refund"], 0);
    for booking in [&first, &second] {
        assert_eq!(shop.status_of(booking).await, "REFUNDED");
        let (sold, tickets, payment, _) = shop.settled(booking).await;
        assert_eq!((sold, tickets, payment.as_str()), (0, 0, "REFUNDED"));
    }
    let comp_tickets: i64 = shop
        .scalar(
            "SELECT count(*) FROM tickets WHERE booking_id = $1 AND voided_at IS NULL",
            &comp,
        )
        .await;
    assert_eq!(comp_tickets, 0);
    let taken: i64 =
        sqlx::query_scalar("SELECT count(*) FROM showtime_seats WHERE status <> 'AVAILABLE'")
            .fetch_one(&shop.app.db)
            .await
            .unwrap();
    assert_eq!(taken, 0, "every seat is free");
    assert_eq!(shop.counts().await, (2, 2), "two captures, two refunds");

    // The held booking's order is unpayable: no new order, and money paid anyway goes back.
    let response = shop.order(0, &held).await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "NOT_RESERVED");
    let checkout = shop.pay(&held_order, json!({})).await;
    assert_eq!(shop.verify(0, &checkout).await.status(), 202);
    eventually!(
        shop.scalar::<String>(
            "SELECT status::text FROM payments WHERE booking_id = $1",
            &held,
        )
        .await
            == "REFUNDED"
    );
    assert_eq!(shop.status_of(&held).await, "CANCELED");

    // Everything was audited: the showtime twice (both attempts), each booking once.
    assert_eq!(shop.audited("showtime.canceled").await, 2);
    assert_eq!(shop.audited("booking.canceled").await, 1);
    assert_eq!(shop.audited("booking.canceled_without_refund").await, 1);
    let requested: Vec<String> = sqlx::query_scalar(
        "SELECT resource_id FROM audit_log WHERE action = 'booking.refund_requested' ORDER BY resource_id",
    )
    .fetch_all(&shop.app.db)
    .await
    .unwrap();
    let mut expected = vec![first.clone(), second.clone()];
    expected.sort();
    assert_eq!(requested, expected);
    let refunds: i64 = sqlx::query_scalar("SELECT count(*) FROM refunds")
        .fetch_one(&shop.app.db)
        .await
        .unwrap();
    assert_eq!(refunds, 3, "one per paid booking, one for the late payment");
}

#[tokio::test]
async fn nobody_books_a_canceled_showtime_not_even_an_admin() {
    let shop = Shop::open().await;
    let admin = shop.admin().await;
    let editor = access(&shop.app.signed_up_as("EDITOR").await).to_owned();
    // A request still undecided when the showtime is canceled (its job not run yet).
    let undecided = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO bookings (id, user_id, showtime_id, request, quantity)
         VALUES ($1, $2, $3, $4, 1)",
    )
    .bind(undecided)
    .bind(shop.buyers[0].user_id)
    .bind(shop.showtime.showtime_id)
    .bind(json!({"seat_ids": shop.seats(0..1)}))
    .execute(&shop.app.db)
    .await
    .unwrap();
    assert_eq!(shop.cancel_showtime(&editor).await.status(), 200);
    let undecided: (String, String) =
        sqlx::query_as("SELECT status::text, reject_reason::text FROM bookings WHERE id = $1")
            .bind(undecided)
            .fetch_one(&shop.app.db)
            .await
            .unwrap();
    assert_eq!(undecided, ("REJECTED".into(), "NOT_ON_SALE".into()));

    let body = json!({"showtime_id": shop.showtime.showtime_id, "seat_ids": shop.seats(0..1)});
    let response = shop
        .app
        .book(&shop.buyers[0], &Uuid::new_v4().to_string(), &body)
        .await;
    assert_eq!(response.status(), 409);
    let response = shop
        .app
        .admin_book(
            &admin,
            &json!({"user_id": shop.buyers[0].user_id, "showtime_id": shop.showtime.showtime_id,
                    "seat_ids": shop.seats(0..1), "reason": "box office"}),
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "SHOWTIME_CLOSED");
    let progress = shop.progress(&admin).await;
    assert_eq!(progress["open"], 0);
    assert_eq!(progress["requested_paise"], 0);
    // Someone else's showtime, or none, is not found.
    let response = shop
        .app
        .get_as(
            &format!("/api/admin/showtimes/{}/refunds", Uuid::new_v4()),
            &admin,
        )
        .await;
    assert_eq!(response.status(), 404);
}
