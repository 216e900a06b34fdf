//! Registration, password login, token rotation, device sessions and profile changes.

use serde_json::{Value, json};
use test_support::{TestEnv, eventually};

use crate::helpers::{access, error_code, spawn_app, spawn_app_with};

#[tokio::test]
async fn register_then_read_the_profile() {
    let app = spawn_app().await;

    let response = app.register("  Asha@Example.com ", "a-long-password").await;

    assert_eq!(response.status(), 201);
    let pair: Value = response.json().await.unwrap();
    assert_eq!(pair["token_type"], "Bearer");
    assert!(pair["refresh_token"].as_str().unwrap().len() >= 40);
    let me: Value = app.me(access(&pair)).await.json().await.unwrap();
    assert_eq!(me["email"], "asha@example.com");
    assert_eq!(me["role"], "USER");
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE email = $1")
        .bind("asha@example.com")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "stored as argon2id");
}

#[tokio::test]
async fn an_access_token_carries_ids_and_role_but_no_name_or_email() {
    let app = spawn_app().await;
    let pair: Value = app
        .register("asha@example.com", "a-long-password")
        .await
        .json()
        .await
        .unwrap();

    let payload = access(&pair).split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    let mut names: Vec<&str> = claims
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["exp", "iat", "iss", "role", "sid", "sub"]);
}

#[tokio::test]
async fn a_duplicate_email_is_refused_whatever_its_case() {
    let app = spawn_app().await;
    assert_eq!(
        app.register("asha@example.com", "a-long-password")
            .await
            .status(),
        201
    );

    let response = app.register("ASHA@example.com", "another-password").await;

    assert_eq!(response.status(), 409);
    assert_eq!(error_code(response).await, "EMAIL_TAKEN");
}

#[tokio::test]
async fn login_failures_do_not_reveal_whether_the_email_exists() {
    let app = spawn_app().await;
    app.register("asha@example.com", "a-long-password").await;

    let wrong_password = app.login("asha@example.com", "not-the-password").await;
    let unknown_email = app.login("nobody@example.com", "not-the-password").await;

    assert_eq!(wrong_password.status(), 401);
    assert_eq!(unknown_email.status(), 401);
    let a: Value = wrong_password.json().await.unwrap();
    let b: Value = unknown_email.json().await.unwrap();
    assert_eq!(a["error"]["code"], "INVALID_CREDENTIALS");
    assert_eq!(a["error"]["code"], b["error"]["code"]);
    assert_eq!(a["error"]["message"], b["error"]["message"]);
}

#[tokio::test]
async fn repeated_login_failures_are_refused_for_a_while() {
    let mut env = TestEnv::new().await;
    env.set("LOGIN_MAX_FAILURES_PER_ACCOUNT", "3");
    let app = spawn_app_with(env).await;
    app.register("asha@example.com", "a-long-password").await;
    for _ in 0..3 {
        assert_eq!(
            app.login("asha@example.com", "wrong-password")
                .await
                .status(),
            401
        );
    }

    let response = app.login("asha@example.com", "a-long-password").await;

    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0);
    assert_eq!(error_code(response).await, "TOO_MANY_ATTEMPTS");
}

