//! The catalogue over HTTP: an editor sets up a tour from an empty database, buyers find it,
//! and bad input, missing rights and deletions that bookings depend on are refused.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use reqwest::Method;
use serde_json::{Value, json};

use test_support::eventually;

use crate::helpers::{TestApp, access, error_code, spawn_app, spawn_workers};

/// An editor's calls to the catalogue.
pub struct Editor<'a> {
    pub app: &'a TestApp,
    pub token: String,
}

impl<'a> Editor<'a> {
    pub async fn new(app: &'a TestApp) -> Self {
        let pair = app.signed_up_as("EDITOR").await;
        Self {
            app,
            token: access(&pair).to_owned(),
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: &Value) -> reqwest::Response {
        self.app
            .send_json(method, path, body, Some(&self.token))
            .await
    }

    /// Sends and expects `status`, returning the body.
    pub async fn ok(&self, method: Method, path: &str, body: &Value, status: u16) -> Value {
        let response = self.send(method, path, body).await;
        assert_eq!(response.status(), status, "{path}");
        response.json().await.unwrap()
    }

    pub async fn venue(&self, city: &str, layout: Value) -> Value {
        let body = json!({
            "name": format!("{city} Comedy Club"),
            "address": "1 Stage Road",
            "city": city,
            "latitude": 19.07,
            "longitude": 72.87,
            "rules": {"age_limit": 18, "bag_policy": "small bags", "rules": ["No recording"]},
            "layout": layout,
        });
        self.ok(Method::POST, "/api/venues", &body, 201).await
    }

    pub async fn show(&self, title: &str, artist: &str, categories: &[&str]) -> Value {
        let body = json!({"title": title, "artist": artist, "categories": categories,
                          "description": "New material", "duration_minutes": 90,
                          "media": {"poster_url": "https://cdn.example.com/poster.jpg"}});
        self.ok(Method::POST, "/api/shows", &body, 201).await
    }

    pub async fn event(&self, show: &Value, venue: &Value) -> Value {
        let body = json!({"show_id": show["id"], "venue_id": venue["id"], "title": venue["city"]});
        self.ok(Method::POST, "/api/events", &body, 201).await
    }

    /// A draft showtime `days` from now, on sale from an hour ago, every section priced.
    pub async fn showtime(&self, event: &Value, venue: &Value, days: i64) -> Value {
        let starts = Utc::now() + Duration::days(days);
        let tiers: Vec<Value> = venue["sections"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| json!({"section_id": s["id"], "price_paise": 50_000 + 10_000 * i as i64}))
            .collect();
        let body = json!({"event_id": event["id"], "starts_at": starts,
                          "sale_starts_at": Utc::now() - Duration::hours(1), "sale_ends_at": starts,
                          "price_tiers": tiers});
        self.ok(Method::POST, "/api/showtimes", &body, 201).await
    }

    pub async fn publish(&self, showtime: &Value) -> Value {
        let path = format!(
            "/api/showtimes/{}/publish",
            showtime["id"].as_str().unwrap()
        );
        self.ok(Method::POST, &path, &json!({}), 200).await
    }

    /// A published show in `city`: venue, show, event and one showtime on sale.
    pub async fn show_on_sale(&self, title: &str, city: &str, days: i64) -> Value {
        let venue = self.venue(city, small_layout()).await;
        let show = self.show(title, "Some Comic", &[]).await;
        let event = self.event(&show, &venue).await;
        let showtime = self.showtime(&event, &venue, days).await;
        self.publish(&showtime).await;
        show
    }
}

pub fn small_layout() -> Value {
    json!({"sections": [{"name": "Floor", "generate": {"rows": "A-B", "seats": "1-5"}}]})
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_editor_sets_up_a_tour_and_buyers_find_it() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    editor
        .ok(
            Method::POST,
            "/api/categories",
            &json!({"name": "Stand-up Comedy"}),
            201,
        )
        .await;
    let layout = json!({
        "expected_capacity": 19 * 29 + 4,
        "sections": [
            {"name": "Stalls", "generate": {"rows": "A-T", "seats": "1-30", "skip_rows": ["I"],
             "skip_seats": [13], "kinds": [{"row": "A", "seats": "1-2", "kind": "ACCESSIBLE"}]}},
            {"name": "Box", "rows": [{"label": "BX", "seats": [
                {"number": 1}, {"number": 2}, {"number": 3, "kind": "AISLE"}, {"number": 4}]}]}
        ]
    });
    let venue = editor.venue("Mumbai", layout).await;
    assert_eq!(venue["capacity"], 19 * 29 + 4);
    assert_eq!(venue["sections"][0]["rows"], 19);
    assert_eq!(venue["rules"]["age_limit"], 18);

    let seat_map: Value = app
        .get(&format!(
            "/api/venues/{}/layout",
            venue["id"].as_str().unwrap()
        ))
        .await
        .json()
        .await
        .unwrap();
    let stalls = &seat_map["sections"][0];
    assert_eq!(stalls["rows"][0]["label"], "A");
    assert_eq!(stalls["rows"][0]["seats"][0]["kind"], "ACCESSIBLE");
    assert!(
        stalls["rows"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["label"] != "I")
    );
    assert!(
        stalls["rows"][0]["seats"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["number"] != 13)
    );

    let show = editor
        .show("Kamra Live", "Kunal Kamra", &["stand-up-comedy"])
        .await;
    let event = editor.event(&show, &venue).await;
    let starts = Utc::now() + Duration::days(10);
    let stalls_id = venue["sections"][0]["id"].clone();
    let box_id = venue["sections"][1]["id"].clone();
    let showtime = editor
        .ok(
            Method::POST,
            "/api/showtimes",
            &json!({"event_id": event["id"], "starts_at": starts,
                    "ends_at": starts + Duration::minutes(90),
                    "sale_starts_at": Utc::now() - Duration::minutes(5), "sale_ends_at": starts,
                    "max_seats_per_user": 6,
                    "price_tiers": [
                        {"section_id": stalls_id, "name": "Gold", "price_paise": 149_900, "allocated_capacity": 500},
                        {"section_id": box_id, "price_paise": 299_900}]}),
            201,
        )
        .await;
    assert_eq!(showtime["status"], "DRAFT");
    let showtime_id = showtime["id"].as_str().unwrap().to_owned();

    // A draft is invisible to buyers, visible to its editor.
    let path = format!("/api/showtimes/{showtime_id}");
    assert_eq!(app.get(&path).await.status(), 404);
    let listing: Value = app.shows("city=mumbai").await.json().await.unwrap();
    assert_eq!(listing["items"], json!([]));
    let seen: Value = app.get_as(&path, &editor.token).await.json().await.unwrap();
    assert_eq!(seen["price_tiers"][1]["name"], "Box");

    let published = editor.publish(&showtime).await;
    assert_eq!(published["status"], "ON_SALE");
    assert!(published["published_at"].is_string());
    let inventory: Vec<(String, i64)> = sqlx::query_as(
        "SELECT sec.name, count(*) FROM showtime_seats ss JOIN seat_sections sec ON sec.id = ss.section_id
         WHERE ss.showtime_id = $1::uuid GROUP BY sec.name ORDER BY sec.name",
    )
    .bind(&showtime_id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        inventory,
        [("Box".to_owned(), 4), ("Stalls".to_owned(), 500)]
    );
    // The allocation takes the best seats: none of row T (the back row) is on sale.
    let back_row: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM showtime_seats WHERE showtime_id = $1::uuid AND row_label = 'T'",
    )
    .bind(&showtime_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(back_row, 0);

    // Buyers find it and read everything the show page needs in one answer.
    let listing: Value = app
        .shows("city=MUMBAI&category=stand-up-comedy&q=kamr")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listing["items"].as_array().unwrap().len(), 1, "{listing}");
    let card = &listing["items"][0];
    assert_eq!(card["title"], "Kamra Live");
    assert_eq!(card["min_price_paise"], 149_900);
    assert_eq!(card["cities"], json!(["Mumbai"]));
    assert_eq!(card["poster_url"], "https://cdn.example.com/poster.jpg");
    assert!(
        card.get("description").is_none(),
        "a card carries only what a list needs"
    );

