//! Roles: who may change them, when a change applies, and the role guard on routes.

use axum::{Router, middleware, routing::get};
use serde_json::Value;
use shared::accounts::Role;

use crate::helpers::{access, error_code, spawn_app};

#[tokio::test]
async fn only_a_super_admin_changes_roles_and_the_change_applies_at_once() {
    let app = spawn_app().await;
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    let editor = app.signed_up_as("EDITOR").await;
    let user = app.signed_up().await;
    let user_id = &user.id.to_string();

    for caller in [&user, &editor] {
        let response = app.change_role(access(caller), user_id, "EDITOR").await;
        assert_eq!(response.status(), 403);
        assert_eq!(error_code(response).await, "FORBIDDEN");
    }

    let response = app
        .change_role(access(&admin), user_id, "SUPER_ADMIN")
        .await;
    assert_eq!(response.status(), 200);
    let changed: Value = response.json().await.unwrap();
    assert_eq!(changed["role"], "SUPER_ADMIN");

    // The same access token, issued when the user was a USER, now carries the new role.
    let editor_id = &editor.id.to_string();
    let response = app.change_role(access(&user), editor_id, "USER").await;
    assert_eq!(response.status(), 200);

    let audit: Vec<(String, Value, Value)> =
        sqlx::query_as("SELECT action, before, after FROM audit_log WHERE resource_id = $1")
            .bind(user_id)
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, "user.role_changed");
    assert_eq!(audit[0].1["role"], "USER");
    assert_eq!(audit[0].2["role"], "SUPER_ADMIN");
}

#[tokio::test]
async fn role_changes_refuse_bad_input() {
    let app = spawn_app().await;
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    let admin_id = &admin.id.to_string();

    let own = app.change_role(access(&admin), admin_id, "USER").await;
    assert_eq!(own.status(), 409);
    let unknown_user = app
        .change_role(access(&admin), &uuid::Uuid::new_v4().to_string(), "USER")
        .await;
    assert_eq!(unknown_user.status(), 404);
    let bad_role = app
        .change_role(access(&admin), &uuid::Uuid::new_v4().to_string(), "KING")
        .await;
    assert_eq!(bad_role.status(), 422);
    let bad_id = app.change_role(access(&admin), "not-a-uuid", "USER").await;
    assert_eq!(bad_id.status(), 400);
    assert_eq!(error_code(bad_id).await, "BAD_REQUEST");
}

/// The role guard as catalogue routes use it: an EDITOR route refuses a USER.
#[tokio::test]
async fn an_editor_route_refuses_a_user_and_admits_editors_and_admins() {
    let app = spawn_app().await;
    let state = api::state::AppState::new(app.env.settings()).unwrap();
    let guard = api::auth::RoleGuard::new(&state, Role::Editor);
    let router = Router::new()
        .route("/editor-only", get(|| async { "ok" }))
        .route_layer(middleware::from_fn_with_state(
            guard,
            api::auth::require_role,
        ))
        .layer(middleware::from_fn(api::error::render_errors));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let call = |token: Option<String>| {
        let mut request = app.client.get(format!("http://{address}/editor-only"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    assert_eq!(call(None).await.unwrap().status(), 401);
    let user = app.signed_up().await;
    assert_eq!(
        call(Some(access(&user).to_owned())).await.unwrap().status(),
        403
    );
    let editor = app.signed_up_as("EDITOR").await;
    assert_eq!(
        call(Some(access(&editor).to_owned()))
            .await
            .unwrap()
            .status(),
        200
    );
    let admin = app.signed_up_as("SUPER_ADMIN").await;
    assert_eq!(
        call(Some(access(&admin).to_owned()))
            .await
            .unwrap()
            .status(),
        200
    );
}
