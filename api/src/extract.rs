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

/// A JSON object body. Malformed JSON is 400 `INVALID_JSON`; a body of the wrong shape (not an
/// object, missing or unknown fields, wrong types) is 422 `INVALID_BODY`; a missing content
/// type is 415.
///
/// A number with no fractional part is an integer wherever one is expected, written `2` or
/// `2.0` or `2e0`: JSON Schema (and so our OpenAPI document) counts them the same value, and
/// clients such as Python's `json` write a whole float as `2.0`.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body(request, state, b'{', "an object").await.map(Self)
    }
}

/// A JSON body that is a list of objects (a showtime's price tiers), read as [`Json`] reads one.
pub struct JsonList<T>(pub Vec<T>);

/// Serde would read a struct from an array of its fields; a list item must be an object.
#[derive(serde::Deserialize)]
#[serde(transparent, bound = "T: DeserializeOwned")]
struct Objects<T>(#[serde(deserialize_with = "shared::validation::objects")] Vec<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonList<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        read_body::<S, Objects<T>>(request, state, b'[', "a list")
            .await
            .map(|Objects(items)| Self(items))
    }
}

/// The body as `T`, when it is JSON that opens with `opening` (`{` or `[`): serde would
/// otherwise also read a struct from an array of its fields, which the document does not allow.
async fn read_body<S: Send + Sync, T: DeserializeOwned>(
    request: Request,
    state: &S,
    opening: u8,
    shape: &str,
) -> Result<T, ApiError> {
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
    let first = body.iter().find(|byte| !byte.is_ascii_whitespace());
    if first.is_some_and(|&byte| matches!(byte, b'{' | b'[') && byte != opening) {
        return Err(ApiError::unprocessable(
            "INVALID_BODY",
            format!("the body must be {shape}"),
        ));
    }
    // Serde reads `2.0` as a float only. A body refused for a float where an integer belongs
    // is read again with its whole floats written as integers; every other body is read once.
    let parsed = match axum::Json::<T>::from_bytes(&body) {
        Err(JsonRejection::JsonDataError(refusal))
            if refusal.body_text().contains("invalid type: floating point") =>
        {
            match whole_floats_as_integers(&body) {
                Some(rewritten) => axum::Json::<T>::from_bytes(&rewritten),
                None => Err(refusal.into()),
            }
        }
        parsed => parsed,
    };
    parsed
        .map(|axum::Json(value)| value)
        .map_err(|rejection| match rejection {
            JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest {
                code: "INVALID_JSON",
                message: e.body_text(),
            },
            other => ApiError::unprocessable("INVALID_BODY", other.body_text()),
        })
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

/// The body's text again with every number that writes a whole value with a fraction or an
/// exponent (`90.0`, `2e1`, `-1.50e2`) written as that integer, digit for digit; `None` when
/// there is none. The text is rewritten, not re-encoded, so nothing else about the body
/// changes (a repeated key is still refused), and `0.99999999999999999` or `1e-400` stay as
/// they are: not integers.
fn whole_floats_as_integers(body: &[u8]) -> Option<Vec<u8>> {
    let mut rewritten = Vec::with_capacity(body.len());
    let mut changed = false;
    let mut in_string = false;
    let mut position = 0;
    while let Some(&byte) = body.get(position) {
        if in_string {
            rewritten.push(byte);
            match byte {
                b'\\' => {
                    rewritten.extend(body.get(position + 1));
                    position += 2;
                    continue;
                }
                b'"' => in_string = false,
                _ => {}
            }
            position += 1;
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'-' | b'0'..=b'9' => {
                let end = body[position..]
                    .iter()
                    .position(|c| !matches!(c, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
                    .map_or(body.len(), |length| position + length);
                let token = &body[position..end];
                match std::str::from_utf8(token).ok().and_then(whole_number) {
                    Some(integer) if integer.as_bytes() != token => {
                        rewritten.extend_from_slice(integer.as_bytes());
                        changed = true;
                    }
                    _ => rewritten.extend_from_slice(token),
                }
                position = end;
                continue;
            }
            _ => {}
        }
        rewritten.push(byte);
        position += 1;
    }
    changed.then_some(rewritten)
}

/// The integer a JSON number token writes, in plain digits, if it writes one that fits 64 bits.
fn whole_number(token: &str) -> Option<String> {
    let (sign, unsigned) = match token.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", token),
    };
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, exponent.parse::<i64>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) {
        return None;
    }
    // The value is `digits` times ten to the power `shift`.
    let digits = format!("{whole}{fraction}");
    let shift = exponent.checked_sub(i64::try_from(fraction.len()).ok()?)?;
    let integer = if shift >= 0 {
        // Beyond 20 digits no 64-bit integer is written; a long tail of zeros would only cost.
        if shift > 20 {
            return None;
        }
        format!("{digits}{}", "0".repeat(usize::try_from(shift).ok()?))
    } else {
        let dropped = usize::try_from(shift.unsigned_abs()).ok()?;
        let kept = digits.len().saturating_sub(dropped);
        if !digits[kept..].bytes().all(|b| b == b'0') {
            return None;
        }
        digits[..kept].to_owned()
    };
    let integer = integer.trim_start_matches('0');
    match integer {
        "" => Some("0".to_owned()),
        digits if digits.len() <= 20 => Some(format!("{sign}{digits}")),
        _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_rewritten_digit_for_digit_and_nothing_else_is() {
        for (token, integer) in [
            ("90.0", Some("90")),
            ("2e1", Some("20")),
            ("-1.50e2", Some("-150")),
            ("9007199254740993.0", Some("9007199254740993")),
            ("0e-400", Some("0")),
            ("90.5", None),
            ("0.99999999999999999", None),
            ("1e-400", None),
            ("1e400", None),
        ] {
            assert_eq!(whole_number(token).as_deref(), integer, "{token}");
        }
        let body = br#"{"a": 2.0, "b": "3.0", "c": [1e1, -0.5], "d": "\"4.0"}"#;
        assert_eq!(
            whole_floats_as_integers(body).unwrap(),
            br#"{"a": 2, "b": "3.0", "c": [10, -0.5], "d": "\"4.0"}"#
        );
        assert!(whole_floats_as_integers(br#"{"a": 2, "b": 0.5}"#).is_none());
    }
}
