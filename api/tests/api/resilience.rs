//! Staying up on the night: a client that hangs up still gets its booking decided, held
//! connections are capped and end with their session, a sign-in rush is refused at once past
//! the hashing pool, guesses cannot outrun the throttle, clients behind trusted proxies are
//! told apart, and a database outage answers 503 with Retry-After. Dependencies are cut
//! through proxies the tests control.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use test_support::{
    TestEnv, eventually,
    fixtures::{self, Buyer},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use crate::helpers::{TestApp, access, error_code, spawn_app_with, spawn_workers_with};

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn booking_status(app: &TestApp, id: Uuid) -> Option<String> {
    sqlx::query_scalar("SELECT status::text FROM bookings WHERE id = $1")
        .bind(id)
        .fetch_optional(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_booking_is_decided_even_when_its_client_hangs_up_before_the_publish() {
    let mut env = TestEnv::new().await;
    // No sweep can rescue the booking within the test: only the accept path publishes.
    env.set("REPUBLISH_PENDING_AFTER", "1h");
    let (_workers, _) = spawn_workers_with(&env).await;
    // The API reaches the broker through a proxy that holds its connection unanswered.
    let broker = env.route_through_proxy("RABBITMQ_URL", 5672).await;
    broker.hold();
    let app = spawn_app_with(env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let buyer = &fixtures::buyers(&app.db, &app.env.settings(), 1).await[0];

    let body = json!({"showtime_id": showtime.showtime_id, "section_id": showtime.sections[0].section_id, "quantity": 2}).to_string();
    let request = format!(
        "POST /api/bookings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
         Idempotency-Key: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        buyer.token,
        Uuid::new_v4(),
        body.len()
    );
    let address = app.address.trim_start_matches("http://");
    let mut client = tokio::net::TcpStream::connect(address).await.unwrap();
    client.write_all(request.as_bytes()).await.unwrap();
    // The booking is claimed and its publish is waiting on the held broker connection.
    let redis = shared::redis_client::RedisClient::new(&app.env.settings().redis).unwrap();
    let accepting = || {
        let redis = redis.clone();
        async move {
            let mut connection = redis.connection().await.unwrap();
            let ids: Vec<String> = redis::AsyncCommands::zrange(
                &mut connection,
                redis.key("accept:unpublished"),
                0,
                -1,
            )
            .await
            .unwrap();
            ids.first().map(|id| id.parse::<Uuid>().unwrap())
        }
    };
    eventually!(accepting().await.is_some() && broker.accepted() > 0);
    let id = accepting().await.unwrap();
    // The client hangs up, and the server has dropped the request (it closes its side of the
    // connection) before the broker answers.
    client.shutdown().await.unwrap();
    let mut unanswered = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), client.read_to_end(&mut unanswered))
        .await
        .expect("the server never noticed the hang-up")
        .unwrap();
    assert!(unanswered.is_empty(), "no answer was sent");
    broker.release();

    eventually!(booking_status(&app, id).await.as_deref() == Some("RESERVED"));
}

#[tokio::test]
async fn held_connections_are_capped_per_user_and_per_instance() {
    let mut env = TestEnv::new().await;
    env.set("LIVE_MAX_PER_USER", "2");
    env.set("LIVE_MAX_PER_INSTANCE", "3");
    let app = spawn_app_with(env).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 4)]).await;
    let buyers = fixtures::buyers(&app.db, &app.env.settings(), 3).await;
    let mut bookings = Vec::new();
    for buyer in &buyers {
        let body = json!({"showtime_id": showtime.showtime_id, "section_id": showtime.sections[0].section_id, "quantity": 1});
        let accepted: Value = app
            .book(buyer, &Uuid::new_v4().to_string(), &body)
            .await
            .json()
            .await
            .unwrap();
        bookings.push(accepted["booking_id"].as_str().unwrap().to_owned());
    }
    // No workers: the bookings stay PENDING, so streams and long-polls stay open.
    let first = app.booking_events(&buyers[0].token, &bookings[0]).await;
    let second = app.booking_events(&buyers[0].token, &bookings[0]).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );

    let over_user = app
        .get_as(
            &format!("/api/bookings/{}?wait=5", bookings[0]),
            &buyers[0].token,
        )
        .await;
    assert_eq!(over_user.status(), 429);
    assert!(retry_after(&over_user) > 0);
    assert_eq!(error_code(over_user).await, "TOO_MANY_STREAMS");
    // A plain read holds nothing and is still answered.
    let plain = app.booking(&buyers[0].token, &bookings[0]).await;
    assert_eq!(plain.status(), 200);

    let third = app.booking_events(&buyers[1].token, &bookings[1]).await;
    assert_eq!(third.status(), 200);
    let over_instance = app.booking_events(&buyers[2].token, &bookings[2]).await;
    assert_eq!(over_instance.status(), 503);
    assert!(retry_after(&over_instance) > 0);
    assert_eq!(error_code(over_instance).await, "SERVICE_UNAVAILABLE");
    drop((first, second, third));
}

