//! The operator's window into a worker process, on `WORKERS_HTTP_PORT`: `/metrics`
//! (Prometheus; the depth of every queue is sampled at each scrape; reconnects counted in
//! `broker_reconnects_total`; behind `OPS_TOKEN` when it is set), `/health` (readiness: Postgres, Redis and RabbitMQ, each with a
//! real round trip, and whether each job kind's consumer is connected; 503 while any is away)
//! and `/health/live` (the process runs; it outlives its dependencies, so this stays up).

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::{Value, json};
use shared::{
    health::{HealthReport, Status},
    jobs::admin::QueueAdmin,
};

use crate::{context::JobContext, runtime::ConsumerStates};

#[derive(Clone)]
struct Operations {
    ctx: JobContext,
    consumers: ConsumerStates,
}

pub fn router(ctx: JobContext, consumers: ConsumerStates) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route(
            "/health/live",
            get(|| async { Json(json!({"status": "up"})) }),
        )
        .with_state(Operations { ctx, consumers })
}

async fn metrics(State(Operations { ctx, .. }): State<Operations>, headers: HeaderMap) -> Response {
    if let Some(token) = &ctx.core.settings.http.ops_token {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if !token.is_bearer(presented) {
            let body =
                json!({"error": {"code": "UNAUTHORIZED", "message": "send the operations token"}});
            return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        }
    }
    match QueueAdmin::new(&ctx.core.settings.rabbitmq).health().await {
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

async fn health(
    State(Operations { ctx, consumers }): State<Operations>,
) -> (StatusCode, Json<Value>) {
    let report = HealthReport::probe(&ctx.core.db, &ctx.core.redis, &ctx.core.jobs).await;
    let consumers = consumers.snapshot();
    let all_consuming = consumers.values().all(|up| *up);
    let status = match report.status {
        Status::Up if all_consuming => StatusCode::OK,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut body = serde_json::to_value(report).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        if !all_consuming {
            fields.insert("status".into(), json!("down"));
        }
        let consumers: serde_json::Map<String, Value> = consumers
            .into_iter()
            .map(|(kind, up)| (kind.to_owned(), json!(if up { "up" } else { "down" })))
            .collect();
        fields.insert("consumers".into(), Value::Object(consumers));
    }
    (status, Json(body))
}
