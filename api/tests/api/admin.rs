//! What a SUPER_ADMIN does to accounts, and the audit log that records it.

use serde_json::{Value, json};

use crate::helpers::{access, error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn admins_find_users_by_role_and_text_page_by_page() {
    let app = spawn_app().await;
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    let token = access(&admin);
    let editor = app.signed_up_as("EDITOR").await;
    for _ in 0..4 {
        app.signed_up().await;
    }

    let editors: Vec<Value> = app
        .admin_users(token, "role=EDITOR")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(editors.len(), 1);
    assert_eq!(editors[0]["id"], editor.id.to_string());
    let email = editor.email.as_str();
    let found: Vec<Value> = app
        .get_as(
            &format!("/api/admin/users?q={}", &email[..12].to_uppercase()),
            token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(found.len(), 1, "case-insensitive part of the email");
    let none: Vec<Value> = app.admin_users(token, "q=%25").await.json().await.unwrap();
    assert!(none.is_empty(), "a % is literal");

    let mut seen = Vec::new();
    let mut path = "/api/admin/users?limit=4".to_owned();
    loop {
        let page: Vec<Value> = app.get_as(&path, token).await.json().await.unwrap();
        seen.extend(page.iter().map(|u| u["id"].as_str().unwrap().to_owned()));
        if page.len() < 4 {
            break;
        }
        path = format!(
            "/api/admin/users?limit=4&before={}",
            page[3]["id"].as_str().unwrap()
        );
    }
    assert_eq!(seen.len(), 6);
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 6, "no user twice");

    for query in ["limit=0", "limit=201", "role=KING", "colour=red"] {
        let response = app.admin_users(token, query).await;
        assert!(response.status().is_client_error(), "{query}");
        error_code(response).await;
    }
    let response = app.admin_users(access(&editor), "").await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn a_disabled_account_is_locked_out_at_once_on_every_instance() {
    let app = spawn_app().await;
    let other_instance = spawn_app_with(app.env.clone()).await;
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    let user = app.signed_up().await;
    let user_id = &user.id.to_string();
    let email = user.email.as_str();
    // Warm the other instance's session check.
    assert_eq!(other_instance.me(access(&user)).await.status(), 200);

    let response = app.set_disabled(access(&admin), user_id, true).await;
    assert_eq!(response.status(), 204);

    for instance in [&app, &other_instance] {
        let response = instance.me(access(&user)).await;
        assert_eq!(response.status(), 401, "the access token stops working");
    }
    let response = app.refresh(&user.refresh).await;
    assert_eq!(response.status(), 401, "and the refresh token");
    let response = app.login(email, "a-long-password").await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "ACCOUNT_DISABLED");

    let response = app.set_disabled(access(&admin), user_id, false).await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.login(email, "a-long-password").await.status(), 200);

    let response = app.set_disabled(access(&admin), admin.id, true).await;
    assert_eq!(response.status(), 409);
    let response = app
        .set_disabled(access(&admin), uuid::Uuid::new_v4(), true)
        .await;
    assert_eq!(response.status(), 404);

    let entries: Vec<Value> = app
        .get_as(
            &format!("/api/admin/audit?resource_type=user&resource_id={user_id}"),
            access(&admin),
        )
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["user.enabled", "user.disabled"], "newest first");
    assert_eq!(entries[1]["before"], json!({"disabled": false}));
    assert_eq!(entries[1]["after"], json!({"disabled": true}));
    assert_eq!(entries[1]["actor_id"], admin.id.to_string());
    assert_eq!(entries[1]["ip"], "127.0.0.1");
    assert!(
        entries[1]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

#[tokio::test]
async fn the_audit_log_filters_and_cannot_be_changed() {
    let app = spawn_app().await;
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    let token = access(&admin);
    let mut users = Vec::new();
    for _ in 0..3 {
        let user = app.signed_up().await;
        let id = user.id.to_string();
        let response = app.change_role(token, &id, "EDITOR").await;
        assert_eq!(response.status(), 200);
        users.push(id);
    }
    let all: Vec<Value> = app
        .audit(token, "action=user.role_changed")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    let by_actor: Vec<Value> = app
        .get_as(
            &format!(
                "/api/admin/audit?actor_id={}&limit=2",
                &admin.id.to_string()
            ),
            token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_actor.len(), 2);
    let older: Vec<Value> = app
        .get_as(
            &format!("/api/admin/audit?before={}", by_actor[1]["id"]),
            token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(older.len(), 1);
    assert_eq!(older[0]["resource_id"], users[0].as_str());
    let future: Vec<Value> = app
        .audit(token, "from=2100-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert!(future.is_empty());
    assert_eq!(app.audit(token, "limit=501").await.status(), 422);

    for sql in [
        "UPDATE audit_log SET action = 'nothing'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let refused = sqlx::query(sql).execute(&app.db).await;
        assert!(refused.is_err(), "{sql} is refused");
    }
}
