//! Request ids, the one error shape, OpenAPI and CORS.

use serde_json::Value;

use crate::helpers::spawn_app;

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
