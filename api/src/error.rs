//! The one error type of the HTTP layer and the one JSON shape every error leaves in:
//! `{"error": {"code": "...", "message": "...", "request_id": "..."}}`.
//!
//! Handlers return [`ApiError`]; internal causes are logged with the request's span and the
//! client is told only what it may know. [`render_errors`] then writes the body, adding the
//! request id, and also rewrites the plain-text errors that axum and tower-http produce
//! (unknown route, bad JSON, body too large, timeout) into the same shape.

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::Request,
    http::{HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use shared::{accounts::HashError, error::DomainError, validation::FieldError};
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed: syntax, missing header, wrong type.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// The request is well-formed but its values break a rule.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("authentication is required")]
    Unauthorized,
    /// Authentication failed for a stated reason (bad credentials, reused token, ...).
    #[error("{message}")]
    AuthenticationFailed { code: &'static str, message: String },
    #[error("send the body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    #[error("the request body is too large")]
    PayloadTooLarge,
    #[error("you may not do this")]
    Forbidden,
    /// Also used for what exists but is not the caller's, so nothing leaks.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Too many attempts; the client may try again after `retry_after`.
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after: std::time::Duration,
    },
    /// A dependency this request needs is down; the rest of the API keeps working.
    #[error("{0} is unavailable, try again shortly")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::Unprocessable {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            Self::AuthenticationFailed { code, .. } => (StatusCode::UNAUTHORIZED, code),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE")
            }
            Self::Forbidden => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        }
    }
}

/// What a client sees of an error; rendered by [`render_errors`].
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable code such as `SEAT_TAKEN` or `NOT_FOUND`.
    pub code: String,
    /// A sentence for humans.
    pub message: String,
    /// The request id, also in the `X-Request-Id` response header.
    pub request_id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Carried from `into_response` to `render_errors`, which knows the request id.
#[derive(Debug, Clone)]
struct PendingError {
    code: String,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A dependency that dropped out under a handler surfaces as an internal error; it is an
        // outage, not a bug, and the client may retry.
        let this = match self {
            Self::Internal(cause) if unavailable_dependency(&cause).is_some() => {
                let what = unavailable_dependency(&cause).unwrap_or("a dependency");
                tracing::warn!(error = %cause, "a dependency is unavailable");
                Self::Unavailable(what)
            }
            other => other,
        };
        let (status, code) = this.status_and_code();
        if let Self::Internal(cause) = &this {
            tracing::error!(error = ?cause, "request failed");
        }
        let mut response = status.into_response();
        let retry_after = match &this {
            Self::TooManyRequests { retry_after, .. } => Some(*retry_after),
            Self::Unavailable(_) => Some(RETRY_UNAVAILABLE_AFTER),
            _ => None,
        };
        if let Some(retry_after) = retry_after {
            // Whole seconds, rounded up, never zero.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response.extensions_mut().insert(PendingError {
            code: code.to_owned(),
            message: this.to_string(),
        });
        response
    }
}

/// How long a client is asked to wait when a dependency is down or saturated.
const RETRY_UNAVAILABLE_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// The dependency an internal error says is unreachable, if it says so.
fn unavailable_dependency(cause: &anyhow::Error) -> Option<&'static str> {
    cause.chain().find_map(shared::health::outage)
}

/// Largest body of a plain-text error that is carried into the JSON message.
const MAX_PLAIN_ERROR: usize = 4 * 1024;

pub async fn render_errors(request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if let Some(pending) = response.extensions().get::<PendingError>().cloned() {
        let (parts, _) = response.into_parts();
        return with_body(parts, pending.code, pending.message, request_id);
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_PLAIN_ERROR)
        .await
        .ok()
        .and_then(|bytes| String::from_utf8(bytes.to_vec()).ok())
        .map(|text| text.trim().to_owned())
        .unwrap_or_default();
    // Framework messages for client errors are safe and useful; server errors are not shown.
    let message = if status.is_client_error() && !text.is_empty() {
        text
    } else {
        status.canonical_reason().unwrap_or("error").to_owned()
    };
    with_body(parts, code_for(status).to_owned(), message, request_id)
}

fn with_body(
    mut parts: axum::http::response::Parts,
    code: String,
    message: String,
    request_id: String,
) -> Response {
    parts.headers.remove(header::CONTENT_LENGTH);
    // The new body is plain JSON, whatever encoded the old one.
    parts.headers.remove(header::CONTENT_ENCODING);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = ErrorBody {
        error: ErrorDetail {
            code,
            message,
            request_id,
        },
    };
    let json = Json(body).into_response().into_body();
    Response::from_parts(parts, Body::new(json))
}

fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BAD_REQUEST",
        StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::UNPROCESSABLE_ENTITY => "UNPROCESSABLE_ENTITY",
        StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        status if status.is_client_error() => "BAD_REQUEST",
        _ => "INTERNAL",
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        Self::unprocessable("VALIDATION_FAILED", error.to_string())
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        match error {
            DomainError::NotFound(what) => Self::NotFound(what),
            DomainError::Invalid(field) => field.into(),
            DomainError::Conflict { code, message } => Self::Conflict { code, message },
            DomainError::BadSignature => Self::BadRequest {
                code: "INVALID_SIGNATURE",
                message: DomainError::BadSignature.to_string(),
            },
            DomainError::Provider(error) => {
                tracing::warn!(%error, "Razorpay call failed");
                Self::Unavailable("the payment provider")
            }
            DomainError::Queue(error) => {
                tracing::warn!(%error, "job not published");
                Self::Unavailable("the job queue")
            }
            DomainError::Database(error) => error.into(),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if shared::db::is_unavailable(&error) {
            tracing::warn!(%error, "the database is unavailable");
            return Self::Unavailable("the database");
        }
        // 22021 and 22P05: text Postgres cannot store in `text` and in `jsonb`, a NUL (U+0000)
        // being the one valid JSON or URL text can carry. Whatever field it came in, it is the
        // client's input, not a failure.
        if error
            .as_database_error()
            .and_then(|e| e.code())
            .is_some_and(|code| code == "22021" || code == "22P05")
        {
            return Self::unprocessable("VALIDATION_FAILED", "text must not contain NUL (U+0000)");
        }
        Self::Internal(error.into())
    }
}

impl From<HashError> for ApiError {
    fn from(error: HashError) -> Self {
        match error {
            HashError::Busy => Self::Unavailable("sign-in"),
            HashError::Failed(_) => Self::Internal(error.into()),
        }
    }
}
