//! Phone sign-in: request, the send-OTP job, the text at the stand-in, verification and its limits.

use serde_json::{Value, json};
use test_support::{TestEnv, eventually};

use crate::helpers::{TestApp, access, error_code, spawn_app, spawn_app_with, spawn_workers};

const PHONE: &str = "+919876543210";

/// Waits for the stand-in to receive a text for `to` and returns the code in it.
async fn code_sent_to(app: &TestApp, to: &str, nth: usize) -> String {
    let text = eventually!(
        "the text message arrives",
        app.texts_to(to).await.get(nth).cloned()
    );
    app.codes_marked_sent().await;
    text.chars().take_while(char::is_ascii_digit).collect()
}

async fn request(app: &TestApp, phone: &str) -> reqwest::Response {
    app.post_json("/api/auth/otp/request", &json!({"phone": phone}))
        .await
}

async fn verify(app: &TestApp, phone: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/auth/otp/verify",
        &json!({"phone": phone, "code": code}),
    )
    .await
}

#[tokio::test]
async fn a_code_goes_out_by_sms_through_the_worker_and_signs_the_phone_in() {
    let app = spawn_app().await;
    let _workers = spawn_workers(&app).await;

    let response = request(&app, "98765 43210").await;
    assert_eq!(response.status(), 202);

    let code = code_sent_to(&app, PHONE, 0).await;
    assert_eq!(code.len(), 6);
    let stored: Option<String> =
        sqlx::query_scalar("SELECT code_hash FROM otp_requests WHERE phone = $1")
            .bind(PHONE)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        stored.is_some_and(|hash| !hash.contains(&code)),
        "only a hash is stored"
    );

    let response = verify(&app, PHONE, &code).await;
    assert_eq!(response.status(), 200);
    let pair: Value = response.json().await.unwrap();
    assert_eq!(pair["user"]["phone"], PHONE);
    assert_eq!(pair["user"]["phone_verified"], true);
    assert_eq!(app.me(access(&pair)).await.status(), 200);

    // A code works once.
    let again = verify(&app, PHONE, &code).await;
    assert_eq!(again.status(), 401);
    assert_eq!(error_code(again).await, "OTP_NOT_FOUND");
}

#[tokio::test]
async fn a_verified_phone_attaches_to_the_signed_in_account() {
    let app = spawn_app().await;
    let _workers = spawn_workers(&app).await;
    let pair = app.signed_up().await;
    request(&app, PHONE).await;
    let code = code_sent_to(&app, PHONE, 0).await;

    let response = app
        .post_json_as(
            "/api/auth/otp/verify",
            &json!({"phone": PHONE, "code": code}),
            access(&pair),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"]["id"], pair.id.to_string());
    assert_eq!(body["user"]["phone"], PHONE);
}

#[tokio::test]
async fn five_wrong_codes_lock_the_code() {
    let app = spawn_app().await;
    let _workers = spawn_workers(&app).await;
    request(&app, PHONE).await;
    let code = code_sent_to(&app, PHONE, 0).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for attempt in 1..=5 {
        let response = verify(&app, PHONE, wrong).await;
        assert_eq!(response.status(), 401);
        assert_eq!(
            error_code(response).await,
            "OTP_INVALID",
            "attempt {attempt}"
        );
    }
    let response = verify(&app, PHONE, &code).await;

    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "OTP_LOCKED");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let mut env = TestEnv::new().await;
    let stand_in = env.start_stand_in().await;
    env.set("OTP_TTL", "1s");
    let mut app = spawn_app_with(env).await;
    app.stand_in = stand_in;
    let _workers = spawn_workers(&app).await;
    request(&app, PHONE).await;
    let code = code_sent_to(&app, PHONE, 0).await;
    sqlx::query("UPDATE otp_requests SET expires_at = now() - interval '1 second'")
        .execute(&app.db)
        .await
        .unwrap();

    let response = verify(&app, PHONE, &code).await;

    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "OTP_EXPIRED");
}

#[tokio::test]
async fn codes_cannot_be_asked_for_again_at_once_or_too_often() {
    let mut env = TestEnv::new().await;
    env.set("OTP_RESEND_COOLDOWN", "1h")
        .set("OTP_MAX_PER_IP_PER_HOUR", "2");
    let app = spawn_app_with(env).await;

    assert_eq!(request(&app, PHONE).await.status(), 202);
    let again = request(&app, PHONE).await;
    assert_eq!(again.status(), 429);
    assert!(again.headers().contains_key("retry-after"));
    assert_eq!(error_code(again).await, "OTP_COOLDOWN");

    assert_eq!(request(&app, "+919876543211").await.status(), 202);
    let third_phone = request(&app, "+919876543212").await;
    assert_eq!(third_phone.status(), 429);
    assert_eq!(error_code(third_phone).await, "OTP_RATE_LIMITED");
}

#[tokio::test]
async fn bad_phone_numbers_and_codes_are_refused() {
    let app = spawn_app().await;
    for phone in ["", "12345", "not a phone", "+999123"] {
        let response = request(&app, phone).await;
        assert_eq!(response.status(), 422, "{phone:?}");
        assert_eq!(error_code(response).await, "VALIDATION_FAILED");
    }
    for code in ["12345", "abcdef", "1234567"] {
        let response = verify(&app, PHONE, code).await;
        assert_eq!(response.status(), 422, "{code:?}");
    }
    let requests: i64 = sqlx::query_scalar("SELECT count(*) FROM otp_requests")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(requests, 0);
}
