//! The read cache across two API instances: each level is used, every write is seen on
//! the next read of the writer and, once its announcement arrives, of the other instance, and
//! reads keep working from Postgres when Redis is unreachable.

use reqwest::Method;
use serde_json::{Value, json};
use test_support::{eventually, fixtures};

use crate::{
    catalogue::{Editor, small_layout},
    helpers::{TestApp, access, closed_port, spawn_app, spawn_app_with},
};

async fn read(app: &TestApp, path: &str) -> (String, Value) {
    read_as(app, path, None).await
}

async fn read_as(app: &TestApp, path: &str, token: Option<&str>) -> (String, Value) {
    let response = match token {
        Some(token) => app.get_as(path, token).await,
        None => app.get(path).await,
    };
    assert_eq!(response.status(), 200, "{path}");
    let source = response.headers()["x-cache"].to_str().unwrap().to_owned();
    (source, response.json().await.unwrap())
}

/// Reads `path` from `app` until `done` holds. Invalidations reach other instances through
/// Redis pub/sub, which is asynchronous: this waits for the announcement, never for a TTL
/// (the shortest TTL here is a minute; the wait gives up after ten seconds).
async fn read_until(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> (String, Value) {
    eventually!("the read shows the change", {
        let (source, body) = read(app, path).await;
        done(&body).then_some((source, body))
    })
}

/// Waits until the instance listens for invalidations (its in-process level is used only then).
async fn warm(app: &TestApp, path: &str) {
    read_until(app, path, |_| true).await;
    eventually!(
        "served from the process cache",
        read(app, path).await.0 == "hit-process"
    );
}

#[tokio::test]
async fn writes_are_seen_through_both_levels_on_both_instances() {
    let first = spawn_app().await;
    let second = spawn_app_with(first.env.clone()).await;
    let editor = Editor::new(&first).await;
    let show = editor.show_on_sale("Cached Show", "Nagpur", 3).await;
    let path = format!("/api/shows/{}", show["id"].as_str().unwrap());

    // Both instances listen for invalidations before the first read.
    warm(&first, "/api/categories").await;
    warm(&second, "/api/categories").await;
    // Postgres, then this process; the other instance finds it in Redis, then in its process.
    let (source, _) = read(&first, &path).await;
    assert_eq!(source, "miss");
    warm(&first, &path).await;
    let (source, _) = read(&second, &path).await;
    assert_eq!(source, "hit-redis");
    warm(&second, &path).await;
    warm(&first, "/api/shows").await;
    warm(&second, "/api/shows").await;

    // The writer's next read is fresh at once.
    editor
        .ok(Method::PATCH, &path, &json!({"title": "Renamed Show"}), 200)
        .await;
    let (source, page) = read(&first, &path).await;
    assert_eq!(page["title"], "Renamed Show");
    assert_eq!(source, "miss");
    // The other instance drops its copy when the announcement arrives, and reads the new one.
    let (_, page) = read_until(&second, &path, |page| page["title"] != "Cached Show").await;
    assert_eq!(page["title"], "Renamed Show");
    read_until(&second, "/api/shows", |listing| {
        listing["items"][0]["title"] == "Renamed Show"
    })
    .await;

    // A write that changes another entity's page: renaming the venue shows on the show page.
    let venue_id = page["events"][0]["venue"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    warm(&second, &path).await;
    editor
        .ok(
            Method::PATCH,
            &format!("/api/venues/{venue_id}"),
            &json!({"name": "New Hall"}),
            200,
        )
        .await;
    read_until(&second, &path, |page| {
        page["events"][0]["venue"]["name"] == "New Hall"
    })
    .await;

    // A new show appears in the other instance's cached listing.
    editor.show_on_sale("Second Show", "Nagpur", 5).await;
    read_until(&second, "/api/shows", |listing| {
        listing["items"].as_array().unwrap().len() == 2
    })
    .await;
}

#[tokio::test]
async fn categories_and_venue_pages_are_cached_and_invalidated() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let category = editor
        .ok(
            Method::POST,
            "/api/categories",
            &json!({"name": "Improv"}),
            201,
        )
        .await;
    warm(&app, "/api/categories").await;
    editor
        .ok(
            Method::PUT,
            &format!("/api/categories/{}", category["id"].as_str().unwrap()),
            &json!({"name": "Improv Theatre"}),
            200,
        )
        .await;
    let (source, categories) = read(&app, "/api/categories").await;
    assert_eq!(
        (source.as_str(), &categories[0]["slug"]),
        ("miss", &json!("improv-theatre"))
    );

    let venue = editor.venue("Surat", small_layout()).await;
    let venue_path = format!("/api/venues/{}", venue["id"].as_str().unwrap());
    let layout_path = format!("{venue_path}/layout");
    warm(&app, &layout_path).await;
    let layout =
        json!({"sections": [{"name": "Floor", "generate": {"rows": "A-C", "seats": "1-4"}}]});
    editor.ok(Method::PUT, &layout_path, &layout, 200).await;
    let (source, seat_map) = read(&app, &layout_path).await;
    assert_eq!(source, "miss");
    assert_eq!(seat_map["capacity"], 12);
}

#[tokio::test]
async fn reads_answer_from_postgres_when_redis_is_unreachable() {
    let mut env = test_support::TestEnv::new().await;
    env.set("REDIS_URL", format!("redis://127.0.0.1:{}", closed_port()));
    let app = spawn_app_with(env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(2, 5)]).await;
    let show_id: uuid::Uuid = sqlx::query_scalar(
        "SELECT e.show_id FROM showtimes st JOIN events e ON e.id = st.event_id WHERE st.id = $1",
    )
    .bind(showtime.showtime_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    for path in [
        format!("/api/shows/{show_id}"),
        "/api/shows?city=pune".to_owned(),
        format!("/api/showtimes/{}", showtime.showtime_id),
        "/api/venues".to_owned(),
        "/api/categories".to_owned(),
    ] {
        for _ in 0..2 {
            let (source, body) = read(&app, &path).await;
            assert_eq!(source, "miss", "{path}: nothing is cached without Redis");
            assert!(!body.is_null());
        }
    }
    let (_, listing) = read(&app, "/api/shows?city=pune").await;
    assert_eq!(listing["items"][0]["title"], "Test Show");

    // Editors keep working too; the invalidation that cannot reach Redis is only logged.
    let editor = Editor::new(&app).await;
    editor
        .ok(
            Method::PATCH,
            &format!("/api/shows/{show_id}"),
            &json!({"title": "Still Works"}),
            200,
        )
        .await;
    let (_, page) = read(&app, &format!("/api/shows/{show_id}")).await;
    assert_eq!(page["title"], "Still Works");
}

#[tokio::test]
async fn a_users_profile_is_cached_and_fresh_after_each_change() {
    let first = spawn_app().await;
    let second = spawn_app_with(first.env.clone()).await;
    let pair = first.signed_up().await;
    let token = access(&pair);
    warm(&second, "/api/categories").await;
    eventually!(
        "the profile is served from the process cache",
        read_as(&first, "/api/users/me", Some(token)).await.0 == "hit-process"
    );
    let (source, _) = read_as(&second, "/api/users/me", Some(token)).await;
    assert_eq!(source, "hit-redis");

    let response = first.update_me(token, &json!({"name": "New Name"})).await;
    assert_eq!(response.status(), 200);
    let (source, me) = read_as(&first, "/api/users/me", Some(token)).await;
    assert_eq!((source.as_str(), &me["name"]), ("miss", &json!("New Name")));
    // The other instance drops its copy when the announcement arrives.
    eventually!(
        "the second instance shows the new name",
        read_as(&second, "/api/users/me", Some(token)).await.1["name"] == "New Name"
    );
}
