//! `/health` with every dependency up, and with each one down in turn (a closed port).

use serde_json::Value;
use test_support::TestEnv;

use crate::helpers::{closed_port, spawn_app, spawn_app_with};

#[tokio::test]
async fn health_reports_every_component_up() {
    let app = spawn_app().await;

    let response = app.get_health().await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "up");
    for component in ["postgres", "redis", "rabbitmq"] {
        assert_eq!(body[component]["status"], "up", "{component}: {body}");
        assert!(body[component]["latency_ms"].as_f64().is_some());
    }
}

async fn health_with_one_component_down(component: &str, setting: &str, url: String) {
    let mut env = if component == "postgres" {
        TestEnv::without_database()
    } else {
        TestEnv::new().await
    };
    env.set(setting, url);
    let app = spawn_app_with(env).await;

    let response = app.get_health().await;

    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "down");
    for name in ["postgres", "redis", "rabbitmq"] {
        let expected = if name == component { "down" } else { "up" };
        assert_eq!(body[name]["status"], expected, "{name}: {body}");
    }
    assert!(body[component]["error"].as_str().is_some());
}

#[tokio::test]
async fn health_is_503_when_postgres_is_unreachable() {
    let url = format!("postgres://postgres@127.0.0.1:{}/bms", closed_port());
    health_with_one_component_down("postgres", "DATABASE_URL", url).await;
}

#[tokio::test]
async fn health_is_503_when_redis_is_unreachable() {
    let url = format!("redis://127.0.0.1:{}", closed_port());
    health_with_one_component_down("redis", "REDIS_URL", url).await;
}

#[tokio::test]
async fn health_is_503_when_rabbitmq_is_unreachable() {
    let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port());
    health_with_one_component_down("rabbitmq", "RABBITMQ_URL", url).await;
}

#[tokio::test]
async fn liveness_needs_no_dependency() {
    let mut env = TestEnv::without_database();
    env.set("REDIS_URL", format!("redis://127.0.0.1:{}", closed_port()));
    let app = spawn_app_with(env).await;

    let response = app.get("/health/live").await;

    assert_eq!(response.status(), 200);
}
