//! No log line carries personal data or secrets: the test captures everything the API and a
//! worker log (at TRACE, SQL statements included) while a user registers, signs in by password
//! and by phone code, refreshes a token, books and pays, then looks for each value.

use std::{
    io::Write,
    sync::{Arc, Mutex},
};

use serde_json::{Value, json};
use test_support::{TestEnv, eventually, fixtures};

use crate::helpers::{access, spawn_app_with, spawn_workers};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_log_line_holds_an_email_phone_token_code_or_signature() {
    let captured = Captured::default();
    let writer = captured.clone();
    // nextest runs each test in a process of its own, so this test's subscriber sees this
    // test only. Under plain `cargo test` another test may have installed one first: then the
    // capture would be empty, and the test says so rather than pass without looking.
    tracing_subscriber::fmt()
        .with_env_filter("trace")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .try_init()
        .expect("this test captures the process's logs, so it runs in a process of its own (cargo nextest, as scripts/test does)");

    let mut env = TestEnv::new().await;
    let stand_in = env.start_stand_in().await;
    let mut app = spawn_app_with(env).await;
    app.stand_in = stand_in;
    app.razorpay(
        "/test/config",
        &json!({"webhook_url": app.url("/api/razorpay/webhook")}),
    )
    .await;
    let _workers = spawn_workers(&app).await;

    let email = "private.person@example.com";
    let password = "a-very-private-password";
    let registered: Value = app.register(email, password).await.json().await.unwrap();
    let login: Value = app.login(email, password).await.json().await.unwrap();
    let refreshed: Value = app
        .refresh(login["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();

    let phone = "+919811122233";
    app.post_json("/api/auth/otp/request", &json!({"phone": phone}))
        .await;
    let mut code = String::new();
    eventually!(!app.texts_to(phone).await.is_empty());
    app.codes_marked_sent().await;
    if let Some(text) = app.texts_to(phone).await.first() {
        code = text.chars().take_while(char::is_ascii_digit).collect();
    }
    let signed_in = app
        .post_json(
            "/api/auth/otp/verify",
            &json!({"phone": phone, "code": code}),
        )
        .await;
    assert_eq!(signed_in.status(), 200);

    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 2)]).await;
    let buyer = fixtures::buyers(&app.db, &app.env.settings(), 1)
        .await
        .remove(0);
    let booking = app
        .book_and_wait(&buyer, &json!({"showtime_id": showtime.showtime_id, "seat_ids": [showtime.sections[0].seat_ids[0]]}))
        .await;
    let booking_id = booking["id"].as_str().unwrap();
    let order: Value = app
        .post_json_as(
            "/api/razorpay/orders",
            &json!({"booking_id": booking_id}),
            &buyer.token,
        )
        .await
        .json()
        .await
        .unwrap();
    let checkout: Value = app
        .razorpay("/test/pay", &json!({"order_id": order["order_id"]}))
        .await
        .json()
        .await
        .unwrap();
    app.post_json_as("/api/razorpay/verify", &checkout, &buyer.token)
        .await;
    assert_eq!(
        app.booking_after(&buyer, booking_id, "RESERVED").await["status"],
        "CONFIRMED"
    );

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("request"),
        "the capture works: {} bytes",
        logs.len()
    );
    let secrets = [
        ("email", email.to_owned()),
        ("password", password.to_owned()),
        ("phone", phone.to_owned()),
        ("phone digits", phone.trim_start_matches('+').to_owned()),
        ("code", code),
        ("access token", access(&registered).to_owned()),
        (
            "refresh token",
            refreshed["refresh_token"].as_str().unwrap().to_owned(),
        ),
        ("buyer token", buyer.token.clone()),
        (
            "checkout signature",
            checkout["razorpay_signature"].as_str().unwrap().to_owned(),
        ),
    ];
    for (what, value) in secrets {
        assert!(value.len() >= 6, "{what} is a real value");
        if let Some(at) = logs.find(&value) {
            let start = logs[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = logs[at..].find('\n').map_or(logs.len(), |i| at + i);
            panic!("a log line holds the {what}: {}", &logs[start..end]);
        }
    }
}
