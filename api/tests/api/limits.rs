//! Rate limits shared by two API instances: the count is per route group, per user and per
//! client address; past it the answer is 429 with Retry-After; with Redis down reads go
//! through and OTP sends are refused.

use serde_json::json;
use test_support::TestEnv;

use crate::helpers::{TestApp, access, closed_port, error_code, spawn_app_with};

async fn two_instances(limits: &[(&str, &str)]) -> (TestApp, TestApp) {
    let mut env = TestEnv::new().await;
    for (name, value) in limits {
        env.set(name, *value);
    }
    let first = spawn_app_with(env.clone()).await;
    let second = spawn_app_with(env).await;
    (first, second)
}

#[tokio::test]
async fn a_route_group_limit_is_shared_by_every_instance_and_answers_429() {
    let (first, second) =
        two_instances(&[("RATE_LIMIT_READS", "5/1m"), ("RATE_LIMIT_IP_FACTOR", "1")]).await;
    for (i, app) in [&first, &second, &first, &second, &first]
        .into_iter()
        .enumerate()
    {
        let response = app.get("/api/categories").await;
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(response.headers()["ratelimit-limit"], "5");
        assert_eq!(
            response.headers()["ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
    }
    let refused = second.get("/api/venues").await;
    assert_eq!(refused.status(), 429, "the sixth read, on either instance");
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    assert_eq!(error_code(refused).await, "RATE_LIMITED");

    // Other groups keep their own counts, and health checks are never limited.
    assert_eq!(
        first
            .post_json(
                "/api/auth/login",
                &json!({"email": "a@b.co", "password": "wrong-password"})
            )
            .await
            .status(),
        401
    );
    assert_eq!(first.get("/health/live").await.status(), 200);
}

#[tokio::test]
async fn signed_in_users_are_limited_each_and_their_address_more_loosely() {
    let (first, second) =
        two_instances(&[("RATE_LIMIT_WRITES", "3/1m"), ("RATE_LIMIT_IP_FACTOR", "3")]).await;
    let alice = first.signed_up().await;
    let bob = first.signed_up().await;
    let change = json!({"name": "New Name"});
    let patch = |app: &TestApp, token: &str| {
        app.client
            .patch(app.url("/api/users/me"))
            .bearer_auth(token)
            .json(&change)
            .send()
    };
    for app in [&first, &second, &first] {
        assert_eq!(patch(app, access(&alice)).await.unwrap().status(), 200);
    }
    let refused = patch(&second, access(&alice)).await.unwrap();
    assert_eq!(refused.status(), 429, "alice used her three writes");
    assert!(refused.headers().contains_key("retry-after"));
    for _ in 0..3 {
        assert_eq!(
            patch(&first, access(&bob)).await.unwrap().status(),
            200,
            "bob has his own"
        );
    }
    // The address has counted 7 writes (alice's refused one too) of its 3 x 3: carol, with
    // writes of her own left, is stopped by the address on her third.
    let carol = first.signed_up().await;
    assert_eq!(patch(&first, access(&carol)).await.unwrap().status(), 200);
    assert_eq!(patch(&second, access(&carol)).await.unwrap().status(), 200);
    assert_eq!(patch(&first, access(&carol)).await.unwrap().status(), 429);
}

#[tokio::test]
async fn with_redis_down_reads_go_through_and_otp_sends_are_refused() {
    let mut env = TestEnv::new().await;
    env.set("REDIS_URL", format!("redis://127.0.0.1:{}", closed_port()));
    env.set("RATE_LIMIT_READS", "1/1m");
    let app = spawn_app_with(env).await;
    for _ in 0..3 {
        assert_eq!(
            app.get("/api/categories").await.status(),
            200,
            "fail open for reads"
        );
    }
    let response = app
        .post_json("/api/auth/otp/request", &json!({"phone": "+919812345671"}))
        .await;
    assert_eq!(response.status(), 503, "fail closed for OTP sends");
    assert_eq!(error_code(response).await, "SERVICE_UNAVAILABLE");
    let requests: i64 = sqlx::query_scalar("SELECT count(*) FROM otp_requests")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(requests, 0);
}