    let page: Value = app
        .show(show["id"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["categories"][0]["slug"], "stand-up-comedy");
    assert_eq!(page["events"][0]["venue"]["name"], "Mumbai Comedy Club");
    let tiers = &page["events"][0]["showtimes"][0]["price_tiers"];
    assert_eq!(tiers[0]["price_paise"], 149_900);
    assert_eq!(tiers[0]["allocated_capacity"], 500);

    // Availability counts per tier come from the published inventory.
    let availability: Value = app
        .get(&format!("/api/showtimes/{showtime_id}/availability"))
        .await
        .json()
        .await
        .unwrap();
    let totals: Vec<i64> = availability["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["available"].as_i64().unwrap())
        .collect();
    assert_eq!(totals, [500, 4]);

    // Published prices are what buyers pay: tiers no longer change.
    let response = editor
        .send(Method::PUT, &format!("{path}/price-tiers"), &json!([]))
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "SHOWTIME_PUBLISHED");
    // And the layout under it can no longer be replaced.
    let venue_path = format!("/api/venues/{}/layout", venue["id"].as_str().unwrap());
    let response = editor.send(Method::PUT, &venue_path, &small_layout()).await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "LAYOUT_IN_USE");
}

#[tokio::test]
async fn publishing_creates_exactly_the_layouts_fifty_thousand_seats() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let layout = json!({"expected_capacity": 50_000, "sections": [
        {"name": "Arena", "generate": {"rows": "1-100", "seats": "1-500"}}]});
    let venue = editor.venue("Delhi", layout).await;
    assert_eq!(venue["capacity"], 50_000);
    let show = editor.show("Stadium Night", "Big Comic", &[]).await;
    let event = editor.event(&show, &venue).await;
    let showtime = editor.showtime(&event, &venue, 30).await;
    editor.publish(&showtime).await;

    let (seats, distinct, sections): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT seat_id), count(DISTINCT section_id)
         FROM showtime_seats WHERE showtime_id = $1::uuid AND status = 'AVAILABLE'",
    )
    .bind(showtime["id"].as_str().unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!((seats, distinct, sections), (50_000, 50_000, 1));

    // Publishing twice is refused and adds nothing.
    let response = editor
        .send(
            Method::POST,
            &format!(
                "/api/showtimes/{}/publish",
                showtime["id"].as_str().unwrap()
            ),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "ALREADY_PUBLISHED");
    assert_eq!(count(&app, "showtime_seats").await, 50_000);
}