#[tokio::test]
async fn a_hash_made_with_older_parameters_is_upgraded_at_login() {
    let env = TestEnv::new().await;
    let old = spawn_app_with(env).await;
    old.register("asha@example.com", "a-long-password").await;
    let mut env = TestEnv::new().await;
    // The same database, now with a higher cost.
    env.set("DATABASE_URL", old.env.get("DATABASE_URL"))
        .set("ARGON2_ITERATIONS", "2");
    let new = spawn_app_with(env).await;

    assert_eq!(
        new.login("asha@example.com", "a-long-password")
            .await
            .status(),
        200
    );

    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&old.db)
        .await
        .unwrap();
    assert!(hash.contains("t=2"), "{hash}");
    assert_eq!(
        new.login("asha@example.com", "a-long-password")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_refresh_token_is_rotated_and_its_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let first = app.signed_up().await;

    let second: Value = app.refresh(&first.refresh).await.json().await.unwrap();
    assert_ne!(second["refresh_token"], first.refresh.as_str());
    assert_eq!(second["session_id"], first.session_id.to_string());
    assert_eq!(app.me(access(&second)).await.status(), 200);

    // The second token is used in turn; the first one again now means someone else has it.
    let third: Value = app
        .refresh(second["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    let reuse = app.refresh(&first.refresh).await;
    assert_eq!(reuse.status(), 401);
    assert_eq!(error_code(reuse).await, "REFRESH_TOKEN_REUSED");

    // The whole family is gone: the latest refresh token and the session's access token.
    let latest = app.refresh(third["refresh_token"].as_str().unwrap()).await;
    assert_eq!(latest.status(), 401);
    assert_eq!(app.me(access(&third)).await.status(), 401);
}

#[tokio::test]
async fn two_tabs_refreshing_with_one_token_at_once_both_stay_signed_in() {
    let app = spawn_app().await;
    let first = app.signed_up().await;
    let token = &first.refresh;

    let answers = futures::future::join_all((0..6).map(|_| app.refresh(token))).await;
    let mut pairs = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 200, "every tab gets a pair");
        pairs.push(answer.json::<Value>().await.unwrap());
    }

    assert!(
        pairs
            .iter()
            .all(|pair| pair["refresh_token"] == pairs[0]["refresh_token"]),
        "one successor for all of them"
    );
    assert_ne!(pairs[0]["refresh_token"], first.refresh.as_str());
    for pair in &pairs {
        assert_eq!(app.me(access(pair)).await.status(), 200);
    }
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM refresh_tokens WHERE session_id = $1::uuid AND used_at IS NULL",
    )
    .bind(first.session_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(live, 1, "one live token in the family");
    // And the shared successor rotates as usual.
    let next = app
        .refresh(pairs[0]["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(next.status(), 200);
}

#[tokio::test]
async fn the_replaced_token_after_the_grace_still_revokes_the_session() {
    let app = spawn_app().await;
    let first = app.signed_up().await;
    let second: Value = app.refresh(&first.refresh).await.json().await.unwrap();
    // The first token was replaced longer ago than the grace allows.
    sqlx::query(
        "UPDATE refresh_tokens SET used_at = now() - interval '1 hour'
         WHERE session_id = $1::uuid AND used_at IS NOT NULL",
    )
    .bind(first.session_id)
    .execute(&app.db)
    .await
    .unwrap();

    let reuse = app.refresh(&first.refresh).await;

    assert_eq!(reuse.status(), 401);
    assert_eq!(error_code(reuse).await, "REFRESH_TOKEN_REUSED");
    assert_eq!(
        app.refresh(second["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401,
        "the whole family is revoked"
    );
}

#[tokio::test]
async fn a_made_up_refresh_token_is_refused() {
    let app = spawn_app().await;

    let response = app.refresh("not-a-token-we-issued").await;

    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "INVALID_REFRESH_TOKEN");
}

#[tokio::test]
async fn logout_ends_the_session() {
    let app = spawn_app().await;
    let pair = app.signed_up().await;

    let response = app.logout(access(&pair)).await;

    assert_eq!(response.status(), 204);
    assert_eq!(app.me(access(&pair)).await.status(), 401);
    assert_eq!(app.refresh(&pair.refresh).await.status(), 401);
}

#[tokio::test]
async fn sessions_are_listed_and_revoked_per_device() {
    let app = spawn_app().await;
    app.register("asha@example.com", "a-long-password").await;
    let laptop: Value = app
        .login("asha@example.com", "a-long-password")
        .await
        .json()
        .await
        .unwrap();
    let phone: Value = app
        .login("asha@example.com", "a-long-password")
        .await
        .json()
        .await
        .unwrap();

    let sessions: Vec<Value> = app.sessions(access(&laptop)).await.json().await.unwrap();
    assert_eq!(sessions.len(), 3, "register and two logins");
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], laptop["session_id"]);
    assert_eq!(current[0]["device_name"], "test phone");
    assert_eq!(current[0]["ip"], "127.0.0.1");

    let revoke = app
        .end_session(access(&laptop), phone["session_id"].as_str().unwrap())
        .await;
    assert_eq!(revoke.status(), 204);
    assert_eq!(app.me(access(&phone)).await.status(), 401);

    let others: Value = app
        .end_other_sessions(access(&laptop))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(others["revoked"], 1);
    assert_eq!(app.me(access(&laptop)).await.status(), 200);
}

#[tokio::test]
async fn another_users_session_is_not_found() {
    let app = spawn_app().await;
    let asha = app.signed_up().await;
    let ravi = app.signed_up().await;

    let response = app.end_session(access(&asha), ravi.session_id).await;

    assert_eq!(response.status(), 404);
    assert_eq!(error_code(response).await, "NOT_FOUND");
    assert_eq!(app.me(access(&ravi)).await.status(), 200);
}

#[tokio::test]
async fn the_profile_can_be_changed_but_not_to_a_taken_email() {
    let app = spawn_app().await;
    app.register("taken@example.com", "a-long-password").await;
    let pair = app.signed_up().await;
    let (app, token) = (&app, access(&pair));
    let patch = |body: Value| async move { app.update_me(token, &body).await };

    let renamed: Value = patch(json!({"name": "  Asha R  "}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(renamed["name"], "Asha R");

    let taken = patch(json!({"email": "Taken@example.com"})).await;
    assert_eq!(taken.status(), 409);
    assert_eq!(error_code(taken).await, "EMAIL_TAKEN");

    let empty = patch(json!({})).await;
    assert_eq!(empty.status(), 422);
}

#[tokio::test]
async fn requests_without_valid_credentials_are_401() {
    let app = spawn_app().await;
    for header in ["", "Bearer", "Bearer not.a.jwt", "Basic dXNlcjpwYXNz"] {
        let mut request = app.client.get(app.url("/api/users/me"));
        if !header.is_empty() {
            request = request.header("authorization", header);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{header:?}");
        assert_eq!(error_code(response).await, "UNAUTHORIZED");
    }
}

#[tokio::test]
async fn bad_input_gets_a_precise_4xx_in_the_error_shape_and_writes_nothing() {
    let app = spawn_app().await;
    let raw = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = app.client.post(app.url("/api/auth/register")).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        request.send()
    };
    let json = Some("application/json");

    let cases = [
        (raw("{not json", json).await.unwrap(), 400, "INVALID_JSON"),
        (
            raw(r#"{"email": "a@example.com"}"#, json).await.unwrap(),
            422,
            "INVALID_BODY",
        ),
        (
            raw(
                r#"{"name":"A","email":"a@example.com","password":"a-long-password","admin":true}"#,
                json,
            )
            .await
            .unwrap(),
            422,
            "INVALID_BODY",
        ),
        (
            raw(
                r#"{"name":"A","email":"not-an-email","password":"a-long-password"}"#,
                json,
            )
            .await
            .unwrap(),
            422,
            "VALIDATION_FAILED",
        ),
        (
            raw(
                r#"{"name":"A","email":"a@example.com","password":"short"}"#,
                json,
            )
            .await
            .unwrap(),
            422,
            "VALIDATION_FAILED",
        ),
        (
            raw(
                r#"{"name":"A","email":"a@example.com","password":"a-long-password"}"#,
                None,
            )
            .await
            .unwrap(),
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];
    for (response, status, code) in cases {
        assert_eq!(response.status(), status);
        assert_eq!(error_code(response).await, code);
    }
    let long_name = "x".repeat(101);
    let response = app
        .post_json(
            "/api/auth/register",
            &json!({"name": long_name, "email": "a@example.com", "password": "a-long-password"}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let huge = "x".repeat(300 * 1024);
    let response = app
        .post_json(
            "/api/auth/register",
            &json!({"name": huge, "email": "a@example.com", "password": "a-long-password"}),
        )
        .await;
    assert_eq!(response.status(), 413);
    assert_eq!(error_code(response).await, "PAYLOAD_TOO_LARGE");

    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(users, 0, "no bad request wrote anything");
}

#[tokio::test]
async fn a_logout_on_one_instance_ends_the_session_on_another_at_once() {
    let mut env = TestEnv::new().await;
    // Only the announcement through Redis can explain a prompt 401 on the other instance.
    env.set("AUTH_SESSION_CACHE_TTL", "1h");
    let first = spawn_app_with(env.clone()).await;
    let second = spawn_app_with(env).await;
    let pair = first.signed_up().await;
    assert_eq!(second.me(access(&pair)).await.status(), 200);

    let logout = first.logout(access(&pair)).await;
    assert_eq!(logout.status(), 204);

    eventually!(
        "the other instance refuses the signed-out session",
        second.me(access(&pair)).await.status() == 401
    );
}

/// Sessions are not looked up per request: each instance learns what changed from pushes and,
/// should a push be lost, from Postgres every AUTH_SESSION_CACHE_TTL. A revocation nobody
/// announced still ends the session within that bound.
#[tokio::test]
async fn a_revocation_nobody_announced_still_ends_the_session_within_the_sync_interval() {
    let mut env = TestEnv::new().await;
    env.set("AUTH_SESSION_CACHE_TTL", "1s");
    let app = spawn_app_with(env).await;
    let pair = app.signed_up().await;
    assert_eq!(app.me(access(&pair)).await.status(), 200);

    sqlx::query(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE id = $1::uuid",
    )
    .bind(pair.session_id)
    .execute(&app.db)
    .await
    .unwrap();

    eventually!(app.me(access(&pair)).await.status() == 401);
}

#[tokio::test]
async fn a_user_keeps_their_own_preferences() {
    let app = spawn_app().await;
    let asha = app.signed_up().await;
    let ravi = app.signed_up().await;

    let defaults: Value = app.preferences(access(&asha)).await.json().await.unwrap();
    assert_eq!(
        defaults,
        json!({"default_city": null, "language": "en",
               "notifications": {"email": true, "sms": true, "offers": false}})
    );

    let chosen = json!({"default_city": "  Pune ", "language": "hi-IN",
                        "notifications": {"email": true, "sms": false, "offers": true}});
    let response = app.set_preferences(access(&asha), &chosen).await;
    assert_eq!(response.status(), 200);
    let saved: Value = app.preferences(access(&asha)).await.json().await.unwrap();
    assert_eq!(saved["default_city"], "Pune");
    assert_eq!(saved["language"], "hi-IN");
    assert_eq!(saved["notifications"]["sms"], false);
    assert_eq!(saved["notifications"]["offers"], true);
    let untouched: Value = app.preferences(access(&ravi)).await.json().await.unwrap();
    assert_eq!(untouched, defaults, "one user's choice is theirs alone");

    // Replaced as a whole: clearing the city is sending null.
    let cleared = json!({"default_city": null, "language": "en",
                         "notifications": {"email": false, "sms": false, "offers": false}});
    assert_eq!(
        app.set_preferences(access(&asha), &cleared).await.status(),
        200
    );
    let saved: Value = app.preferences(access(&asha)).await.json().await.unwrap();
    assert_eq!(saved, cleared);

    for (bad, code) in [
        (
            json!({"default_city": "  ", "language": "en",
                "notifications": {"email": true, "sms": true, "offers": false}}),
            "VALIDATION_FAILED",
        ),
        (
            json!({"default_city": null, "language": "English",
                "notifications": {"email": true, "sms": true, "offers": false}}),
            "VALIDATION_FAILED",
        ),
        (
            json!({"default_city": null, "language": "en"}),
            "INVALID_BODY",
        ),
        (
            json!({"default_city": null, "language": "en", "theme": "dark",
                "notifications": {"email": true, "sms": true, "offers": false}}),
            "INVALID_BODY",
        ),
    ] {
        let response = app.set_preferences(access(&asha), &bad).await;
        assert_eq!(response.status(), 422, "{bad}");
        assert_eq!(error_code(response).await, code, "{bad}");
    }
    assert_eq!(
        app.preferences(access(&asha))
            .await
            .json::<Value>()
            .await
            .unwrap(),
        cleared,
        "a refused change changes nothing"
    );
    assert_eq!(
        app.get("/api/users/me/preferences").await.status(),
        401,
        "signed out"
    );
}
