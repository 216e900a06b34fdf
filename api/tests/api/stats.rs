//! Stats against a sale whose outcome the test knows: every figure is checked against what the
//! test did, not against another query.

use chrono::Utc;
use serde_json::{Value, json};

use crate::{helpers::access, payments::Shop};

#[tokio::test]
async fn stats_add_up_to_what_was_sold_held_refunded_and_canceled() {
    let shop = Shop::open().await;
    let seats = shop.seats(0..6);
    // A: two seats paid. B: one seat held. C: one seat paid, then refunded. D: held, canceled.
    let a = shop.reserve(0, &seats[0..2]).await;
    let b = shop.reserve(0, &seats[2..3]).await;
    let c = shop.reserve(1, &seats[3..4]).await;
    let d = shop.reserve(1, &seats[4..5]).await;
    for (buyer, booking) in [(0, &a), (1, &c)] {
        let checkout = shop
            .pay(&shop.order_id(buyer, booking).await, json!({}))
            .await;
        assert_eq!(shop.verify(buyer, &checkout).await.status(), 202);
        assert_eq!(
            shop.booking_after(buyer, booking, "RESERVED").await["status"],
            "CONFIRMED"
        );
    }
    let admin = shop.admin().await;
    assert_eq!(
        shop.refund(&admin, &c, json!({"reason": "stats"}))
            .await
            .status(),
        202
    );
    let refunded = shop.booking_after(1, &c, "CONFIRMED").await;
    if refunded["status"] == "REFUND_PENDING" {
        shop.booking_after(1, &c, "REFUND_PENDING").await;
    }
    let cancel = shop.app.cancel_booking(&shop.buyers[1].token, d).await;
    assert_eq!(cancel.status(), 200);
    assert_eq!(
        shop.booking_after(0, &b, "PENDING").await["status"],
        "RESERVED"
    );

    let editor = shop.app.signed_up_as("EDITOR").await;
    let token = access(&editor);
    let get = |path: String| {
        let app = &shop.app;
        async move {
            let response = app.get_as(&path, token).await;
            assert_eq!(response.status(), 200, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };
    let showtime = get(format!(
        "/api/stats/showtimes/{}",
        shop.showtime.showtime_id
    ))
    .await;
    let expected = json!({"seats": 6, "sold": 2, "held": 1, "free": 3, "captured_paise": 150_000,
                          "refunded_paise": 50_000, "revenue_paise": 100_000});
    for (field, value) in expected.as_object().unwrap() {
        assert_eq!(&showtime[field], value, "{field}: {showtime}");
    }
    assert!((showtime["occupancy"].as_f64().unwrap() - 2.0 / 6.0).abs() < 1e-9);

    let show_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM shows")
        .fetch_one(&shop.app.db)
        .await
        .unwrap();
    let show = get(format!("/api/stats/shows/{show_id}")).await;
    assert_eq!(show["totals"]["sold"], 2);
    assert_eq!(show["showtimes"].as_array().unwrap().len(), 1);

    let conversion = get(format!("/api/stats/conversion?show_id={show_id}")).await;
    assert_eq!(
        (
            conversion["holds"].as_i64(),
            conversion["paid"].as_i64(),
            conversion["canceled"].as_i64(),
            conversion["expired"].as_i64()
        ),
        (Some(4), Some(2), Some(1), Some(0))
    );
    assert!((conversion["rate"].as_f64().unwrap() - 0.5).abs() < 1e-9);

    let sales = get("/api/stats/sales?interval=hour".into()).await;
    let buckets = sales.as_array().unwrap();
    let total_tickets: i64 = buckets
        .iter()
        .map(|bucket| bucket["tickets"].as_i64().unwrap())
        .sum();
    let total_captured: i64 = buckets
        .iter()
        .map(|bucket| bucket["captured_paise"].as_i64().unwrap())
        .sum();
    assert_eq!((total_tickets, total_captured), (3, 150_000));
    let today = Utc::now().date_naive().to_string();
    let by_day = get("/api/stats/sales".into()).await;
    assert_eq!(by_day.as_array().unwrap().len(), 1);
    assert!(
        by_day[0]["period_start"]
            .as_str()
            .unwrap()
            .starts_with(&today)
    );

    let top = get("/api/stats/top-shows?limit=5".into()).await;
    assert_eq!(top[0]["title"], "Test Show");
    assert_eq!(
        (top[0]["tickets"].as_i64(), top[0]["revenue_paise"].as_i64()),
        (Some(3), Some(100_000))
    );

    let queues = get("/api/stats/queues".into()).await;
    let kinds: Vec<&str> = queues
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "reserve-seats",
            "verify-payment",
            "refund",
            "send-otp",
            "send-email-verification"
        ]
    );
    assert!(queues[0]["consumers"].as_u64().unwrap() >= 1);

    let response = shop.app.stats(&shop.buyers[0].token, "sales", "").await;
    assert_eq!(response.status(), 403);
    for query in [
        "interval=week",
        "from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z",
        "interval=hour&from=2020-01-01T00:00:00Z",
    ] {
        let response = shop.app.stats(token, "sales", query).await;
        assert!(response.status().is_client_error(), "{query}");
    }
    let response = shop
        .app
        .get_as(
            &format!("/api/stats/showtimes/{}", uuid::Uuid::new_v4()),
            token,
        )
        .await;
    assert_eq!(response.status(), 404);
}
