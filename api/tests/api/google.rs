//! Google sign-in against the stand-in's JWKS: accounts created and linked, forged tokens refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, spawn_app};

async fn sign_in(app: &TestApp, id_token: &str) -> reqwest::Response {
    app.post_json("/api/auth/google", &json!({"id_token": id_token}))
        .await
}

#[tokio::test]
async fn a_new_google_user_gets_an_account_and_an_existing_email_is_linked() {
    let app = spawn_app().await;
    app.register("meera@example.com", "a-long-password").await;
    let existing: String = sqlx::query_scalar("SELECT id::text FROM users WHERE email = $1")
        .bind("meera@example.com")
        .fetch_one(&app.db)
        .await
        .unwrap();

    // A Google user nobody has seen.
    let token = app
        .google_token(json!({"sub": "g-100", "email": "new@example.com", "name": "New Person"}))
        .await;
    let created = sign_in(&app, &token).await;
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["user"]["email"], "new@example.com");
    assert_eq!(created["user"]["email_verified"], true);

    // The same email as a password account: linked, not duplicated.
    let token = app
        .google_token(json!({"sub": "g-200", "email": "Meera@example.com"}))
        .await;
    let linked: Value = sign_in(&app, &token).await.json().await.unwrap();
    assert_eq!(linked["user"]["id"], existing.as_str());

    // Signing in again finds the account by its Google subject.
    let again: Value = sign_in(&app, &token).await.json().await.unwrap();
    assert_eq!(again["user"]["id"], existing.as_str());
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(accounts, 2);
}

#[tokio::test]
async fn forged_or_unfit_google_tokens_are_refused() {
    let app = spawn_app().await;
    let base = json!({"sub": "g-1", "email": "x@example.com"});
    let with = |extra: Value| {
        let mut claims = base.clone();
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    };
    let cases = [
        (
            "bad signature",
            with(json!({"signer": "rogue"})),
            "INVALID_GOOGLE_TOKEN",
        ),
        (
            "wrong audience",
            with(json!({"aud": "someone-else"})),
            "INVALID_GOOGLE_TOKEN",
        ),
        (
            "wrong issuer",
            with(json!({"iss": "https://evil.example"})),
            "INVALID_GOOGLE_TOKEN",
        ),
        (
            "expired",
            with(json!({"expires_in": -600})),
            "INVALID_GOOGLE_TOKEN",
        ),
        (
            "unverified email",
            with(json!({"email_verified": false})),
            "GOOGLE_EMAIL_NOT_VERIFIED",
        ),
    ];
    for (case, claims, code) in cases {
        let token = app.google_token(claims).await;
        let response = sign_in(&app, &token).await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(error_code(response).await, code, "{case}");
    }

    // `alg: none`, with the claims of a valid token and no signature.
    let valid = app.google_token(base.clone()).await;
    let claims = valid.split('.').nth(1).unwrap();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"stand-in-google-1"}"#);
    let unsigned = format!("{header}.{claims}.");
    let response = sign_in(&app, &unsigned).await;
    assert_eq!(response.status(), 401);
    assert_eq!(error_code(response).await, "INVALID_GOOGLE_TOKEN");

    let garbage = sign_in(&app, "garbage").await;
    assert_eq!(garbage.status(), 401);
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
}
