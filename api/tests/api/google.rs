//! Google sign-in against the stand-in's JWKS: accounts created and linked, forged tokens refused.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::helpers::{TestApp, access, error_code, spawn_app, spawn_workers};

async fn sign_in(app: &TestApp, id_token: &str) -> reqwest::Response {
    app.post_json("/api/auth/google", &json!({"id_token": id_token}))
        .await
}

#[tokio::test]
async fn a_new_google_user_gets_an_account_and_a_proven_email_is_linked() {
    let app = spawn_app().await;
    let _workers = spawn_workers(&app).await;
    let meera: Value = app
        .register("meera@example.com", "a-long-password")
        .await
        .json()
        .await
        .unwrap();
    let code = app.mailed_code("meera@example.com", 1).await;
    assert_eq!(app.verify_email(access(&meera), &code).await.status(), 200);

    // A Google user nobody has seen.
    let token = app
        .google_token(json!({"sub": "g-100", "email": "new@example.com", "name": "New Person"}))
        .await;
    let created = sign_in(&app, &token).await;
    assert_eq!(created.status(), 200);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["user"]["email"], "new@example.com");
    assert_eq!(created["user"]["email_verified"], true);

    // The same, proven, email as a password account: linked, not duplicated, and the
    // password (whose owner proved the address) keeps working.
    let token = app
        .google_token(json!({"sub": "g-200", "email": "Meera@example.com"}))
        .await;
    let linked: Value = sign_in(&app, &token).await.json().await.unwrap();
    assert_eq!(linked["user"]["id"], meera["user"]["id"]);
    assert_eq!(
        app.login("meera@example.com", "a-long-password")
            .await
            .status(),
        200
    );
    assert_eq!(app.me(access(&meera)).await.status(), 200);

    // Signing in again finds the account by its Google subject.
    let again: Value = sign_in(&app, &token).await.json().await.unwrap();
    assert_eq!(again["user"]["id"], meera["user"]["id"]);
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(accounts, 2);
}

/// Account pre-hijacking: an attacker registers the victim's address with a password of their
/// own and waits for the victim to sign in with Google.
#[tokio::test]
async fn an_unproven_email_goes_to_the_google_user_and_the_squatter_is_locked_out() {
    let app = spawn_app().await;
    let mallory: Value = app
        .post_json(
            "/api/auth/register",
            &json!({"name": "Mallory", "email": "victim@example.com", "password": "mallorys-password"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let phone_attached = sqlx::query(
        "UPDATE users SET phone = '+919800000001', phone_verified_at = now() WHERE id = $1::uuid",
    )
    .bind(mallory["user"]["id"].as_str().unwrap())
    .execute(&app.db)
    .await
    .unwrap();
    assert_eq!(phone_attached.rows_affected(), 1);

    let token = app
        .google_token(json!({"sub": "g-victim", "email": "victim@example.com", "name": "Vera"}))
        .await;
    let response = sign_in(&app, &token).await;
    assert_eq!(response.status(), 200);
    let victim: Value = response.json().await.unwrap();

    // The victim holds the address and the account, under their own name.
    assert_eq!(victim["user"]["name"], "Vera");
    assert_eq!(victim["user"]["email_verified"], true);
    assert_eq!(
        victim["user"]["phone"],
        Value::Null,
        "Mallory's phone is gone"
    );
    assert_eq!(app.me(access(&victim)).await.status(), 200);
    // Mallory's password, session and refresh token no longer work.
    let login = app.login("victim@example.com", "mallorys-password").await;
    assert_eq!(login.status(), 401);
    assert_eq!(error_code(login).await, "INVALID_CREDENTIALS");
    assert_eq!(app.me(access(&mallory)).await.status(), 401);
    assert_eq!(
        app.refresh(mallory["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'user.reclaimed_by_google'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
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

/// A Google-linked account moves to someone else's address without proving it: the address's
/// owner still signs in with Google, and gets it.
#[tokio::test]
async fn an_unproven_address_on_a_google_account_goes_to_whoever_proves_it() {
    let app = spawn_app().await;
    let token = app
        .google_token(json!({"sub": "g-squatter", "email": "squatter@example.com"}))
        .await;
    let squatter: Value = sign_in(&app, &token).await.json().await.unwrap();
    let moved = app
        .update_me(access(&squatter), &json!({"email": "owner@example.com"}))
        .await;
    assert_eq!(moved.status(), 200);

    let token = app
        .google_token(json!({"sub": "g-owner", "email": "owner@example.com", "name": "Owner"}))
        .await;
    let response = sign_in(&app, &token).await;
    assert_eq!(response.status(), 200);
    let owner: Value = response.json().await.unwrap();
    assert_ne!(owner["user"]["id"], squatter["user"]["id"]);
    assert_eq!(owner["user"]["email"], "owner@example.com");
    assert_eq!(owner["user"]["email_verified"], true);
    let me: Value = app.me(access(&squatter)).await.json().await.unwrap();
    assert_eq!(
        me["email"],
        Value::Null,
        "the squatter keeps its Google sign-in only"
    );
}
