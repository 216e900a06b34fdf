//! The stand-in's Razorpay speaks Razorpay's wire format: its errors come in Razorpay's shape,
//! and the official Python SDK's REST calls work against it.

// A test that cannot get what it needs should stop right there.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::{Value, json};
use stand_in::{Config, RazorpayConfig, StandIn};

const KEY_ID: &str = "rzp_test_sdk";
const KEY_SECRET: &str = "sdk-key-secret";

async fn stand_in() -> String {
    let config = Config {
        twilio_account_sid: "AC0".into(),
        twilio_auth_token: "token".into(),
        sendgrid_api_key: "key".into(),
        google_client_id: "client".into(),
        razorpay: RazorpayConfig {
            key_id: KEY_ID.into(),
            key_secret: KEY_SECRET.into(),
            webhook_secret: "webhook-secret".into(),
            webhook_url: None,
        },
    };
    let server = StandIn::bind(([127, 0, 0, 1], 0).into(), config)
        .await
        .unwrap();
    let base = format!("http://{}", server.address());
    tokio::spawn(server.run());
    base
}

#[tokio::test]
async fn every_razorpay_error_comes_in_razorpay_shape() {
    let base = stand_in().await;
    let client = reqwest::Client::new();
    let api = |path: &str| format!("{base}/razorpay{path}");
    let requests = [
        ("unknown route", client.get(api("/v1/no-such-thing"))),
        ("wrong method", client.delete(api("/v1/orders"))),
        ("no credentials", client.get(api("/v1/payments/pay_1"))),
        (
            "malformed JSON",
            client
                .post(api("/v1/orders"))
                .basic_auth(KEY_ID, Some(KEY_SECRET))
                .header("content-type", "application/json")
                .body("{not json"),
        ),
        (
            "no amount",
            client
                .post(api("/v1/orders"))
                .basic_auth(KEY_ID, Some(KEY_SECRET))
                .json(&json!({"currency": "INR"})),
        ),
        (
            "unknown order",
            client
                .get(api("/v1/orders/order_missing"))
                .basic_auth(KEY_ID, Some(KEY_SECRET)),
        ),
        (
            "payments of an unknown order",
            client
                .get(api("/v1/orders/order_missing/payments"))
                .basic_auth(KEY_ID, Some(KEY_SECRET)),
        ),
        (
            "unknown refund",
            client
                .get(api("/v1/refunds/rfnd_missing"))
                .basic_auth(KEY_ID, Some(KEY_SECRET)),
        ),
        (
            "refunds of an unknown payment",
            client
                .get(api("/v1/payments/pay_missing/refunds"))
                .basic_auth(KEY_ID, Some(KEY_SECRET)),
        ),
    ];
    for (case, request) in requests {
        let response = request.send().await.unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{case}: {status}");
        assert_eq!(
            response.headers()["content-type"],
            "application/json",
            "{case}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "BAD_REQUEST_ERROR", "{case}: {body}");
        assert!(
            body["error"]["description"]
                .as_str()
                .is_some_and(|text| !text.is_empty()),
            "{case}: {body}"
        );
    }
}

/// Runs the official SDK (PyPI `razorpay`, installed by `scripts/test` into a virtualenv named
/// by `BMS_PYTHON`) against the stand-in.
#[tokio::test]
async fn the_official_python_sdk_works_against_the_stand_in() {
    let base = stand_in().await;
    let python = std::env::var("BMS_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/razorpay_sdk.py");
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .args([script, &base, KEY_ID, KEY_SECRET])
            .output()
    })
    .await
    .unwrap()
    .expect("Python runs (scripts/test installs it with the Razorpay SDK)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim() == "ok",
        "the SDK failed against the stand-in (run through scripts/test, which installs the \
         `razorpay` package and sets BMS_PYTHON):\n{stdout}\n{stderr}"
    );
}
