//! The rate-limit route layer: which group a route belongs to, who is asking, and the
//! `RateLimit-*` headers on every answer (429 with `Retry-After` past the limit).
//!
//! The caller is identified by a valid access token's user id (signature and expiry only: no
//! database round trip before the limit is checked) and always by the client address. Counts
//! are kept in the process and synced with the other instances through Redis
//! (`shared::rate_limit`).

use axum::{
    extract::{MatchedPath, Request, State},
    http::{HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use shared::rate_limit::{Decision, Group};

use crate::{error::ApiError, extract::ClientAddress, state::AppState};

/// The group a route is limited in; `None` for what is never limited (health checks, metrics,
/// Razorpay's signed webhooks, the API documentation).
pub fn group(method: &Method, route: &str) -> Option<Group> {
    match route {
        "/health" | "/health/live" | "/metrics" | "/api/razorpay/webhook" => None,
        "/api/auth/otp/request" => Some(Group::Otp),
        "/api/auth/login"
        | "/api/auth/register"
        | "/api/auth/refresh"
        | "/api/auth/google"
        | "/api/auth/otp/verify"
        | "/api/auth/email/verification"
        | "/api/auth/email/verify" => Some(Group::Auth),
        "/api/bookings" if method == Method::POST => Some(Group::Bookings),
        _ if method == Method::GET || method == Method::HEAD => Some(Group::Reads),
        _ => Some(Group::Writes),
    }
}

pub async fn limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(group) = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|route| group(request.method(), route.as_str()))
    else {
        return next.run(request).await;
    };
    let ip = ClientAddress::of(request.extensions());
    let claims = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(|token| state.core.tokens.verify_access(token.trim()).ok());
    let user = claims.as_ref().map(|claims| claims.sub);
    let mut request = request;
    if let Some(claims) = claims {
        // Checked once: the handler's extractor takes it from here.
        request
            .extensions_mut()
            .insert(crate::auth::VerifiedToken(claims));
    }
    let decision = match state.limiter.check(group, ip, user).await {
        Ok(decision) => decision,
        Err(error) if group.fails_open() => {
            tracing::warn!(%error, "rate limits unavailable; letting the request through");
            return next.run(request).await;
        }
        Err(error) => {
            tracing::warn!(%error, "rate limits unavailable; refusing what must be limited");
            return ApiError::Unavailable("rate limiting").into_response();
        }
    };
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        ApiError::TooManyRequests {
            code: "RATE_LIMITED",
            message: format!(
                "too many requests; try again in {} seconds",
                decision.reset_seconds
            ),
            retry_after: std::time::Duration::from_secs(decision.reset_seconds),
        }
        .into_response()
    };
    set_headers(&mut response, decision);
    response
}

fn set_headers(response: &mut Response, decision: Decision) {
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(decision.reset_seconds));
}