#[tokio::test]
async fn only_editors_change_the_catalogue() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let venue = editor.venue("Pune", small_layout()).await;
    let user = app.signed_up().await;
    let venue_path = format!("/api/venues/{}", venue["id"].as_str().unwrap());
    let writes = [
        (
            Method::POST,
            "/api/venues".to_owned(),
            json!({"name": "X", "city": "Pune"}),
        ),
        (
            Method::PATCH,
            venue_path.clone(),
            json!({"name": "Renamed"}),
        ),
        (Method::DELETE, venue_path.clone(), json!({})),
        (Method::POST, "/api/shows".to_owned(), json!({"title": "X"})),
        (
            Method::POST,
            "/api/categories".to_owned(),
            json!({"name": "X"}),
        ),
        (Method::POST, format!("{venue_path}/archive"), json!({})),
    ];
    for (method, path, body) in writes {
        let response = app
            .send_json(method.clone(), &path, &body, Some(access(&user)))
            .await;
        assert_eq!(response.status(), 403, "{method} {path}");
        assert_eq!(error_code(response).await, "FORBIDDEN");
        let response = app.send_json(method.clone(), &path, &body, None).await;
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    let page: Value = app.get(&venue_path).await.json().await.unwrap();
    assert_eq!(page["name"], "Pune Comedy Club");
    assert_eq!(count(&app, "shows").await, 0);

    let admin = app.signed_up_as("SUPER_ADMIN").await;
    let response = app
        .send_json(
            Method::PATCH,
            &venue_path,
            &json!({"name": "Renamed"}),
            Some(access(&admin)),
        )
        .await;
    assert_eq!(
        response.status(),
        200,
        "a super admin may do what an editor may"
    );
}

