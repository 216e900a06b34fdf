//! The operator's window into a worker process, on `WORKERS_HTTP_PORT`: `/metrics`
//! (Prometheus; the depth of every queue is sampled at each scrape), `/health` (readiness:
//! Postgres, Redis and RabbitMQ, each with a real round trip) and `/health/live`.

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use shared::{
    health::{HealthReport, Status},
    jobs::admin::QueueAdmin,
};

use crate::context::JobContext;

pub fn router(ctx: JobContext) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "up"})) }),
        )
        .with_state(ctx)
}

async fn metrics(State(ctx): State<JobContext>) -> Response {
    match QueueAdmin::new(&ctx.settings.rabbitmq).health().await {
        Ok(queues) => {
            for queue in queues {
                let name = queue.queue.clone();
                metrics::gauge!("queue_ready_messages", "queue" => name.clone())
                    .set(f64::from(queue.ready));
                metrics::gauge!("queue_consumers", "queue" => name.clone())
                    .set(f64::from(queue.consumers));
                metrics::gauge!("queue_dead_letters", "queue" => name)
                    .set(f64::from(queue.dead_letters));
            }
        }
        Err(error) => tracing::warn!(%error, "queue depths not sampled"),
    }
    let mut response = shared::metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

async fn health(State(ctx): State<JobContext>) -> (StatusCode, Json<Value>) {
    let report = HealthReport::probe(&ctx.db, &ctx.redis, &ctx.jobs).await;
    let status = match report.status {
        Status::Up => StatusCode::OK,
        Status::Down => StatusCode::SERVICE_UNAVAILABLE,
    };
    (
        status,
        Json(serde_json::to_value(report).unwrap_or_default()),
    )
}
