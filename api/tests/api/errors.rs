//! Request ids, the one error shape, OpenAPI and CORS.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use test_support::TestEnv;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn every_response_carries_a_generated_request_id() {
    let app = spawn_app().await;

    let response = app.get("/health/live").await;

    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

#[tokio::test]
async fn a_request_id_sent_by_the_client_is_kept() {
    let app = spawn_app().await;

    let response = app
        .client
        .get(format!("{}/no-such-route", app.address))
        .header("x-request-id", "client-chosen-id-42")
        .send()
        .await
        .unwrap();

    assert_eq!(response.headers()["x-request-id"], "client-chosen-id-42");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "client-chosen-id-42");
}

#[tokio::test]
async fn an_unknown_route_is_404_in_the_error_shape() {
    let app = spawn_app().await;

    let response = app.get("/api/nothing-here").await;

    assert_eq!(response.status(), 404);
    assert_eq!(response.headers()["content-type"], "application/json");
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "NOT_FOUND");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
    assert_eq!(body["error"]["request_id"], request_id);
}

#[tokio::test]
async fn a_wrong_method_is_405_in_the_error_shape_with_allow_kept() {
    let app = spawn_app().await;

    let response = app
        .client
        .delete(format!("{}/health", app.address))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 405);
    assert!(response.headers().contains_key("allow"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn the_openapi_document_and_swagger_ui_are_served() {
    let app = spawn_app().await;

    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["paths"]["/health"]["get"].is_object());
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());

    let ui = app.get("/docs/").await;
    assert_eq!(ui.status(), 200);
    assert!(ui.text().await.unwrap().contains("swagger"));
}

/// The document is built from the router, so every operation it lists is served: none answers
/// "route not found" or 405, whatever its parameters and whoever asks.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let paths = document["paths"].as_object().unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let url = path
            .replace("{kind}", "refund")
            .replace("{message_id}", "unknown")
            .replace("{id}", &uuid::Uuid::nil().to_string());
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .client
                .request(method.clone(), format!("{}{url}", app.address))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let body = response.text().await.unwrap();
            assert_ne!(status, 405, "{method} {path} is documented but not served");
            assert!(
                !body.contains("route not found"),
                "{method} {path} is documented but not served"
            );
            operations += 1;
        }
    }
    assert!(operations >= 79, "only {operations} operations documented");
}

#[tokio::test]
async fn cors_allows_only_the_configured_origin() {
    let app = spawn_app().await;
    let allowed = app.env.get("CORS_ORIGIN").to_owned();
    let preflight = |origin: String| {
        app.client
            .request(reqwest::Method::OPTIONS, format!("{}/health", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };

    let response = preflight(allowed.clone()).await.unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        allowed.as_str()
    );

    let response = preflight("https://evil.example".into()).await.unwrap();
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );
}

/// Every kind of error answer decodes for a client that accepts gzip, as browsers and Python's
/// requests do: its `content-encoding` matches its body. Rejections by the framework (path,
/// query, body, JSON), an unknown route, a wrong method, a body too large and a request too
/// slow are each rendered in the one error shape.
#[tokio::test]
async fn every_kind_of_error_decodes_for_a_client_that_accepts_gzip() {
    let mut env = TestEnv::new().await;
    env.set("REQUEST_BODY_LIMIT_BYTES", "1024")
        .set("REQUEST_TIMEOUT", "1s");
    let app = spawn_app_with(env).await;
    let client = reqwest::Client::builder().gzip(true).build().unwrap();
    let url = |path: &str| format!("{}{path}", app.address);
    let json_body = |body: String| {
        client
            .post(url("/api/auth/login"))
            .header("content-type", "application/json")
            .body(body)
    };
    // A body that starts and never ends: the server's timeout answers it.
    let stalled = futures::stream::once(async { Ok::<_, std::io::Error>(Bytes::from("{")) })
        .chain(futures::stream::pending());
    let cases = [
        ("path", client.get(url("/api/venues/not-a-uuid")), 400),
        ("query", client.get(url("/api/shows?sort=bogus")), 400),
        ("json syntax", json_body("{".into()), 400),
        (
            "json shape",
            client
                .post(url("/api/auth/login"))
                .json(&json!({"email": 1})),
            422,
        ),
        (
            "content type",
            client.post(url("/api/auth/login")).body("{}"),
            415,
        ),
        ("route", client.get(url("/api/nothing-here")), 404),
        ("method", client.delete(url("/health")), 405),
        ("size", json_body(" ".repeat(4096)), 413),
        (
            "timeout",
            client
                .post(url("/api/auth/login"))
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(stalled))
                .timeout(Duration::from_secs(30)),
            408,
        ),
    ];
    for (kind, request, status) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{kind}");
        let body: Value = response
            .json()
            .await
            .unwrap_or_else(|error| panic!("{kind}: the error does not decode: {error}"));
        assert!(body["error"]["code"].is_string(), "{kind}: {body}");
    }
}
