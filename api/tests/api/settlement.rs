//! Where a payment meets everything else that can happen to its booking: a buyer cancelling at
//! the same moment, an admin moving the seats before it lands, a hold that lapsed while the
//! buyer was paying. Each test ends with what the money and the seats came to, in Postgres.

use serde_json::{Value, json};
use uuid::Uuid;

use test_support::eventually;

use crate::{
    helpers::error_code,
    payments::{Shop, lapse},
};

/// Sessions of this test's database waiting for a row lock.
async fn lock_waiters(shop: &Shop) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )
    .fetch_one(&shop.app.db)
    .await
    .unwrap()
}

impl Shop {
    async fn cancel(&self, buyer: usize, booking: &str) -> reqwest::Response {
        self.app
            .cancel_booking(&self.buyers[buyer].token, booking)
            .await
    }

    /// Buyers may cancel paid bookings of this show for a refund.
    async fn refund_cancellations(&self) {
        sqlx::query("UPDATE shows SET refund_cutoff_hours = 24")
            .execute(&self.app.db)
            .await
            .unwrap();
    }

    async fn payment_status(&self, booking: &str) -> String {
        self.scalar(
            "SELECT status::text FROM payments WHERE booking_id = $1",
            booking,
        )
        .await
    }
}

/// A buyer cancels while their payment is being settled. Both wait behind a lock on the booking
/// (as they would behind each other), queued in either order, then race.
#[tokio::test]
async fn a_cancel_racing_a_settlement_never_leaves_a_canceled_booking_with_sold_seats() {
    let shop = Shop::open_with_layout(&[(1, 16)], |_| {}).await;
    shop.refund_cancellations().await;
    let rounds = 8;
    let mut bookings = Vec::new();
    for round in 0..rounds {
        let booking = shop.reserve(0, &shop.seats(2 * round..2 * round + 2)).await;
        let id: Uuid = booking.parse().unwrap();
        let checkout = shop.pay(&shop.order_id(0, &booking).await, json!({})).await;

        let mut gate = shop.app.db.begin().await.unwrap();
        sqlx::query("SELECT 1 FROM bookings WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(&mut *gate)
            .await
            .unwrap();
        // Even rounds queue the settlement first, odd rounds the cancel.
        let cancel = if round % 2 == 0 {
            assert_eq!(shop.verify(0, &checkout).await.status(), 202);
            eventually!(lock_waiters(&shop).await == 1);
            let cancel = shop.cancel(0, &booking);
            let cancel = async move { cancel.await.status() };
            let waiting = async {
                eventually!(lock_waiters(&shop).await == 2);
                gate.rollback().await.unwrap();
            };
            tokio::join!(cancel, waiting).0
        } else {
            let cancel = shop.cancel(0, &booking);
            let cancel = async move { cancel.await.status() };
            let settle = async {
                eventually!(lock_waiters(&shop).await == 1);
                assert_eq!(shop.verify(0, &checkout).await.status(), 202);
                eventually!(lock_waiters(&shop).await == 2);
                gate.rollback().await.unwrap();
            };
            tokio::join!(cancel, settle).0
        };
        assert!(
            cancel == 200 || cancel == 202,
            "round {round}: the cancel answered {cancel}"
        );
        bookings.push(booking);
    }

    // Whatever the order, the money goes back and no seat stays sold.
    for booking in &bookings {
        eventually!(shop.payment_status(booking).await == "REFUNDED");
        let status: String = shop
            .scalar("SELECT status::text FROM bookings WHERE id = $1", booking)
            .await;
        assert!(
            status == "CANCELED" || status == "REFUNDED",
            "{booking} ended {status}"
        );
        let (sold, tickets, _, captures) = shop.settled(booking).await;
        assert_eq!((sold, tickets, captures), (0, 0, 1), "{booking} ({status})");
    }
    assert_eq!(
        shop.counts().await,
        (rounds as u64, rounds as u64),
        "one capture and one refund per round"
    );
    let held: i64 =
        sqlx::query_scalar("SELECT count(*) FROM showtime_seats WHERE status <> 'AVAILABLE'")
            .fetch_one(&shop.app.db)
            .await
            .unwrap();
    assert_eq!(held, 0, "every seat is back on sale");
}

/// Confirmed over HTTP on the demo showtime: M3 and M4 moved to M11 and M12, then paid, sold all
/// four.
#[tokio::test]
async fn a_booking_moved_then_paid_gets_exactly_its_new_seats_at_the_price_paid() {
    let shop = Shop::open_with_layout(&[(1, 6), (1, 6)], |_| {}).await;
    let admin = shop.admin().await;
    let old = shop.showtime.sections[0].seat_ids[..2].to_vec();
    let new = shop.showtime.sections[1].seat_ids[..2].to_vec();
    let booking = shop.reserve(0, &old).await;
    let moved = shop
        .app
        .move_seats(
            &admin,
            &booking,
            &json!({"seat_ids": new, "reason": "a better view"}),
        )
        .await;
    assert_eq!(moved.status(), 200);
    // Someone else takes one of the seats given up before the payment lands.
    let rival = shop.reserve(1, &old[..1]).await;

    let order: Value = shop.order(0, &booking).await.json().await.unwrap();
    assert_eq!(order["amount_paise"], 100_000, "priced as first booked");
    let checkout = shop
        .pay(order["order_id"].as_str().unwrap(), json!({}))
        .await;
    assert_eq!(shop.verify(0, &checkout).await.status(), 202);
    assert_eq!(
        shop.booking_after(0, &booking, "RESERVED").await["status"],
        "CONFIRMED"
    );

    let sold: Vec<Uuid> = sqlx::query_scalar(
        "SELECT seat_id FROM showtime_seats WHERE booking_id = $1 AND status = 'SOLD' ORDER BY seat_id",
    )
    .bind(booking.parse::<Uuid>().unwrap())
    .fetch_all(&shop.app.db)
    .await
    .unwrap();
    let mut expected = new.clone();
    expected.sort();
    assert_eq!(sold, expected, "exactly the seats it was moved to");
    let ticketed: Vec<Uuid> = sqlx::query_scalar(
        "SELECT seat_id FROM tickets WHERE booking_id = $1 AND voided_at IS NULL ORDER BY seat_id",
    )
    .bind(booking.parse::<Uuid>().unwrap())
    .fetch_all(&shop.app.db)
    .await
    .unwrap();
    assert_eq!(ticketed, expected);
    let rival_holds: i64 = shop
        .scalar(
            "SELECT count(*) FROM showtime_seats WHERE booking_id = $1 AND status = 'RESERVED'",
            &rival,
        )
        .await;
    assert_eq!(rival_holds, 1, "the seat given up stays the rival's");
    assert_eq!(shop.counts().await, (1, 0), "captured, nothing refunded");

    // A seat of the new (dearer) section is refunded at what the buyer paid for it.
    let refund = shop
        .refund(
            &admin,
            &booking,
            json!({"seat_ids": [new[0]], "reason": "asked to"}),
        )
        .await;
    assert_eq!(refund.status(), 202);
    let refund: Value = refund.json().await.unwrap();
    assert_eq!(refund["amount_paise"], 50_000);
}

#[tokio::test]
async fn a_late_payment_is_refunded_once_the_showtime_has_stopped_selling() {
    let shop = Shop::open().await;
    let completed = shop.reserve(0, &shop.seats(0..2)).await;
    let completed_order = shop.order_id(0, &completed).await;
    let started = shop.reserve(0, &shop.seats(2..4)).await;
    let started_order = shop.order_id(0, &started).await;
    lapse(&shop, &completed).await;
    lapse(&shop, &started).await;

    // The show began while the buyer was paying...
    sqlx::query(
        "UPDATE showtimes SET sale_starts_at = now() - interval '2 hours',
                sale_ends_at = now() - interval '30 minutes', starts_at = now() - interval '1 minute'",
    )
    .execute(&shop.app.db)
    .await
    .unwrap();
    let checkout = shop.pay(&started_order, json!({})).await;
    assert_eq!(shop.verify(0, &checkout).await.status(), 202);
    eventually!(shop.payment_status(&started).await == "REFUNDED");

    // ... and then it was over.
    sqlx::query("UPDATE showtimes SET status = 'COMPLETED'")
        .execute(&shop.app.db)
        .await
        .unwrap();
    let checkout = shop.pay(&completed_order, json!({})).await;
    assert_eq!(shop.verify(0, &checkout).await.status(), 202);
    eventually!(shop.payment_status(&completed).await == "REFUNDED");

    for booking in [&started, &completed] {
        let (sold, tickets, _, _) = shop.settled(booking).await;
        assert_eq!((sold, tickets), (0, 0), "{booking}");
        let reason: String = shop
            .scalar("SELECT reason FROM refunds WHERE booking_id = $1", booking)
            .await;
        assert!(reason.contains("stopped selling"), "{reason}");
    }
}

#[tokio::test]
async fn a_late_payment_past_the_buyers_cap_is_refunded() {
    let shop = Shop::open().await;
    sqlx::query("UPDATE showtimes SET max_seats_per_user = 2")
        .execute(&shop.app.db)
        .await
        .unwrap();
    // Hold 2, let the hold lapse, book 2 more (the cap allows it now), pay both.
    let first = shop.reserve(0, &shop.seats(0..2)).await;
    let first_order = shop.order_id(0, &first).await;
    lapse(&shop, &first).await;
    let second = shop.reserve(0, &shop.seats(2..4)).await;
    let checkout = shop.pay(&shop.order_id(0, &second).await, json!({})).await;
    assert_eq!(shop.verify(0, &checkout).await.status(), 202);
    assert_eq!(
        shop.booking_after(0, &second, "RESERVED").await["status"],
        "CONFIRMED"
    );

    let checkout = shop.pay(&first_order, json!({})).await;
    assert_eq!(shop.verify(0, &checkout).await.status(), 202);
    eventually!(shop.payment_status(&first).await == "REFUNDED");

    let (sold, _, _, _) = shop.settled(&first).await;
    assert_eq!(sold, 0, "the late booking got no seats");
    let owned: i64 =
        sqlx::query_scalar("SELECT count(*) FROM showtime_seats WHERE status = 'SOLD'")
            .fetch_one(&shop.app.db)
            .await
            .unwrap();
    assert_eq!(owned, 2, "the buyer owns no more than the cap");
    let reason: String = shop
        .scalar("SELECT reason FROM refunds WHERE booking_id = $1", &first)
        .await;
    assert!(reason.contains("seat limit"), "{reason}");
    // The lapsed booking cannot be paid again.
    let response = shop.order(0, &first).await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "HOLD_EXPIRED");
}