#[tokio::test]
async fn bad_catalogue_input_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let venue = editor.venue("Chennai", small_layout()).await;
    let show = editor.show("Fine Show", "A", &[]).await;
    let event = editor.event(&show, &venue).await;
    let section = venue["sections"][0]["id"].clone();
    let now = Utc::now();
    let later = now + Duration::days(5);
    let showtime = |overrides: Value| {
        let mut body = json!({"event_id": event["id"], "starts_at": later,
                              "sale_starts_at": now, "sale_ends_at": later,
                              "price_tiers": [{"section_id": section, "price_paise": 100}]});
        for (k, v) in overrides.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let cases = [
        (
            "/api/venues",
            json!({"name": "V", "city": "C", "layout": {"sections": [
            {"name": "S", "generate": {"rows": "A-C", "seats": "1-10"},
             "rows": [{"label": "B", "seats": [{"number": 1}]}]}]}}),
            "overlapping rows",
        ),
        (
            "/api/venues",
            json!({"name": "V", "city": "C", "layout": {"sections": [
            {"name": "S", "rows": [{"label": "A", "seats": [{"number": 4}, {"number": 4}]}]}]}}),
            "overlapping seats",
        ),
        (
            "/api/venues",
            json!({"name": "V", "city": "C", "layout": {"sections": [
            {"name": "S", "generate": {"rows": "A-B", "seats": "1-5"}},
            {"name": "s", "generate": {"rows": "A-B", "seats": "1-5"}}]}}),
            "duplicate section",
        ),
        (
            "/api/venues",
            json!({"name": "V", "city": "C", "layout": {"expected_capacity": 11, "sections": [
            {"name": "S", "generate": {"rows": "A-B", "seats": "1-5"}}]}}),
            "capacity mismatch",
        ),
        (
            "/api/venues",
            json!({"name": "V", "city": "C", "layout": {"sections": [
            {"name": "S", "generate": {"rows": "1-1000", "seats": "1-1000"}}]}}),
            "too many seats",
        ),
        (
            "/api/venues",
            json!({"name": " ", "city": "C"}),
            "blank name",
        ),
        (
            "/api/venues",
            json!({"name": "V\u{7}", "city": "C"}),
            "control character",
        ),
        (
            "/api/venues",
            json!({"name": "V", "city": "C", "latitude": 91, "longitude": 0}),
            "latitude",
        ),
        (
            "/api/shows",
            json!({"title": "T", "categories": ["no-such-category"]}),
            "unknown category",
        ),
        (
            "/api/shows",
            json!({"title": "T", "media": {"poster_url": "javascript:alert(1)"}}),
            "bad URL",
        ),
        (
            "/api/shows",
            json!({"title": "T", "duration_minutes": -5}),
            "negative duration",
        ),
        (
            "/api/events",
            json!({"show_id": show["id"], "venue_id": uuid::Uuid::new_v4()}),
            "unknown venue",
        ),
        (
            "/api/showtimes",
            showtime(json!({"price_tiers": [{"section_id": section, "price_paise": -1}]})),
            "negative price",
        ),
        (
            "/api/showtimes",
            showtime(json!({"ends_at": later - Duration::hours(1)})),
            "end before start",
        ),
        (
            "/api/showtimes",
            showtime(json!({"sale_starts_at": later + Duration::hours(1)})),
            "starts before its sale",
        ),
        (
            "/api/showtimes",
            showtime(json!({"starts_at": now - Duration::days(1),
            "sale_starts_at": now - Duration::days(2), "sale_ends_at": now - Duration::days(1)})),
            "in the past",
        ),
        (
            "/api/showtimes",
            showtime(json!({"event_id": uuid::Uuid::new_v4()})),
            "unknown event",
        ),
        (
            "/api/showtimes",
            showtime(
                json!({"price_tiers": [{"section_id": uuid::Uuid::new_v4(), "price_paise": 1}]}),
            ),
            "unknown section",
        ),
        (
            "/api/showtimes",
            showtime(
                json!({"price_tiers": [{"section_id": section, "price_paise": 1, "allocated_capacity": 11}]}),
            ),
            "over-allocated",
        ),
        (
            "/api/showtimes",
            showtime(
                json!({"price_tiers": [{"section_id": section, "price_paise": 1},
            {"section_id": section, "price_paise": 2}]}),
            ),
            "section priced twice",
        ),
    ];
    let before = (
        count(&app, "venues").await,
        count(&app, "seats").await,
        count(&app, "shows").await,
        count(&app, "events").await,
        count(&app, "showtimes").await,
        count(&app, "price_tiers").await,
    );
    for (path, body, what) in cases {
        let response = editor.send(Method::POST, path, &body).await;
        assert_eq!(response.status(), 422, "{what}");
        assert_eq!(error_code(response).await, "VALIDATION_FAILED", "{what}");
    }
    // Bodies of the wrong shape. Serde would read a struct from an array of its fields in
    // order; the document says object, and so does the server.
    for body in [
        json!({"name": "V", "city": "C", "colour": "red"}),
        json!({"name": "V", "city": "C", "rules": [null, []]}),
        json!({"name": "V", "city": "C", "layout": {"sections": [
            {"name": "S", "rows": [{"label": "A", "seats": [[4]]}]}]}}),
    ] {
        let response = editor.send(Method::POST, "/api/venues", &body).await;
        assert_eq!(response.status(), 422, "{body}");
        assert_eq!(error_code(response).await, "INVALID_BODY", "{body}");
    }
    let after = (
        count(&app, "venues").await,
        count(&app, "seats").await,
        count(&app, "shows").await,
        count(&app, "events").await,
        count(&app, "showtimes").await,
        count(&app, "price_tiers").await,
    );
    assert_eq!(before, after);

    // Unknown ids in the path are 404; listing parameters out of range are 4xx.
    let unknown = uuid::Uuid::new_v4();
    for path in [
        format!("/api/venues/{unknown}"),
        format!("/api/shows/{unknown}"),
        format!("/api/events/{unknown}"),
        format!("/api/showtimes/{unknown}"),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(error_code(response).await, "NOT_FOUND");
    }
    let response = editor
        .send(
            Method::PATCH,
            &format!("/api/shows/{unknown}"),
            &json!({"title": "X"}),
        )
        .await;
    assert_eq!(response.status(), 404);
    for query in [
        "limit=10000",
        "limit=0",
        "cursor=garbage",
        "sort=price",
        "from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z",
        "city=x&page=2",
    ] {
        let response = app.shows(query).await;
        assert!(
            response.status().is_client_error(),
            "{query}: {}",
            response.status()
        );
        error_code(response).await;
    }
    let response = app.venues("limit=101").await;
    assert_eq!(response.status(), 422);
    error_code(response).await;

    // A category name is taken once.
    editor
        .ok(
            Method::POST,
            "/api/categories",
            &json!({"name": "Improv"}),
            201,
        )
        .await;
    let response = editor
        .send(Method::POST, "/api/categories", &json!({"name": "Improv"}))
        .await;
    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "NAME_TAKEN");
}

