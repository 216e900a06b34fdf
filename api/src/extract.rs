//! Request extractors whose failures come out in the one error shape with precise codes.

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{StatusCode, header, request::Parts},
};
use serde::de::DeserializeOwned;
use shared::client_address::{ForwardedHeader, TrustedProxies};

use crate::error::ApiError;

/// A JSON body. Malformed JSON is 400 `INVALID_JSON`; a body of the wrong shape (missing or
/// unknown fields, wrong types) is 422 `INVALID_BODY`; a missing content type is 415.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => {
                    ApiError::unprocessable("INVALID_BODY", e.body_text())
                }
                JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest {
                    code: "INVALID_JSON",
                    message: e.body_text(),
                },
                JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::PayloadTooLarge
                }
                other => ApiError::BadRequest {
                    code: "INVALID_BODY",
                    message: other.body_text(),
                },
            }),
        }
    }
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
