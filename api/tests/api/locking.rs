//! The one lock order (`shared::bookings`, "Lock order") under a mixed on-sale: buyers racing
//! for a few hot seats, holds lapsing and taken over, the hold sweep every second, payments
//! (some after their hold lapsed), buyers' cancels and admins' refunds, all at once against
//! one worker and the API. Postgres then reports no deadlock in the test's database, and the
//! seats add up.

use futures::future::join_all;
use serde_json::{Value, json};
use test_support::{eventually, fixtures, invariants};
use uuid::Uuid;

use crate::{helpers::access, payments::Shop};

async fn deadlocks(db: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        .fetch_one(db)
        .await
        .unwrap()
}

/// Ends every other connection to the test's database, so each backend reports the
/// deadlocks it saw (Postgres flushes a backend's statistics when it exits), and waits until
/// they are gone. The worker's sweep reconnects at once; its new connections saw nothing yet.
async fn flush_statistics(db: &sqlx::PgPool) {
    let ended: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity, pg_terminate_backend(pid)
          WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(db)
    .await
    .unwrap();
    eventually!({
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(&ended)
                .fetch_one(db)
                .await
                .unwrap();
        left == 0
    });
}

#[tokio::test]
async fn reservations_sweeps_payments_cancels_and_refunds_never_deadlock() {
    let mut shop = Shop::open_with(|env| {
        env.set("HOLD_DURATION", "2s");
        env.set("HOLD_SWEEP_SCHEDULE", "* * * * * *");
    })
    .await;
    let app = &shop.app;
    shop.showtime = fixtures::showtime_on_sale(&app.db, &[(1, 8), (1, 8)]).await;
    shop.buyers = fixtures::buyers(&app.db, &app.env.settings(), 16).await;
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    let admin = access(&admin).to_owned();
    let before = deadlocks(&app.db).await;
    let hot: Vec<Uuid> = shop.showtime.sections[0].seat_ids.clone();

    let shop = &shop;
    let buyers = (0..shop.buyers.len()).map(|buyer| {
        let admin = admin.clone();
        let hot = hot.clone();
        async move {
            for round in 0..3 {
                let first = (buyer * 3 + round) % hot.len();
                let body = if (buyer + round) % 2 == 0 {
                    json!({"showtime_id": shop.showtime.showtime_id,
                           "seat_ids": [hot[first], hot[(first + 1) % hot.len()]]})
                } else {
                    json!({"showtime_id": shop.showtime.showtime_id,
                           "section_id": shop.showtime.sections[(buyer + round) % 2].section_id,
                           "quantity": 2})
                };
                let booking = shop.app.book_and_wait(&shop.buyers[buyer], &body).await;
                if booking["status"] != "RESERVED" {
                    continue;
                }
                let id = booking["id"].as_str().unwrap().to_owned();
                match (buyer + round) % 4 {
                    // Pay at once, then an admin refunds it.
                    0 if pay(shop, buyer, &id).await => {
                        shop.app
                            .post_json_as(
                                &format!("/api/admin/bookings/{id}/refund"),
                                &json!({"reason": "lock order test"}),
                                &admin,
                            )
                            .await;
                    }
                    // Give the hold back.
                    1 => {
                        shop.app.cancel_booking(&shop.buyers[buyer].token, id).await;
                    }
                    // Pay after the hold lapsed: confirmed if the seats are still free, or
                    // refunded.
                    2 => {
                        shop.booking_after(buyer, &id, "RESERVED").await;
                        pay(shop, buyer, &id).await;
                    }
                    // Let it lapse; the sweep or the next buyer takes the seats back.
                    _ => {}
                }
            }
        }
    });
    join_all(buyers).await;

    // Every refund and payment job done, then the counts.
    eventually!({
        let open: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM refunds WHERE status IN ('REQUESTED', 'PENDING'))
                  + (SELECT count(*) FROM bookings WHERE status IN ('PENDING', 'REFUND_PENDING'))
                  + (SELECT count(*) FROM payments WHERE status IN ('CREATED', 'AUTHORIZED'))",
        )
        .fetch_one(&shop.app.db)
        .await
        .unwrap();
        open == 0
    });
    invariants::check_sale(&shop.app.db, shop.showtime.showtime_id)
        .await
        .unwrap();
    flush_statistics(&shop.app.db).await;
    assert_eq!(
        deadlocks(&shop.app.db).await,
        before,
        "no deadlock was detected"
    );
}

/// Orders, pays at the stand-in and verifies; whether the order could be made.
async fn pay(shop: &Shop, buyer: usize, booking: &str) -> bool {
    let response = shop.order(buyer, booking).await;
    if response.status() != 200 {
        return false;
    }
    let order: Value = response.json().await.unwrap();
    let checkout = shop
        .pay(order["order_id"].as_str().unwrap(), json!({}))
        .await;
    shop.verify(buyer, &checkout).await;
    shop.booking_after(buyer, booking, "RESERVED").await;
    true
}
