//! Request metrics for Prometheus: rate and latency by route (the matched template, never the
//! raw path, so ids do not explode the label set), method and status; `/metrics` itself; and
//! the gate that closes the operator's pages (`/metrics`, `/docs`) to the public.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
    time::Instant,
};

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use shared::config::Secret;

use crate::error::ApiError;

/// The series of one route, method and status, registered once: looking a series up by its
/// labels allocates and hashes them, which every request would otherwise pay.
type Series = (metrics::Histogram, metrics::Counter);
type SeriesKey = (String, Method, u16);

static SERIES: LazyLock<Mutex<HashMap<SeriesKey, Series>>> = LazyLock::new(Mutex::default);

fn series(route: &str, method: &Method, status: u16) -> Series {
    let key = (route.to_owned(), method.clone(), status);
    let mut known = SERIES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    known
        .entry(key)
        .or_insert_with(|| {
            let (route, method) = (route.to_owned(), method.to_string());
            (
                metrics::histogram!("http_request_duration_seconds", "method" => method.clone(), "route" => route.clone()),
                metrics::counter!("http_requests_total", "method" => method, "route" => route, "status" => status.to_string()),
            )
        })
        .clone()
}

/// Route layer: counts each request and records its latency.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let method = request.method().clone();
    let started = Instant::now();
    let response = next.run(request).await;
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let (latency, count) = series(route, &method, response.status().as_u16());
    latency.record(started.elapsed().as_secs_f64());
    count.increment(1);
    response
}

/// Prometheus text exposition of everything this process recorded.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics() -> Response {
    let mut response = shared::metrics::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// Route layer of the operator's pages: with `OPS_TOKEN` set, only `Authorization: Bearer
/// <OPS_TOKEN>` passes (401 otherwise); unset, they are open (development).
pub async fn operators_only(
    State(token): State<Option<Secret>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(token) = &token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok());
        if !token.is_bearer(presented) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(request).await)
}