#[tokio::test]
async fn an_event_stream_ends_when_its_session_is_revoked() {
    let app = spawn_app_with(TestEnv::new().await).await;
    let showtime = fixtures::showtime_on_sale(&app.db, &[(1, 2)]).await;
    let signed_up = app.signed_up().await;
    let token = access(&signed_up).to_owned();
    let buyer = Buyer {
        user_id: signed_up.id,
        token: token.clone(),
    };
    let body = json!({"showtime_id": showtime.showtime_id, "section_id": showtime.sections[0].section_id, "quantity": 1});
    let accepted: Value = app
        .book(&buyer, &Uuid::new_v4().to_string(), &body)
        .await
        .json()
        .await
        .unwrap();
    let booking = accepted["booking_id"].as_str().unwrap();
    let response = app.booking_events(&token, booking).await;
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    // The first event: the booking as it is now.
    let first = tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the first event arrives");
    assert!(first.is_some());

    let logout = app.logout(&token).await;
    assert_eq!(logout.status(), 204);

    // The stream closes: no more chunks (keep-alive comments aside) and then its end.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(chunk) = stream.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the stream ended after the session was revoked"
    );
}

#[tokio::test]
async fn a_sign_in_rush_past_the_hashing_pool_is_refused_at_once_and_writes_nothing() {
    let mut env = TestEnv::new().await;
    env.set("PASSWORD_HASH_THREADS", "1");
    env.set("PASSWORD_HASH_QUEUE", "1");
    // A real cost, so that the rush overlaps.
    env.set("ARGON2_MEMORY_KIB", "16384");
    env.set("ARGON2_ITERATIONS", "6");
    let app = spawn_app_with(env).await;

    let attempts = (0..12).map(|i| {
        let app = &app;
        async move {
            app.post_json(
                "/api/auth/register",
                &json!({"name": "Rush", "email": format!("rush-{i}@example.com"), "password": "a-long-password"}),
            )
            .await
        }
    });
    let responses = futures::future::join_all(attempts).await;
    let mut created = 0;
    let mut refused = 0;
    for response in responses {
        match response.status().as_u16() {
            201 => created += 1,
            503 => {
                assert!(retry_after(&response) > 0);
                assert_eq!(error_code(response).await, "SERVICE_UNAVAILABLE");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(created >= 2, "one hashing and one waiting are served");
    assert!(refused >= 1, "past the pool and its queue, refused");
    let users: i64 = sqlx::query_scalar("SELECT count(*) FROM users")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(users, created, "a refused sign-up wrote nothing");
}

async fn login_from(app: &TestApp, email: &str, password: &str, client: &str) -> reqwest::Response {
    app.client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", client)
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn parallel_guesses_cannot_outrun_the_throttle_and_the_owner_still_signs_in() {
    let mut env = TestEnv::new().await;
    env.set("TRUSTED_PROXIES", "127.0.0.1/32");
    env.set("LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS", "5");
    env.set("LOGIN_MAX_FAILURES_PER_ACCOUNT", "200");
    let app = spawn_app_with(env).await;
    assert_eq!(
        app.register("asha@example.com", "a-long-password")
            .await
            .status(),
        201
    );

    let guesses = (0..80).map(|i| {
        let app = &app;
        async move {
            login_from(
                app,
                "asha@example.com",
                &format!("guess-{i}-password"),
                "203.0.113.66",
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked, 5, "exactly the limit was checked: {statuses:?}");
    assert_eq!(throttled, 75);

    // The attacker's address is locked out, even with the right password...
    let attacker = login_from(&app, "asha@example.com", "a-long-password", "203.0.113.66").await;
    assert_eq!(attacker.status(), 429);
    // ...while the owner, elsewhere, signs in.
    let owner = login_from(&app, "asha@example.com", "a-long-password", "198.51.100.7").await;
    assert_eq!(owner.status(), 200);
    let pair: Value = owner.json().await.unwrap();
    let sessions: Value = app.sessions(access(&pair)).await.json().await.unwrap();
    let current = sessions
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == true)
        .unwrap();
    assert_eq!(
        current["ip"], "198.51.100.7",
        "the session records the client behind the proxy: {sessions}"
    );
}

async fn read_from(app: &TestApp, client: &str) -> u16 {
    app.client
        .get(app.url("/api/categories"))
        .header("x-forwarded-for", client)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_trusted_proxies() {
    let limits = [("RATE_LIMIT_READS", "3/1m"), ("RATE_LIMIT_IP_FACTOR", "1")];
    let mut untrusted = TestEnv::new().await;
    let mut trusted = TestEnv::new().await;
    for (name, value) in limits {
        untrusted.set(name, value);
        trusted.set(name, value);
    }
    trusted.set("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1");
    let untrusted = spawn_app_with(untrusted).await;
    let trusted = spawn_app_with(trusted).await;

    // A client that writes its own header is still counted by its socket address.
    let spoofed = [
        read_from(&untrusted, "192.0.2.1").await,
        read_from(&untrusted, "192.0.2.2").await,
        read_from(&untrusted, "192.0.2.3").await,
        read_from(&untrusted, "192.0.2.4").await,
    ];
    assert_eq!(spoofed, [200, 200, 200, 429]);

    // Behind a trusted proxy each client has its own count, read from the right.
    for client in ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4"] {
        assert_eq!(read_from(&trusted, client).await, 200, "{client}");
    }
    let same = "1.2.3.4, 192.0.2.9, 10.0.0.3";
    let counted = [
        read_from(&trusted, same).await,
        read_from(&trusted, same).await,
        read_from(&trusted, "192.0.2.9").await,
        read_from(&trusted, "6.6.6.6, 192.0.2.9").await,
    ];
    assert_eq!(
        counted,
        [200, 200, 200, 429],
        "the spoofed left entry is ignored"
    );

    // An IPv6 client counts by its /64.
    let v6 = [
        read_from(&trusted, "2001:db8:0:1::1").await,
        read_from(&trusted, "2001:db8:0:1::2").await,
        read_from(&trusted, "2001:db8:0:1:ffff::3").await,
        read_from(&trusted, "2001:db8:0:1::4").await,
        read_from(&trusted, "2001:db8:0:2::1").await,
    ];
    assert_eq!(v6, [200, 200, 200, 429, 200]);

    // The header the proxies do not write is never believed: a client's own `Forwarded`
    // leaves it counted as the proxy's connection.
    let mut statuses = Vec::new();
    for client in ["192.0.2.51", "192.0.2.52", "192.0.2.53", "192.0.2.54"] {
        let response = trusted
            .client
            .get(trusted.url("/api/categories"))
            .header("forwarded", format!("for={client}"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

#[tokio::test]
async fn a_database_outage_answers_503_with_retry_after_and_recovers() {
    let mut env = TestEnv::new().await;
    let database = env.route_through_proxy("DATABASE_URL", 5432).await;
    env.set("DATABASE_CONNECT_TIMEOUT", "1s");
    let app = spawn_app_with(env).await;
    let signed_up = app.signed_up().await;
    let token = access(&signed_up).to_owned();
    assert_eq!(app.venues("").await.status(), 200);

    database.cut();
    // Reads that need Postgres (the venues page read above may be served from the cache).
    for path in ["/api/categories", "/api/users/me/sessions"] {
        let response = app.get_as(path, &token).await;
        assert_eq!(response.status(), 503, "{path}");
        assert!(retry_after(&response) > 0, "{path}");
        assert_eq!(error_code(response).await, "SERVICE_UNAVAILABLE", "{path}");
    }
    let login = app.login("nobody@example.com", "a-long-password").await;
    assert_eq!(login.status(), 503);

    database.restore();
    eventually!(app.categories().await.status() == 200);
    assert_eq!(app.sessions(&token).await.status(), 200);
}
