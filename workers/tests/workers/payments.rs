//! Payment verification against a real `workers` process that is killed mid-verification:
//! Razorpay captured the payment but the worker died before its answer arrived. The broker
//! redelivers the job to a new process, which must settle the payment exactly once.

use serde_json::{Value, json};
use shared::payments::PaymentStatus;
use test_support::{TestEnv, eventually, fixtures};
use uuid::Uuid;

use crate::helpers::{Harness, WorkerProcess};

#[tokio::test]
async fn a_worker_killed_mid_verification_is_replaced_and_the_payment_settles_once() {
    let mut env = TestEnv::new().await;
    let stand_in = env.start_stand_in().await;
    let harness = Harness::with_env(env).await;
    let env = &harness.env;
    let showtime = fixtures::showtime_on_sale(&harness.db, &[(1, 4)]).await;
    let buyer = fixtures::buyers(&harness.db, &env.settings(), 1)
        .await
        .remove(0);
    let api = api::startup::Application::build(env.settings())
        .await
        .unwrap();
    let api_url = format!("http://127.0.0.1:{}", api.port());
    tokio::spawn(api.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let call = |path: &str, body: Value| {
        let request = if path.starts_with("/razorpay") {
            client.post(format!("{stand_in}{path}"))
        } else {
            client
                .post(format!("{api_url}{path}"))
                .bearer_auth(&buyer.token)
        };
        async move {
            let response = request.json(&body).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            (status, body)
        }
    };
    let mut doomed = WorkerProcess::start(env);

    let seats = &showtime.sections[0].seat_ids[..2];
    let booking = client
        .post(format!("{api_url}/api/bookings"))
        .bearer_auth(&buyer.token)
        .header("idempotency-key", "killed-mid-verification")
        .json(&json!({"showtime_id": showtime.showtime_id, "seat_ids": seats}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["booking_id"]
        .as_str()
        .unwrap()
        .parse::<Uuid>()
        .unwrap();
    let status = |booking: Uuid| {
        let db = harness.db.clone();
        async move {
            // No row until the worker records the booking it decides.
            sqlx::query_scalar::<_, String>("SELECT status::text FROM bookings WHERE id = $1")
                .bind(booking)
                .fetch_optional(&db)
                .await
                .unwrap()
                .unwrap_or_else(|| "PENDING".into())
        }
    };
    eventually!("the booking is held", status(booking).await == "RESERVED");
    let (code, order) = call("/api/razorpay/orders", json!({"booking_id": booking})).await;
    assert_eq!(code, 200, "{order}");
    let (_, checkout) = call("/razorpay/test/pay", json!({"order_id": order["order_id"]})).await;
    call("/razorpay/test/config", json!({"stall_captures": true})).await;

    let (code, _) = call("/api/razorpay/verify", checkout).await;
    assert_eq!(code, 202);
    let captures = || async {
        let counts: Value = client
            .get(format!("{stand_in}/razorpay/test/counts"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        counts["captures"].as_u64().unwrap()
    };
    eventually!("Razorpay captured the payment", captures().await == 1);
    assert_eq!(
        status(booking).await,
        "RESERVED",
        "the worker never heard back"
    );
    doomed.kill_hard();

    call("/razorpay/test/config", json!({"stall_captures": false})).await;
    let _replacement = WorkerProcess::start(env);
    eventually!(
        "the redelivered job confirms the booking",
        status(booking).await == "CONFIRMED"
    );

    assert_eq!(captures().await, 1, "captured once at Razorpay");
    let (payment, captured_entries): (PaymentStatus, i64) = sqlx::query_as(
        "SELECT status, (SELECT count(*) FROM jsonb_array_elements(status_history) e
                         WHERE e->>'status' = 'CAPTURED')
         FROM payments WHERE booking_id = $1",
    )
    .bind(booking)
    .fetch_one(&harness.db)
    .await
    .unwrap();
    assert_eq!((payment, captured_entries), (PaymentStatus::Captured, 1));
    let (sold, tickets): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM showtime_seats WHERE booking_id = $1 AND status = 'SOLD'),
                (SELECT count(*) FROM tickets WHERE booking_id = $1 AND voided_at IS NULL)",
    )
    .bind(booking)
    .fetch_one(&harness.db)
    .await
    .unwrap();
    assert_eq!((sold, tickets), (2, 2));
    let queue = harness.topology.queue::<shared::jobs::VerifyPayment>();
    let dead = harness
        .topology
        .dead_letter_queue::<shared::jobs::VerifyPayment>();
    eventually!(
        "nothing is left queued",
        harness.ready_messages(&queue).await == 0
    );
    assert_eq!(
        harness.ready_messages(&dead).await,
        0,
        "nothing dead-lettered"
    );
}
