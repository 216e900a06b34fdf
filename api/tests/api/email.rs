//! Proving an account's email with a mailed code (SendGrid's wire format, played by the
//! stand-in), and why it matters: Google sign-in links only to proven addresses.

use serde_json::{Value, json};

use crate::helpers::{access, error_code, spawn_app, spawn_workers};

#[tokio::test]
async fn a_registered_email_is_proven_with_the_mailed_code() {
    let app = spawn_app().await;
    let _workers = spawn_workers(&app).await;
    let pair: Value = app
        .register("asha@example.com", "a-long-password")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pair["user"]["email_verified"], false);
    let token = access(&pair);

    let code = app.mailed_code("asha@example.com", 1).await;
    let mail = &app.mail_to("asha@example.com").await[0];
    assert_eq!(mail["subject"], "Your BMS verification code");
    assert_eq!(mail["from"], "no-reply@bms.example.com");
    let stored: Option<String> =
        sqlx::query_scalar("SELECT code_hash FROM email_verifications LIMIT 1")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(
        stored.is_some_and(|hash| !hash.contains(&code)),
        "only a hash is stored"
    );

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let response = app.verify_email(token, wrong).await;
    assert_eq!(response.status(), 422);
    assert_eq!(error_code(response).await, "EMAIL_CODE_INVALID");

    let response = app.verify_email(token, &code).await;
    assert_eq!(response.status(), 200);
    let user: Value = response.json().await.unwrap();
    assert_eq!(user["email_verified"], true);
    let me: Value = app.me(token).await.json().await.unwrap();
    assert_eq!(me["email_verified"], true);

    let again = app.request_email_code(token).await;
    assert_eq!(again.status(), 409);
    assert_eq!(error_code(again).await, "EMAIL_ALREADY_VERIFIED");
}

#[tokio::test]
async fn a_code_proves_only_the_address_it_was_sent_to() {
    let app = spawn_app().await;
    let _workers = spawn_workers(&app).await;
    let pair: Value = app
        .register("first@example.com", "a-long-password")
        .await
        .json()
        .await
        .unwrap();
    let token = access(&pair);
    let old_code = app.mailed_code("first@example.com", 1).await;

    let changed = app
        .update_me(token, &json!({"email": "second@example.com"}))
        .await;
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["email_verified"], false);

    // The code mailed to the old address proves nothing about the new one (whether or not
    // the new address's code has been sent yet).
    let response = app.verify_email(token, &old_code).await;
    assert_eq!(response.status(), 422);
    let refusal = error_code(response).await;
    assert!(
        ["EMAIL_CODE_NOT_FOUND", "EMAIL_CODE_INVALID"].contains(&refusal.as_str()),
        "{refusal}"
    );
    let new_code = app.mailed_code("second@example.com", 1).await;
    if new_code != old_code {
        let response = app.verify_email(token, &old_code).await;
        assert_eq!(error_code(response).await, "EMAIL_CODE_INVALID");
    }
    let response = app.verify_email(token, &new_code).await;
    assert_eq!(response.status(), 200);
    let verified: Value = response.json().await.unwrap();
    assert_eq!(verified["email"], "second@example.com");
    assert_eq!(verified["email_verified"], true);

    // Changing the address again takes the proof away.
    let changed: Value = app
        .update_me(token, &json!({"email": "third@example.com"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(changed["email_verified"], false);
}

#[tokio::test]
async fn codes_are_asked_for_within_limits() {
    let app = spawn_app().await;
    let _workers = spawn_workers(&app).await;
    let pair = app.signed_up().await;
    let token = access(&pair);

    // Registration just sent one: another must wait for the cooldown.
    let response = app.request_email_code(token).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(error_code(response).await, "EMAIL_VERIFICATION_COOLDOWN");

    let signed_out = app
        .post_json("/api/auth/email/verification", &json!({}))
        .await;
    assert_eq!(signed_out.status(), 401);
    let malformed = app.verify_email(token, "12ab").await;
    assert_eq!(malformed.status(), 422);
}

/// Passing an address from account to account buys no more guesses at its codes: the hourly cap
/// holds per address, whoever asks.
#[tokio::test]
async fn an_address_gets_a_bounded_number_of_codes_whichever_accounts_ask() {
    let app = spawn_app().await;
    let _workers = spawn_workers(&app).await;
    let mut accounts = Vec::new();
    for _ in 0..6 {
        accounts.push(app.signed_up().await);
    }
    // Each account in turn takes the victim's address (the previous one lets it go first),
    // which mails a code to it while the cap allows.
    for (index, account) in accounts.iter().enumerate() {
        if index > 0 {
            let released = app
                .update_me(
                    access(&accounts[index - 1]),
                    &json!({"email": format!("gone-{index}@example.com")}),
                )
                .await;
            assert_eq!(released.status(), 200);
        }
        let taken = app
            .update_me(access(account), &json!({"email": "victim@example.com"}))
            .await;
        assert_eq!(taken.status(), 200);
    }
    let asked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM email_verifications WHERE email = 'victim@example.com'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(
        asked, 5,
        "EMAIL_VERIFICATION_MAX_PER_HOUR codes, not one per account"
    );
    let last = accounts.last().unwrap();
    let response = app.request_email_code(access(last)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        error_code(response).await,
        "EMAIL_VERIFICATION_RATE_LIMITED"
    );
}
