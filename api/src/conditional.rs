//! Conditional reads: a client (a browser, a CDN) that sends back the `ETag` it holds in
//! `If-None-Match` is answered `304 Not Modified`, without the body, when its copy is still
//! the current answer. On the night the same catalogue pages are read again and again; most
//! of those reads then cost a few headers.
//!
//! Handlers tag what they send ([`crate::routes::cached_json`]); this layer only compares.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};

/// Answers 304 when a GET or HEAD names, in `If-None-Match`, the tag of the 200 it would get.
pub async fn not_modified(request: Request, next: Next) -> Response {
    let asked = matches!(*request.method(), Method::GET | Method::HEAD)
        .then(|| request.headers().get(header::IF_NONE_MATCH).cloned())
        .flatten();
    let response = next.run(request).await;
    let Some(asked) = asked else {
        return response;
    };
    let current = response.headers().get(header::ETAG);
    let unchanged = response.status() == StatusCode::OK
        && current.is_some_and(|current| {
            asked
                .to_str()
                .is_ok_and(|asked| names(asked, current.as_bytes()))
        });
    if !unchanged {
        return response;
    }
    let mut not_modified = Response::new(Body::empty());
    *not_modified.status_mut() = StatusCode::NOT_MODIFIED;
    copy_validators(response.headers(), not_modified.headers_mut());
    not_modified
}

/// Whether an `If-None-Match` value names `current`: `*`, or one of its tags, compared weakly
/// as RFC 9110 asks for this header (a `W/` prefix is ignored).
fn names(if_none_match: &str, current: &[u8]) -> bool {
    let current = current.strip_prefix(b"W/").unwrap_or(current);
    if_none_match.trim() == "*"
        || if_none_match.split(',').any(|tag| {
            let tag = tag.trim();
            tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == current
        })
}

/// The headers a 304 repeats from the 200 it stands for (RFC 9110, 15.4.5).
fn copy_validators(from: &HeaderMap, to: &mut HeaderMap) {
    for name in [
        header::ETAG,
        header::CACHE_CONTROL,
        header::VARY,
        header::CONTENT_LOCATION,
        header::EXPIRES,
    ] {
        for value in from.get_all(&name) {
            to.append(name.clone(), value.clone());
        }
    }
}
