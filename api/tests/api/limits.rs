//! Rate limits: counted per route group, per user and per client address in each instance,
//! and shared by the instances through Redis (a bound across them, synced every
//! `SYNC_INTERVAL`); past the limit the answer is 429 with Retry-After; with Redis down each
//! instance still counts on its own and OTP sends are refused.

use serde_json::json;
use test_support::{TestEnv, eventually};

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
async fn a_route_group_limit_answers_429_and_binds_every_instance() {
    let (first, second) =
        two_instances(&[("RATE_LIMIT_READS", "5/1m"), ("RATE_LIMIT_IP_FACTOR", "1")]).await;
    for i in 0..5 {
        let response = first.categories().await;
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(response.headers()["ratelimit-limit"], "5");
        assert_eq!(
            response.headers()["ratelimit-remaining"],
            (4 - i).to_string().as_str()
        );
    }
    let refused = first.venues("").await;
    assert_eq!(refused.status(), 429, "the sixth read");
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    assert_eq!(error_code(refused).await, "RATE_LIMITED");

    // The other instance learns the count at its next sync with Redis: until then it lets
    // through at most what it believes is left, then refuses too.
    let let_through = std::sync::atomic::AtomicU32::new(0);
    eventually!({
        let status = second.categories().await.status();
        if status == 200 {
            let_through.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        status == 429
    });
    let let_through = let_through.into_inner();
    assert!(
        let_through <= 5,
        "{let_through} let through on the second instance"
    );

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
    let (first, _) =
        two_instances(&[("RATE_LIMIT_WRITES", "3/1m"), ("RATE_LIMIT_IP_FACTOR", "3")]).await;
    let alice = first.signed_up().await;
    let bob = first.signed_up().await;
    let change = json!({"name": "New Name"});
    for _ in 0..3 {
        assert_eq!(first.update_me(access(&alice), &change).await.status(), 200);
    }
    let refused = first.update_me(access(&alice), &change).await;
    assert_eq!(refused.status(), 429, "alice used her three writes");
    assert!(refused.headers().contains_key("retry-after"));
    for _ in 0..3 {
        assert_eq!(
            first.update_me(access(&bob), &change).await.status(),
            200,
            "bob has his own"
        );
    }
    // The address has counted 7 writes (alice's refused one too) of its 3 x 3: carol, with
    // writes of her own left, is stopped by the address on her third.
    let carol = first.signed_up().await;
    assert_eq!(first.update_me(access(&carol), &change).await.status(), 200);
    assert_eq!(first.update_me(access(&carol), &change).await.status(), 200);
    assert_eq!(first.update_me(access(&carol), &change).await.status(), 429);
}

#[tokio::test]
async fn with_redis_down_each_instance_counts_alone_and_otp_sends_are_refused() {
    let mut env = TestEnv::new().await;
    env.set("REDIS_URL", format!("redis://127.0.0.1:{}", closed_port()));
    env.set("RATE_LIMIT_READS", "3/1m");
    env.set("RATE_LIMIT_IP_FACTOR", "1");
    let app = spawn_app_with(env).await;
    for _ in 0..3 {
        assert_eq!(app.categories().await.status(), 200);
    }
    assert_eq!(
        app.categories().await.status(),
        429,
        "still limited, by this instance's own count"
    );
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
