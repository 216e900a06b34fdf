//! Migrations on an empty database and again, the tables they make, and the demo data.

use shared::db::{MIGRATOR, migrate};
use test_support::TestEnv;

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_again_as_a_no_op() {
    let env = TestEnv::new().await;
    let db = env.db();
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(applied, MIGRATOR.iter().count() as i64);
    let tables_before: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&db)
    .await
    .unwrap();

    migrate(&db).await.expect("the second run succeeds");

    let applied_again: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&db)
        .await
        .unwrap();
    let tables_after: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(applied_again, applied);
    assert_eq!(tables_after, tables_before);
}

#[tokio::test]
async fn the_schema_has_every_core_table() {
    let env = TestEnv::new().await;
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&env.db())
    .await
    .unwrap();
    for table in [
        "users",
        "sessions",
        "refresh_tokens",
        "otp_requests",
        "venues",
        "seat_sections",
        "seats",
        "categories",
        "shows",
        "show_categories",
        "events",
        "showtimes",
        "price_tiers",
        "showtime_seats",
        "bookings",
        "booking_seats",
        "tickets",
        "payments",
        "refunds",
        "webhook_events",
        "idempotency_keys",
        "audit_log",
    ] {
        assert!(tables.iter().any(|t| t == table), "missing table {table}");
    }
}

#[tokio::test]
async fn demo_data_loads_once() {
    let env = TestEnv::new().await;
    let db = env.db();
    let (first, created) = shared::demo::load(&db, "pw-one-two-three").await.unwrap();
    assert!(created);
    assert_eq!(first.seats, 300);
    let (second, created_again) = shared::demo::load(&db, "pw-one-two-three").await.unwrap();
    assert!(!created_again);
    assert_eq!(second.on_sale_showtime_id, first.on_sale_showtime_id);
    let inventory: i64 =
        sqlx::query_scalar("SELECT count(*) FROM showtime_seats WHERE showtime_id = $1")
            .bind(first.on_sale_showtime_id)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(inventory, 300);
}
