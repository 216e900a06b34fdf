//! Conditional reads: catalogue answers carry a tag and say who may keep them for how long,
//! and a client that sends the tag back is answered 304 while its copy is current.

use reqwest::{Method, Response};
use serde_json::json;
use test_support::fixtures;

use crate::{
    catalogue::Editor,
    helpers::{TestApp, access, spawn_app},
};

/// Every value of the header, joined as one list.
fn header(response: &Response, name: &str) -> String {
    let values: Vec<&str> = response
        .headers()
        .get_all(name)
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert!(!values.is_empty(), "no {name} header");
    values.join(", ")
}

async fn get_if_none_match(app: &TestApp, path: &str, tags: &str, token: Option<&str>) -> Response {
    let mut request = app.client.get(app.url(path)).header("if-none-match", tags);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_show_page_is_tagged_and_a_current_copy_is_answered_304() {
    let app = spawn_app().await;
    let editor = Editor::new(&app).await;
    let show = editor.show_on_sale("Tagged Show", "Pune", 3).await;
    let path = format!("/api/shows/{}", show["id"].as_str().unwrap());

    let first = app.get(&path).await;
    assert_eq!(first.status(), 200);
    let tag = header(&first, "etag");
    assert!(
        tag.len() == 34 && tag.starts_with('"') && tag.ends_with('"'),
        "a strong tag: {tag}"
    );
    // CACHE_TTL_DETAILS in .env.example is 5m.
    assert_eq!(header(&first, "cache-control"), "public, max-age=300");
    assert!(header(&first, "vary").contains("authorization"));
    let body = first.bytes().await.unwrap();
    assert_eq!(
        header(&app.get(&path).await, "etag"),
        tag,
        "the same answer from the process cache has the same tag"
    );

    for asked in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"another\", {tag}"),
        "*".to_owned(),
    ] {
        let response = get_if_none_match(&app, &path, &asked, None).await;
        assert_eq!(response.status(), 304, "If-None-Match: {asked}");
        assert_eq!(header(&response, "etag"), tag);
        assert_eq!(header(&response, "cache-control"), "public, max-age=300");
        let vary = header(&response, "vary");
        assert!(
            vary.contains("authorization") && vary.contains("accept-encoding"),
            "{vary}"
        );
        assert!(response.bytes().await.unwrap().is_empty());
    }
    let other = get_if_none_match(&app, &path, "\"another\"", None).await;
    assert_eq!(other.status(), 200);
    assert_eq!(other.bytes().await.unwrap(), body);

    // An edit makes the held copy stale: the next conditional read gets the new page.
    editor
        .ok(
            Method::PATCH,
            &path,
            &json!({"title": "Retitled Show"}),
            200,
        )
        .await;
    let changed = get_if_none_match(&app, &path, &tag, None).await;
    assert_eq!(changed.status(), 200);
    assert_ne!(header(&changed, "etag"), tag);
    let page: serde_json::Value = changed.json().await.unwrap();
    assert_eq!(page["title"], "Retitled Show");

    // An editor's view includes drafts: no cache may keep it, and it carries no tag.
    let as_editor = app.get_as(&path, &editor.token).await;
    assert_eq!(as_editor.status(), 200);
    assert_eq!(header(&as_editor, "cache-control"), "private, no-store");
    assert!(as_editor.headers().get("etag").is_none());
    let as_editor = get_if_none_match(&app, &path, "*", Some(&editor.token)).await;
    assert_eq!(as_editor.status(), 200, "nothing to revalidate against");
}

#[tokio::test]
async fn listings_availability_and_the_profile_say_how_long_they_may_be_kept() {
    let app = spawn_app().await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let availability = format!("/api/showtimes/{}/availability", showtime.showtime_id);
    let buyer = app.signed_up().await;
    let cases = [
        ("/api/shows", None, "public, max-age=60"),
        ("/api/venues", None, "public, max-age=60"),
        ("/api/categories", None, "public, max-age=600"),
        (availability.as_str(), None, "public, max-age=1"),
        ("/api/users/me", Some(access(&buyer)), "private, no-cache"),
    ];
    for (path, token, cache_control) in cases {
        let response = match token {
            Some(token) => app.get_as(path, token).await,
            None => app.get(path).await,
        };
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(header(&response, "cache-control"), cache_control, "{path}");
        let tag = header(&response, "etag");
        let again = get_if_none_match(&app, path, &tag, token).await;
        assert_eq!(again.status(), 304, "{path}");
        assert_eq!(header(&again, "cache-control"), cache_control, "{path}");
    }
}

#[tokio::test]
async fn only_a_200_becomes_a_304() {
    let app = spawn_app().await;
    let missing = format!("/api/shows/{}", uuid::Uuid::new_v4());
    let response = get_if_none_match(&app, &missing, "*", None).await;
    assert_eq!(response.status(), 404);
}
