//! Refunds that Razorpay answers awkwardly: a 409 while another run of the same request is in
//! flight, an answer lost after the refund was made, a refund it failed and then processed.
//! None of them may end with the money gone and the refund recorded FAILED.

use serde_json::{Value, json};
use shared::jobs::{JobPublisher, Refund};
use uuid::Uuid;

use test_support::eventually;

use crate::payments::Shop;

impl Shop {
    /// A CONFIRMED booking of two seats for buyer 0.
    async fn paid_booking(&self) -> String {
        let booking = self.reserve(0, &self.seats(0..2)).await;
        let checkout = self.pay(&self.order_id(0, &booking).await, json!({})).await;
        assert_eq!(self.verify(0, &checkout).await.status(), 202);
        assert_eq!(
            self.booking_after(0, &booking, "RESERVED").await["status"],
            "CONFIRMED"
        );
        booking
    }

    /// The refund request an admin made of the whole booking.
    async fn refund_whole(&self, booking: &str) -> Uuid {
        let admin = self.admin().await;
        let response = self
            .refund(&admin, booking, json!({"reason": "show moved"}))
            .await;
        assert_eq!(response.status(), 202);
        let refund: Value = response.json().await.unwrap();
        refund["id"].as_str().unwrap().parse().unwrap()
    }

    async fn refund_status(&self, booking: &str) -> String {
        self.scalar(
            "SELECT status::text FROM refunds WHERE booking_id = $1",
            booking,
        )
        .await
    }

    /// The booking is REFUNDED, its payment too, its seats on sale, its tickets void.
    async fn assert_refunded(&self, booking: &str) {
        eventually!(self.refund_status(booking).await == "PROCESSED");
        let status: String = self
            .scalar("SELECT status::text FROM bookings WHERE id = $1", booking)
            .await;
        assert_eq!(status, "REFUNDED");
        let (sold, tickets, payment, _) = self.settled(booking).await;
        assert_eq!((sold, tickets, payment.as_str()), (0, 0, "REFUNDED"));
    }
}

#[tokio::test]
async fn two_runs_of_one_refund_meet_a_409_and_the_refund_still_ends_processed() {
    let shop = Shop::open().await;
    let booking = shop.paid_booking().await;
    // The first run's call stays in flight at Razorpay...
    shop.app
        .razorpay("/test/config", &json!({"hold_refunds": true}))
        .await;
    let refund_id = shop.refund_whole(&booking).await;
    eventually!(shop.app.razorpay_counts().await["refunds_in_flight"] == 1);

    // ... while a second copy of the job runs (the sweep of another replica republished it)
    // and is told 409.
    let jobs = JobPublisher::new(&shop.app.env.settings().rabbitmq);
    jobs.publish(&Refund {
        refund_id,
        event_id: None,
    })
    .await
    .unwrap();
    eventually!(
        shop.app.razorpay_counts().await["refund_conflicts"]
            .as_u64()
            .is_some_and(|conflicts| conflicts >= 1)
    );
    shop.app
        .razorpay("/test/config", &json!({"hold_refunds": false}))
        .await;

    shop.assert_refunded(&booking).await;
    assert_eq!(shop.counts().await, (1, 1), "one refund at Razorpay");
}

#[tokio::test]
async fn a_refund_made_whose_answer_was_lost_is_found_at_razorpay_not_recorded_failed() {
    let shop = Shop::open().await;
    let booking = shop.paid_booking().await;
    // The refund is made but its answer is lost (500), and by the retry Razorpay no longer
    // knows the idempotency key: the retry is refused (nothing left to refund).
    shop.app
        .razorpay(
            "/test/config",
            &json!({"lose_refund_answers": 1, "forget_refund_keys": true}),
        )
        .await;
    shop.refund_whole(&booking).await;

    shop.assert_refunded(&booking).await;
    assert_eq!(shop.counts().await, (1, 1), "the money left once");
}

#[tokio::test]
async fn a_failed_refund_that_razorpay_processes_after_all_ends_processed() {
    let shop = Shop::open().await;
    let booking = shop.paid_booking().await;
    shop.app
        .razorpay("/test/config", &json!({"refund_outcome": "failed"}))
        .await;
    shop.refund_whole(&booking).await;
    eventually!(shop.refund_status(&booking).await == "FAILED");
    assert_eq!(
        shop.booking_after(0, &booking, "REFUND_PENDING").await["status"],
        "CONFIRMED"
    );

    // Razorpay processes it on a retry of its own, and says so.
    let provider_refund_id: String = shop
        .scalar(
            "SELECT provider_refund_id FROM refunds WHERE booking_id = $1",
            &booking,
        )
        .await;
    let changed = shop
        .app
        .razorpay(
            &format!("/test/refunds/{provider_refund_id}/status"),
            &json!({"status": "processed"}),
        )
        .await;
    assert_eq!(changed.status(), 200);
    let fired = shop
        .webhook(json!({"event": "refund.processed", "refund_id": provider_refund_id}))
        .await;
    assert_eq!(fired["statuses"], json!([200]));

    shop.assert_refunded(&booking).await;
    eventually!(shop.unapplied_events().await == 0);
    // A late copy of the failure changes nothing.
    shop.webhook(json!({"event": "refund.failed", "refund_id": provider_refund_id}))
        .await;
    eventually!(shop.unapplied_events().await == 0);
    assert_eq!(shop.refund_status(&booking).await, "PROCESSED");
}
