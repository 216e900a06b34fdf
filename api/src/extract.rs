//! Request extractors whose failures come out in the one error shape with precise codes.

use std::net::{IpAddr, SocketAddr};

use axum::{
    body::Bytes,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use shared::client_address::{ForwardedHeader, TrustedProxies};

use crate::error::ApiError;

/// A JSON body. Malformed JSON is 400 `INVALID_JSON`; a body of the wrong shape (missing or
/// unknown fields, wrong types) is 422 `INVALID_BODY`; a missing content type is 415.
///
/// A number with no fractional part is an integer wherever one is expected, written `2` or
/// `2.0` or `2e0`: JSON Schema (and so our OpenAPI document) counts them the same value, and
/// clients such as Python's `json` write a whole float as `2.0`.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge
                } else {
                    ApiError::BadRequest {
                        code: "INVALID_BODY",
                        message: rejection.body_text(),
                    }
                }
            })?;
        // Serde reads `2.0` as a float only, so a body that needs it read as an integer gets
        // a second reading with its whole floats written as integers. Bodies that parse the
        // first time, every body our clients send, pay nothing for this.
        let parsed = match axum::Json::<T>::from_bytes(&body) {
            Err(JsonRejection::JsonDataError(first)) => match whole_floats_as_integers(&body) {
                Some(rewritten) => axum::Json::<T>::from_bytes(&rewritten),
                None => Err(first.into()),
            },
            parsed => parsed,
        };
        parsed
            .map(|axum::Json(value)| Self(value))
            .map_err(|rejection| match rejection {
                JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest {
                    code: "INVALID_JSON",
                    message: e.body_text(),
                },
                other => ApiError::unprocessable("INVALID_BODY", other.body_text()),
            })
    }
}

/// `application/json`, or any `application/*+json`, as axum's own `Json` accepts.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<mime::Mime>().ok())
        .is_some_and(|mime| {
            mime.type_() == "application"
                && (mime.subtype() == "json" || mime.suffix().is_some_and(|name| name == "json"))
        })
}

/// The body again with every float that has no fractional part (and fits a 64-bit integer)
/// written as an integer, or `None` when it holds no such float.
fn whole_floats_as_integers(body: &[u8]) -> Option<Vec<u8>> {
    fn rewrite(value: &mut serde_json::Value) -> bool {
        match value {
            serde_json::Value::Number(number) => {
                let whole = number
                    .as_f64()
                    .filter(|float| number.is_f64() && float.fract() == 0.0);
                // `as` saturates; a float outside the integer's range stays a float.
                let integer: Option<serde_json::Number> = whole.and_then(|float| {
                    if (-(2f64.powi(63))..2f64.powi(63)).contains(&float) {
                        Some((float as i64).into())
                    } else if (0.0..2f64.powi(64)).contains(&float) {
                        Some((float as u64).into())
                    } else {
                        None
                    }
                });
                integer.map(|integer| *number = integer).is_some()
            }
            serde_json::Value::Array(items) => items
                .iter_mut()
                .fold(false, |changed, item| rewrite(item) | changed),
            serde_json::Value::Object(fields) => fields
                .values_mut()
                .fold(false, |changed, field| rewrite(field) | changed),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(body).ok()?;
    rewrite(&mut value)
        .then(|| serde_json::to_vec(&value).ok())
        .flatten()
}

/// The client's address and user agent, recorded on sessions and used by rate limits.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for ClientInfo {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = ClientAddress::of(&parts.extensions);
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|agent| agent.chars().take(300).collect());
        Ok(Self { ip, user_agent })
    }
}

/// The client's address, as [`resolve_client_address`] found it for this request.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub IpAddr);

impl ClientAddress {
    pub fn of(extensions: &axum::http::Extensions) -> Option<IpAddr> {
        extensions
            .get::<Self>()
            .map(|Self(address)| *address)
            .or_else(|| {
                extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(address)| address.ip())
            })
    }
}

/// Who may name the client, and in which header (`shared::client_address`).
#[derive(Debug, Clone)]
pub struct ProxyRules {
    pub proxies: TrustedProxies,
    pub header: ForwardedHeader,
}

/// Layer: works out who the client is once per request (`shared::client_address`: the socket's
/// address, or what trusted proxies say it is) for every later layer and handler.
pub async fn resolve_client_address(
    axum::extract::State(rules): axum::extract::State<std::sync::Arc<ProxyRules>>,
    mut request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip());
    if let Some(peer) = peer {
        let values: Vec<&str> = request
            .headers()
            .get_all(rules.header.name())
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let client = rules.proxies.client(peer, rules.header, &values);
        request.extensions_mut().insert(ClientAddress(client));
    }
    next.run(request).await
}

/// The id of this request (set or propagated by the request-id layer).
#[derive(Debug, Clone, Default)]
pub struct RequestId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(
            parts
                .headers
                .get("x-request-id")
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        ))
    }
}