#[tokio::test]
async fn what_bookings_depend_on_is_archived_not_deleted() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let venue = editor.venue("Kolkata", small_layout()).await;
    let show = editor.show("Booked Show", "A", &[]).await;
    let event = editor.event(&show, &venue).await;
    let showtime = editor.showtime(&event, &venue, 3).await;
    editor.publish(&showtime).await;
    let showtime_id = showtime["id"].as_str().unwrap();
    let buyer = app.signed_up().await;
    let _workers = spawn_workers(&app).await;
    let booked = app
        .client
        .post(app.url("/api/bookings"))
        .bearer_auth(access(&buyer))
        .header("Idempotency-Key", "catalogue-test-1")
        .json(&json!({"showtime_id": showtime_id, "section_id": venue["sections"][0]["id"], "quantity": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(booked.status(), 202);
    // The worker records the booking as it decides it.
    eventually!(count(&app, "bookings").await == 1);

    let refusals = [
        (format!("/api/showtimes/{showtime_id}"), "HAS_BOOKINGS"),
        (
            format!("/api/events/{}", event["id"].as_str().unwrap()),
            "HAS_BOOKINGS",
        ),
        (
            format!("/api/shows/{}", show["id"].as_str().unwrap()),
            "IN_USE",
        ),
        (
            format!("/api/venues/{}", venue["id"].as_str().unwrap()),
            "IN_USE",
        ),
    ];
    for (path, code) in &refusals {
        let response = app.delete_as(path, &editor.token).await;
        assert_eq!(response.status(), 409, "{path}");
        assert_eq!(error_code(response).await, *code);
    }
    assert_eq!(
        (
            count(&app, "showtimes").await,
            count(&app, "bookings").await
        ),
        (1, 1)
    );

    // Archiving hides the show from buyers; the booking stays.
    let listing: Value = app.shows("").await.json().await.unwrap();
    assert_eq!(listing["items"].as_array().unwrap().len(), 1);
    let path = format!("/api/shows/{}/archive", show["id"].as_str().unwrap());
    editor.ok(Method::POST, &path, &json!({}), 200).await;
    let listing: Value = app.shows("").await.json().await.unwrap();
    assert_eq!(listing["items"], json!([]));
    assert_eq!(app.show(show["id"].as_str().unwrap()).await.status(), 404);

    // What nothing depends on is deleted.
    let empty_show = editor.show("Never Toured", "B", &[]).await;
    let path = format!("/api/shows/{}", empty_show["id"].as_str().unwrap());
    assert_eq!(app.delete_as(&path, &editor.token).await.status(), 204);
    assert_eq!(app.get(&path).await.status(), 404);
    let draft = editor.showtime(&event, &venue, 4).await;
    let path = format!("/api/showtimes/{}", draft["id"].as_str().unwrap());
    assert_eq!(app.delete_as(&path, &editor.token).await.status(), 204);
    assert_eq!(count(&app, "price_tiers").await, 1);

    // A canceled showtime stops selling and stays canceled.
    let path = format!("/api/showtimes/{showtime_id}/cancel");
    let canceled = editor.ok(Method::POST, &path, &json!({}), 200).await;
    assert_eq!(canceled["status"], "CANCELED");
    let response = editor
        .send(
            Method::POST,
            &format!("/api/showtimes/{showtime_id}/publish"),
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 409);
    let moved: Result<sqlx::postgres::PgQueryResult, sqlx::Error> =
        sqlx::query("UPDATE showtimes SET status = 'ON_SALE' WHERE id = $1::uuid")
            .bind(showtime_id)
            .execute(&app.db)
            .await;
    assert!(
        moved.is_err(),
        "the database refuses to reopen a canceled showtime"
    );
}

#[tokio::test]
async fn discovery_filters_by_city_category_dates_artist_and_text() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    editor
        .ok(
            Method::POST,
            "/api/categories",
            &json!({"name": "Music"}),
            201,
        )
        .await;
    let mumbai = editor.venue("Mumbai", small_layout()).await;
    let pune = editor.venue("Pune", small_layout()).await;
    let a = editor.show("Midnight Jokes", "Zakir Khan", &[]).await;
    let b = editor.show("Sitar Evening", "Anoushka", &["music"]).await;
    for (show, venue, days) in [(&a, &mumbai, 2), (&a, &pune, 20), (&b, &pune, 5)] {
        let event = editor.event(show, venue).await;
        let showtime = editor.showtime(&event, venue, days).await;
        editor.publish(&showtime).await;
    }
    let titles = |listing: Value| -> Vec<String> {
        listing["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let find = |query: &'static str| {
        let app = &app;
        async move { titles(app.shows(query).await.json().await.unwrap()) }
    };
    assert_eq!(find("").await, ["Midnight Jokes", "Sitar Evening"]);
    assert_eq!(
        find("city=pune").await,
        ["Sitar Evening", "Midnight Jokes"],
        "by the soonest showtime in Pune"
    );
    assert_eq!(find("category=music").await, ["Sitar Evening"]);
    assert_eq!(find("artist=zakir%20khan").await, ["Midnight Jokes"]);
    assert_eq!(find("q=sita").await, ["Sitar Evening"]);
    assert_eq!(find("q=khan%20midnight").await, ["Midnight Jokes"]);
    assert_eq!(find("q=nothing-like-this").await, Vec::<String>::new());
    assert_eq!(
        find("sort=title").await,
        ["Midnight Jokes", "Sitar Evening"]
    );
    assert_eq!(
        find("sort=newest").await,
        ["Sitar Evening", "Midnight Jokes"]
    );
    let window = format!(
        "from={}&to={}",
        (Utc::now() + Duration::days(10)).format("%Y-%m-%dT%H:%M:%SZ"),
        (Utc::now() + Duration::days(30)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    let listing: Value = app.shows(&window).await.json().await.unwrap();
    assert_eq!(titles(listing.clone()), ["Midnight Jokes"]);
    assert_eq!(listing["items"][0]["cities"], json!(["Pune"]));

    let venues: Value = app.venues("city=pune").await.json().await.unwrap();
    assert_eq!(venues["items"][0]["name"], "Pune Comedy Club");
    assert_eq!(venues["items"].as_array().unwrap().len(), 1);
    let venues: Value = app.venues("q=%25").await.json().await.unwrap();
    assert_eq!(venues["items"], json!([]), "a % in the search is literal");
}

#[tokio::test]
async fn pages_have_no_duplicates_or_gaps_while_shows_are_added() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let venue = editor.venue("Goa", small_layout()).await;
    let mut expected = HashSet::new();
    for n in 0..12 {
        let show = editor.show(&format!("Show {n:02}"), "Comic", &[]).await;
        let event = editor.event(&show, &venue).await;
        let showtime = editor.showtime(&event, &venue, 1 + n).await;
        editor.publish(&showtime).await;
        expected.insert(show["id"].as_str().unwrap().to_owned());
    }
    for sort in ["date", "title", "newest"] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        let mut added = 0;
        loop {
            let mut path = format!("/api/shows?sort={sort}&limit=5");
            if let Some(cursor) = &cursor {
                path.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = app.get(&path).await.json().await.unwrap();
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].as_str().unwrap().to_owned()),
            );
            // Between pages, new shows land before and after the cursor.
            for title in [format!("Aaa {sort} {added}"), format!("Zzz {sort} {added}")] {
                let show = editor.show(&title, "Comic", &[]).await;
                let event = editor.event(&show, &venue).await;
                let showtime = editor.showtime(&event, &venue, 1 + added).await;
                editor.publish(&showtime).await;
                added += 1;
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => break,
            }
        }
        let unique: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!(unique.len(), seen.len(), "{sort}: no show twice");
        assert!(
            expected.is_subset(&unique),
            "{sort}: every show that was there all along appears"
        );
    }
}

