//! Request ids, the one error shape, OpenAPI and CORS.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Value, json};
use test_support::TestEnv;

use crate::helpers::{error_code, spawn_app, spawn_app_with};

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

/// The served document is valid OpenAPI (checked by `openapi-spec-validator`, which
/// `scripts/test` installs and names in `BMS_PYTHON`), every reference in it resolves, and every
/// error answer it lists has the one error shape.
#[tokio::test]
async fn the_openapi_document_validates_and_every_error_has_the_error_shape() {
    let app = spawn_app().await;
    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();

    let mut references = Vec::new();
    collect_references(&document, &mut references);
    for reference in &references {
        let pointer = reference.strip_prefix('#').expect("a local reference");
        assert!(
            document.pointer(pointer).is_some(),
            "{reference} does not resolve"
        );
    }
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            for status in ["408", "500", "503"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            if operation.get("security").is_some() {
                assert!(responses.contains_key("401"), "{method} {path}: no 401");
            }
            for (status, response) in responses {
                if status.starts_with('4') || status == "500" {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }

    // The rules between fields (routes::openapi::with_cross_field_rules) reach their components.
    let schemas = &document["components"]["schemas"];
    for (component, keyword) in [
        ("NewBooking", "oneOf"),
        ("ProfileChange", "anyOf"),
        ("NewVenue", "allOf"),
        ("VenueChanges", "allOf"),
        ("CategoryInput", "if"),
    ] {
        assert!(
            schemas[component].get(keyword).is_some(),
            "{component} has no {keyword}"
        );
    }

    let file = std::env::temp_dir().join(format!("bms-openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, serde_json::to_vec(&document).unwrap()).unwrap();
    let python = std::env::var("BMS_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = std::process::Command::new(&python)
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("Python runs");
    let _ = std::fs::remove_file(&file);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the validator refused the document (scripts/test installs it and sets BMS_PYTHON):\n{said}"
    );
    assert!(!said.to_lowercase().contains("warn"), "{said}");
}

/// Every optional query parameter of every operation may be sent empty (`?city=`), as forms
/// and many clients send an unset field: it means absent. The document says so
/// (`allowEmptyValue`), and no operation refuses it.
#[tokio::test]
async fn empty_optional_query_parameters_mean_absent_everywhere() {
    let app = spawn_app().await;
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    let document: Value = app.get("/api/openapi.json").await.json().await.unwrap();
    let mut checked = 0;
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let optional: Vec<&str> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query" && p["required"] != true)
                .map(|p| {
                    assert_eq!(p["allowEmptyValue"], true, "{method} {path} {}", p["name"]);
                    p["name"].as_str().unwrap()
                })
                .collect();
            if optional.is_empty() || method != "get" {
                continue;
            }
            let query: Vec<String> = optional.iter().map(|name| format!("{name}=")).collect();
            let required: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| format!("{}={}", p["name"].as_str().unwrap(), uuid::Uuid::nil()))
                .collect();
            let url = format!(
                "{}?{}",
                path.replace("{kind}", "refund")
                    .replace("{id}", &uuid::Uuid::nil().to_string()),
                [query, required].concat().join("&")
            );
            let response = app.get_as(&url, &admin.access).await;
            let status = response.status().as_u16();
            assert!(
                ![400, 422].contains(&status),
                "GET {url}: {status} {}",
                response.text().await.unwrap()
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 12,
        "only {checked} operations with optional query parameters"
    );
}

/// Postgres refuses a NUL in text. Wherever a client's text carries one, the answer is a 422,
/// never a 500: a listing's filter, an admin's reason.
#[tokio::test]
async fn text_with_a_nul_is_refused_not_a_server_error() {
    let app = spawn_app().await;
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    for (path, token) in [
        ("/api/shows?city=Pu%00ne", None),
        ("/api/venues?city=Pu%00ne", None),
        ("/api/events?city=Pu%00ne", None),
        (
            "/api/admin/audit?action=user%00",
            Some(admin.access.as_str()),
        ),
        ("/api/admin/users?q=a%00b", Some(admin.access.as_str())),
    ] {
        let response = match token {
            Some(token) => app.get_as(path, token).await,
            None => app.get(path).await,
        };
        assert_eq!(response.status(), 422, "{path}");
        assert_eq!(error_code(response).await, "VALIDATION_FAILED", "{path}");
    }
}

fn collect_references(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                into.push(reference.clone());
            }
            map.values().for_each(|v| collect_references(v, into));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, into)),
        _ => {}
    }
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
