//! A password sign-in checks its hash outside any transaction (argon2 is slow). Whatever changed
//! the password meanwhile (a Google sign-in reclaiming the account) must win: the sign-in opens
//! no session, and an upgrade of the old hash does not write it back.

use shared::accounts::{Email, users};
use test_support::TestEnv;

#[tokio::test]
async fn a_reclaim_during_a_password_check_leaves_nothing_for_the_password() {
    let env = TestEnv::new().await;
    let db = env.db();
    let email = Email::parse("victim@example.com").unwrap();
    let mut conn = db.acquire().await.unwrap();
    let squatter = users::insert_with_password(&mut conn, "Mallory", &email, "hash-v1")
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    assert!(
        users::lock_if_password_is(&mut tx, squatter.id, "hash-v1")
            .await
            .unwrap()
    );
    tx.rollback().await.unwrap();

    // The owner signs in with Google while Mallory's password is being checked.
    let mut tx = db.begin().await.unwrap();
    let (_, found) = users::upsert_google(&mut tx, "g-owner", &email, "Owner")
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(found, users::GoogleAccount::Reclaimed);

    let mut tx = db.begin().await.unwrap();
    assert!(
        !users::lock_if_password_is(&mut tx, squatter.id, "hash-v1")
            .await
            .unwrap(),
        "the checked password no longer opens a session"
    );
    tx.rollback().await.unwrap();
    assert!(
        !users::replace_password_hash(&db, squatter.id, "hash-v1", "hash-v2")
            .await
            .unwrap(),
        "an upgrade does not bring the password back"
    );
    let hash: Option<String> = sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
        .bind(squatter.id)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(hash, None);
}
