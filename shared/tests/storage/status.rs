//! The Redis copy of a booking's status keeps the newest status, whatever order two processes
//! announce it in.

use chrono::{Duration, Utc};
use shared::{
    bookings::{
        BookingStatus,
        view::{self, BookingView},
    },
    redis_client::RedisClient,
};
use test_support::TestEnv;
use uuid::Uuid;

fn view_at(id: Uuid, status: BookingStatus, updated_at: chrono::DateTime<Utc>) -> BookingView {
    BookingView {
        id,
        user_id: Uuid::nil(),
        showtime_id: Uuid::nil(),
        status,
        reject_reason: None,
        quantity: 1,
        seats: Vec::new(),
        total_paise: shared::money::Paise::ZERO,
        currency: "INR".into(),
        hold_expires_at: None,
        created_at: updated_at,
        updated_at,
    }
}

#[tokio::test]
async fn an_older_status_announced_late_does_not_replace_a_newer_one() {
    let env = TestEnv::without_database();
    let redis = RedisClient::new(&env.settings().redis).unwrap();
    let ttl = std::time::Duration::from_secs(60);
    let id = Uuid::new_v4();
    let now = Utc::now();

    view::announce_view(&redis, &view_at(id, BookingStatus::Refunded, now), ttl).await;
    view::announce_view(
        &redis,
        &view_at(
            id,
            BookingStatus::RefundPending,
            now - Duration::milliseconds(3),
        ),
        ttl,
    )
    .await;
    assert_eq!(
        view::cached(&redis, id).await.unwrap().status,
        BookingStatus::Refunded
    );

    view::announce_view(
        &redis,
        &view_at(id, BookingStatus::Refunded, now + Duration::seconds(1)),
        ttl,
    )
    .await;
    assert_eq!(
        view::cached(&redis, id).await.unwrap().updated_at,
        now + Duration::seconds(1)
    );
}