#[tokio::test]
async fn events_list_by_show_venue_city_and_dates_page_by_page() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let pune = editor.venue("Pune", small_layout()).await;
    let goa = editor.venue("Goa", small_layout()).await;
    let tour = editor.show("Touring Show", "A Comic", &[]).await;
    let other = editor.show("Other Show", "B Comic", &[]).await;
    let mut events = Vec::new();
    for (show, venue, days) in [(&tour, &pune, 3), (&tour, &goa, 10), (&other, &pune, 20)] {
        let event = editor.event(show, venue).await;
        let showtime = editor.showtime(&event, venue, days).await;
        editor.publish(&showtime).await;
        events.push(event["id"].as_str().unwrap().to_owned());
    }
    // An event whose only showtime is a draft is not listed.
    let draft = editor.event(&other, &goa).await;
    editor.showtime(&draft, &goa, 5).await;

    let ids = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|event| event["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let app = &app;
    let list = |query: String| async move {
        let response = app.events(&query).await;
        assert_eq!(response.status(), 200, "{query}");
        response.json::<Value>().await.unwrap()
    };
    let all = list(String::new()).await;
    assert_eq!(ids(&all), events, "soonest first, drafts left out");
    assert_eq!(all["items"][0]["show_title"], "Touring Show");
    assert_eq!(all["items"][0]["venue_name"], pune["name"]);
    assert_eq!(all["items"][0]["showtimes"], 1);

    let tour_id = tour["id"].as_str().unwrap();
    assert_eq!(ids(&list(format!("show_id={tour_id}")).await), events[..2]);
    let pune_id = pune["id"].as_str().unwrap();
    assert_eq!(
        ids(&list(format!("venue_id={pune_id}")).await),
        [events[0].clone(), events[2].clone()]
    );
    assert_eq!(ids(&list("city=GOA".into()).await), events[1..2]);
    let window = format!(
        "from={}&to={}",
        (Utc::now() + Duration::days(5)).format("%Y-%m-%dT%H:%M:%SZ"),
        (Utc::now() + Duration::days(15)).format("%Y-%m-%dT%H:%M:%SZ")
    );
    assert_eq!(ids(&list(window).await), events[1..2]);
    // Empty parameters, as a form sends them, mean absent.
    assert_eq!(
        ids(&list("show_id=&city=&from=&limit=&cursor=".into()).await),
        events
    );

    let mut seen = Vec::new();
    let mut query = "limit=1".to_owned();
    loop {
        let page = list(query).await;
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => query = format!("limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, events, "one at a time, in order, nothing twice");

    for bad in [
        "limit=0",
        "cursor=garbage",
        "show_id=not-a-uuid",
        "to=2000-01-01T00:00:00Z&from=2001-01-01T00:00:00Z",
    ] {
        let response = app.events(bad).await;
        assert!(
            [400, 422].contains(&response.status().as_u16()),
            "{bad}: {}",
            response.status()
        );
    }
}

/// JSON Schema, and so the document, counts `90.0` and `2e1` as the integers 90 and 20; Python's
/// `json` writes a whole float that way. A fraction is still refused.
#[tokio::test]
async fn a_whole_number_written_as_a_float_is_an_integer() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let body = json!({"title": "Floats", "duration_minutes": 90.0, "refund_cutoff_hours": 2e1});
    let show = editor.ok(Method::POST, "/api/shows", &body, 201).await;
    assert_eq!(show["duration_minutes"], 90);
    assert_eq!(show["refund_cutoff_hours"], 20);

    let body = json!({"title": "Fractions", "duration_minutes": 90.5});
    let response = editor.send(Method::POST, "/api/shows", &body).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "INVALID_BODY");
}

/// A partial update changes what it names: an event's title stays unless the body sends one.
#[tokio::test]
async fn an_event_update_that_names_no_title_keeps_it() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let venue = editor.venue("Pune", small_layout()).await;
    let show = editor.show("Kept", "A", &[]).await;
    let event = editor.event(&show, &venue).await;
    let path = format!("/api/events/{}", event["id"].as_str().unwrap());

    // Serde would read the struct from an array of its fields: `[null]` cleared the title.
    let response = editor.send(Method::PATCH, &path, &json!([null])).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "INVALID_BODY");
    let kept = editor.ok(Method::PATCH, &path, &json!({}), 200).await;
    assert_eq!(kept["title"], "Pune");
    let renamed = editor
        .ok(
            Method::PATCH,
            &path,
            &json!({"title": "Pune, night two"}),
            200,
        )
        .await;
    assert_eq!(renamed["title"], "Pune, night two");
    let cleared = editor
        .ok(Method::PATCH, &path, &json!({"title": null}), 200)
        .await;
    assert_eq!(cleared["title"], Value::Null);
}
