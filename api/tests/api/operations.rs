//! What operators watch and do: Prometheus metrics of the API and the workers, queue health,
//! and dead letters listed and replayed once their cause is fixed.

use std::collections::HashMap;

use serde_json::{Value, json};
use test_support::{TestEnv, eventually, fixtures};

use crate::helpers::{access, spawn_app_with, spawn_workers_with};

/// Parses Prometheus text format strictly enough to catch a malformed exposition: every line
/// is a comment or `name{labels} value`. Returns the samples.
fn samples(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "unclosed labels: {line}");
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

fn sum(samples: &HashMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            (series.as_str() == name || series.starts_with(&format!("{name}{{")))
                && labels.iter().all(|l| series.contains(l))
        })
        .map(|(_, value)| value)
        .sum()
}

#[tokio::test]
async fn the_api_and_the_workers_expose_prometheus_metrics_that_move() {
    let mut env = TestEnv::new().await;
    let stand_in = env.start_stand_in().await;
    let mut app = spawn_app_with(env).await;
    app.stand_in = stand_in;
    let (_workers, workers_port) = spawn_workers_with(&app.env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let buyers = fixtures::buyers(&app.db, &app.env.settings(), 1).await;

    let scrape = |url: String| {
        let client = app.client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            assert!(
                response.headers()["content-type"]
                    .to_str()
                    .unwrap()
                    .starts_with("text/plain")
            );
            samples(&response.text().await.unwrap())
        }
    };
    let before = scrape(app.url("/metrics")).await;
    for _ in 0..3 {
        app.get("/health/live").await;
    }
    app.show(uuid::Uuid::new_v4()).await;
    let booked = app
        .book_and_wait(&buyers[0], &json!({"showtime_id": showtime.showtime_id, "seat_ids": [showtime.sections[0].seat_ids[0]]}))
        .await;
    assert_eq!(booked["status"], "RESERVED");

    let after = scrape(app.url("/metrics")).await;
    let live = ["route=\"/health/live\"", "status=\"200\""];
    assert!(
        sum(&after, "http_requests_total", &live)
            >= sum(&before, "http_requests_total", &live) + 3.0
    );
    assert!(
        sum(
            &after,
            "http_requests_total",
            &["route=\"/api/shows/{id}\"", "status=\"404\""]
        ) >= 1.0
    );
    assert!(
        sum(
            &after,
            "http_request_duration_seconds_count",
            &["route=\"/api/bookings\""]
        ) >= 1.0
    );
    assert!(sum(&after, "cache_reads_total", &["level=\"database\""]) >= 1.0);

    let workers = scrape(format!("http://127.0.0.1:{workers_port}/metrics")).await;
    assert!(
        sum(
            &workers,
            "jobs_total",
            &["kind=\"reserve-seats\"", "outcome=\"processed\""]
        ) >= 1.0
    );
    assert!(sum(&workers, "reservations_total", &["outcome=\"reserved\""]) >= 1.0);
    assert!(
        sum(
            &workers,
            "job_duration_seconds_count",
            &["kind=\"reserve-seats\""]
        ) >= 1.0
    );
    assert!(sum(&workers, "reservation_lock_wait_seconds_count", &[]) >= 1.0);
    let queue = format!("queue=\"test-{}.reserve-seats\"", app.env.id);
    assert!(
        workers
            .keys()
            .any(|series| series.starts_with("queue_consumers{") && series.contains(&queue)),
        "{workers:?}"
    );
    let health = app
        .client
        .get(format!("http://127.0.0.1:{workers_port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_dead_letter_is_listed_and_replayed_to_success_once_its_cause_is_fixed() {
    let mut env = TestEnv::new().await;
    let stand_in = env.start_stand_in().await;
    let mut app = spawn_app_with(env).await;
    app.stand_in = stand_in;
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    let token = access(&admin);
    // Workers with a wrong Twilio credential: Twilio refuses, the job is dead-lettered.
    let mut broken = app.env.clone();
    broken.set("TWILIO_AUTH_TOKEN", "revoked-token");
    let (broken_workers, _) = spawn_workers_with(&broken).await;
    let phone = "+919812345670";
    let response = app
        .post_json("/api/auth/otp/request", &json!({"phone": phone}))
        .await;
    assert_eq!(response.status(), 202);

    let list = || async {
        let letters: Vec<Value> = app
            .dead_letters(token, "send-otp")
            .await
            .json()
            .await
            .unwrap();
        letters
    };
    eventually!(list().await.len() == 1);
    let letters = list().await;
    let letter = &letters[0];
    assert_eq!(letter["kind"], "send-otp");
    assert_eq!(letter["reason"], "rejected");
    let message_id = letter["message_id"].as_str().unwrap().to_owned();
    assert_eq!(letter["job"]["otp_request_id"], message_id.as_str());
    let again: Vec<Value> = app
        .dead_letters(token, "send-otp")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "listing leaves the letter where it is");
    assert!(app.texts_to(phone).await.is_empty());

    // The credential is fixed: workers with the right one replace the broken ones.
    broken_workers.cancel();
    let (_workers, _) = spawn_workers_with(&app.env).await;
    let response = app.replay_dead_letter(token, "send-otp", &message_id).await;
    assert_eq!(response.status(), 202);
    eventually!(app.texts_to(phone).await.len() == 1);
    let left: Vec<Value> = app
        .dead_letters(token, "send-otp")
        .await
        .json()
        .await
        .unwrap();
    assert!(left.is_empty());
    let response = app.replay_dead_letter(token, "send-otp", &message_id).await;
    assert_eq!(response.status(), 404, "replayed once");
    let response = app.dead_letters(token, "unknown-kind").await;
    assert_eq!(response.status(), 404);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'job.replayed'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn answers_carry_security_headers_and_https_only_in_production() {
    let app = crate::helpers::spawn_app().await;
    for path in ["/health/live", "/api/categories", "/no-such-route"] {
        let response = app.get(path).await;
        let headers = response.headers();
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert!(
            !headers.contains_key("strict-transport-security"),
            "not outside production"
        );
    }
    let mut env = TestEnv::new().await;
    env.as_production();
    let production = spawn_app_with(env).await;
    let response = production.get("/health/live").await;
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    let preflight = production
        .client
        .request(reqwest::Method::OPTIONS, production.url("/api/categories"))
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-origin"),
        "other origins are refused"
    );
}

#[tokio::test]
async fn with_an_operations_token_metrics_and_docs_are_closed_to_the_public() {
    let mut env = TestEnv::new().await;
    let token = "an-operations-token-of-at-least-32-chars";
    env.set("OPS_TOKEN", token);
    let app = spawn_app_with(env).await;
    let (_workers, workers_port) = spawn_workers_with(&app.env).await;
    let workers_metrics = format!("http://127.0.0.1:{workers_port}/metrics");

    for url in [
        app.url("/metrics"),
        app.url("/api/openapi.json"),
        app.url("/docs/"),
        workers_metrics.clone(),
    ] {
        let anonymous = app.client.get(&url).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{url}");
        let guessed = app
            .client
            .get(&url)
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(guessed.status(), 401, "{url}");
        let operator = app
            .client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(operator.status(), 200, "{url}");
    }
    // The API itself stays open.
    assert_eq!(app.get("/health").await.status(), 200);
}
