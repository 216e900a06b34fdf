//! Starting an isolated API (and workers) for a test, and one method per endpoint it calls.

use api::startup::Application;
use reqwest::{Client, Response};
use serde_json::{Value, json};
use test_support::{TestEnv, eventually, fixtures::Buyer};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// A running API on its own port with its own database, Redis prefix, queue prefix and
/// stand-in server for Google and Twilio.
pub struct TestApp {
    pub address: String,
    pub stand_in: String,
    pub client: Client,
    pub env: TestEnv,
    pub db: sqlx::PgPool,
}

/// Starts the API on port 0 with a fresh database and a stand-in server.
pub async fn spawn_app() -> TestApp {
    let mut env = TestEnv::new().await;
    let stand_in = env.start_stand_in().await;
    let mut app = spawn_app_with(env).await;
    app.stand_in = stand_in;
    app
}

/// Starts the API with settings the test adjusted (a dependency pointed at a closed port).
pub async fn spawn_app_with(env: TestEnv) -> TestApp {
    let application = Application::build(env.settings())
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    TestApp {
        address,
        stand_in: String::new(),
        client: Client::new(),
        db: env.db(),
        env,
    }
}

/// A worker process for this app's queues, running until the token is cancelled.
pub async fn spawn_workers(app: &TestApp) -> CancellationToken {
    spawn_workers_with(&app.env).await.0
}

/// Workers with these settings; also returns the port of their `/metrics` and `/health`.
pub async fn spawn_workers_with(env: &TestEnv) -> (CancellationToken, u16) {
    let workers = workers::startup::Application::build(env.settings())
        .await
        .expect("the workers start");
    let port = workers.http_port();
    let stop = CancellationToken::new();
    tokio::spawn(workers.run_until_stopped(stop.clone().cancelled_owned()));
    (stop, port)
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("the request is answered")
    }

    pub async fn get_health(&self) -> Response {
        self.get("/health").await
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_json_as(&self, path: &str, body: &Value, token: &str) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Sends `body` as JSON with `method`, signed in as `token` if given.
    pub async fn send_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    pub async fn delete_as(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn register(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/auth/register",
            &json!({"name": "Asha Rao", "email": email, "password": password}),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/api/auth/login",
            &json!({"email": email, "password": password, "device_name": "test phone"}),
        )
        .await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post_json(
            "/api/auth/refresh",
            &json!({"refresh_token": refresh_token}),
        )
        .await
    }

    /// Registers a new account, signed in.
    pub async fn signed_up(&self) -> Account {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let response = self.register(&email, "a-long-password").await;
        assert_eq!(response.status(), 201);
        Account::from_pair(&email, &response.json().await.unwrap())
    }

    /// Registers an account, gives it `role` directly in the database, and refreshes its
    /// tokens, so that its access token carries the role (as after a sign-in).
    pub async fn signed_up_as(&self, role: &str) -> Account {
        let account = self.signed_up().await;
        sqlx::query("UPDATE users SET role = $1::user_role WHERE id = $2")
            .bind(role)
            .bind(account.id)
            .execute(&self.db)
            .await
            .unwrap();
        let refreshed = self.refresh(&account.refresh).await;
        assert_eq!(refreshed.status(), 200);
        Account::from_pair(&account.email, &refreshed.json().await.unwrap())
    }

    pub async fn logout(&self, token: &str) -> Response {
        self.post_json_as("/api/auth/logout", &json!({}), token)
            .await
    }

    pub async fn request_email_code(&self, token: &str) -> Response {
        self.post_json_as("/api/auth/email/verification", &json!({}), token)
            .await
    }

    // The signed-in user.

    pub async fn me(&self, token: &str) -> Response {
        self.get_as("/api/users/me", token).await
    }

    pub async fn update_me(&self, token: &str, changes: &Value) -> Response {
        self.send_json(
            reqwest::Method::PATCH,
            "/api/users/me",
            changes,
            Some(token),
        )
        .await
    }

    pub async fn preferences(&self, token: &str) -> Response {
        self.get_as("/api/users/me/preferences", token).await
    }

    pub async fn set_preferences(&self, token: &str, chosen: &Value) -> Response {
        self.send_json(
            reqwest::Method::PUT,
            "/api/users/me/preferences",
            chosen,
            Some(token),
        )
        .await
    }

    pub async fn sessions(&self, token: &str) -> Response {
        self.get_as("/api/users/me/sessions", token).await
    }

    pub async fn end_session(&self, token: &str, session: impl std::fmt::Display) -> Response {
        self.delete_as(&format!("/api/users/me/sessions/{session}"), token)
            .await
    }

    pub async fn end_other_sessions(&self, token: &str) -> Response {
        self.delete_as("/api/users/me/sessions", token).await
    }

    /// `GET /api/users/me/bookings?{query}`.
    pub async fn my_bookings(&self, token: &str, query: &str) -> Response {
        self.get_as(&format!("/api/users/me/bookings?{query}"), token)
            .await
    }

    pub async fn google_token(&self, claims: Value) -> String {
        let minted: Value = self
            .client
            .post(format!("{}/google/token", self.stand_in))
            .json(&claims)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        minted["id_token"].as_str().unwrap().to_owned()
    }

    /// Announces a change to a showtime made straight in the database, as a catalogue write
    /// through the API would: every instance drops what it cached of it.
    pub async fn catalogue_changed(&self, showtime_id: uuid::Uuid) {
        let settings = self.env.settings();
        let redis = shared::redis_client::RedisClient::new(&settings.redis).unwrap();
        shared::cache::Cache::new(redis, settings.cache)
            .invalidate(&[shared::catalogue::scopes::showtime(showtime_id)])
            .await;
    }

    /// The mail the stand-in SendGrid received for `to`, oldest first.
    pub async fn mail_to(&self, to: &str) -> Vec<Value> {
        self.client
            .get(format!("{}/sendgrid/messages", self.stand_in))
            .query(&[("to", to)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The code in the latest of `count` verification mails to `to`, once the worker sent it.
    pub async fn mailed_code(&self, to: &str, count: usize) -> String {
        eventually!(self.mail_to(to).await.len() >= count);
        self.codes_marked_sent().await;
        let mail = self.mail_to(to).await;
        let text = mail[count - 1]["text"].as_str().unwrap();
        text.split_whitespace().next().unwrap().to_owned()
    }

    pub async fn verify_email(&self, token: &str, code: &str) -> Response {
        self.post_json_as("/api/auth/email/verify", &json!({"code": code}), token)
            .await
    }

    /// Waits until every code handed to a provider is marked sent. A code counts once its row
    /// says so, and the stand-in receives it a moment before the worker marks it: a test that
    /// reads a code and types it in at once would otherwise beat the worker (no person does).
    pub async fn codes_marked_sent(&self) {
        eventually!({
            let in_flight: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM otp_requests
                         WHERE code_hash IS NOT NULL AND sent_at IS NULL)
                      + (SELECT count(*) FROM email_verifications
                         WHERE code_hash IS NOT NULL AND sent_at IS NULL)",
            )
            .fetch_one(&self.db)
            .await
            .unwrap();
            in_flight == 0
        });
    }

    /// The text messages the stand-in Twilio received for `to`.
    pub async fn texts_to(&self, to: &str) -> Vec<String> {
        let messages: Vec<Value> = self
            .client
            .get(format!("{}/twilio/messages", self.stand_in))
            .query(&[("to", to)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        messages
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_owned())
            .collect()
    }

    // Bookings.

    pub async fn book(&self, buyer: &Buyer, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/bookings"))
            .bearer_auth(&buyer.token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Books with a fresh key and waits until the reservation is decided.
    pub async fn book_and_wait(&self, buyer: &Buyer, body: &Value) -> Value {
        let accepted: Value = self.book(buyer, &key(), body).await.json().await.unwrap();
        let id = accepted["booking_id"].as_str().unwrap().to_owned();
        self.booking_after(buyer, &id, "PENDING").await
    }

    /// Waits (long-poll) until the booking leaves `from`, and returns it.
    pub async fn booking_after(&self, buyer: &Buyer, id: &str, from: &str) -> Value {
        for _ in 0..20 {
            let view: Value = self
                .client
                .get(self.url(&format!("/api/bookings/{id}?wait=5&from={from}")))
                .bearer_auth(&buyer.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if view["status"] != from {
                return view;
            }
        }
        panic!("booking {id} stayed {from}");
    }

    pub async fn availability(&self, showtime_id: Uuid) -> reqwest::Response {
        self.get(&format!("/api/showtimes/{showtime_id}/availability"))
            .await
    }

    /// Reads availability until `seat` shows `state`: each API process may serve an answer
    /// up to a second old.
    pub async fn availability_showing(&self, showtime_id: Uuid, seat: Uuid, state: &str) -> Value {
        eventually!("the seat shows the state asked for", {
            let availability: Value = self.availability(showtime_id).await.json().await.unwrap();
            (seat_state(&availability, seat) == state).then_some(availability)
        })
    }
    pub async fn booking(&self, token: &str, id: impl std::fmt::Display) -> Response {
        self.get_as(&format!("/api/bookings/{id}"), token).await
    }

    /// The booking's server-sent status events.
    pub async fn booking_events(&self, token: &str, id: impl std::fmt::Display) -> Response {
        self.get_as(&format!("/api/bookings/{id}/events"), token)
            .await
    }

    pub async fn cancel_booking(&self, token: &str, id: impl std::fmt::Display) -> Response {
        self.post_json_as(&format!("/api/bookings/{id}/cancel"), &json!({}), token)
            .await
    }

    pub async fn tickets(&self, token: &str, id: impl std::fmt::Display) -> Response {
        self.get_as(&format!("/api/bookings/{id}/tickets"), token)
            .await
    }

    // The catalogue.

    /// `GET /api/shows?{query}`.
    pub async fn shows(&self, query: &str) -> Response {
        self.get(&format!("/api/shows?{query}")).await
    }

    pub async fn show(&self, id: impl std::fmt::Display) -> Response {
        self.get(&format!("/api/shows/{id}")).await
    }

    /// `GET /api/venues?{query}`.
    pub async fn venues(&self, query: &str) -> Response {
        self.get(&format!("/api/venues?{query}")).await
    }

    /// `GET /api/events?{query}`.
    pub async fn events(&self, query: &str) -> Response {
        self.get(&format!("/api/events?{query}")).await
    }

    pub async fn seat_section(&self, section: Uuid, showtime: Uuid) -> Response {
        self.get(&format!(
            "/api/seat-sections/{section}?showtime_id={showtime}"
        ))
        .await
    }

    pub async fn categories(&self) -> Response {
        self.get("/api/categories").await
    }

    pub async fn update_show(
        &self,
        token: &str,
        show: impl std::fmt::Display,
        changes: &Value,
    ) -> Response {
        self.send_json(
            reqwest::Method::PATCH,
            &format!("/api/shows/{show}"),
            changes,
            Some(token),
        )
        .await
    }

    pub async fn update_showtime(
        &self,
        token: &str,
        showtime: impl std::fmt::Display,
        changes: &Value,
    ) -> Response {
        self.send_json(
            reqwest::Method::PATCH,
            &format!("/api/showtimes/{showtime}"),
            changes,
            Some(token),
        )
        .await
    }

    pub async fn cancel_showtime(&self, token: &str, showtime: impl std::fmt::Display) -> Response {
        self.post_json_as(
            &format!("/api/showtimes/{showtime}/cancel"),
            &json!({}),
            token,
        )
        .await
    }

    // Administration.

    /// `GET /api/admin/users?{query}`.
    pub async fn admin_users(&self, token: &str, query: &str) -> Response {
        self.get_as(&format!("/api/admin/users?{query}"), token)
            .await
    }

    pub async fn change_role(
        &self,
        token: &str,
        user: impl std::fmt::Display,
        role: &str,
    ) -> Response {
        self.send_json(
            reqwest::Method::PATCH,
            &format!("/api/admin/users/{user}/role"),
            &json!({"role": role}),
            Some(token),
        )
        .await
    }

    pub async fn set_disabled(
        &self,
        token: &str,
        user: impl std::fmt::Display,
        disabled: bool,
    ) -> Response {
        self.send_json(
            reqwest::Method::PUT,
            &format!("/api/admin/users/{user}/disabled"),
            &json!({"disabled": disabled}),
            Some(token),
        )
        .await
    }

    pub async fn replay_dead_letter(&self, token: &str, kind: &str, message: &str) -> Response {
        self.post_json_as(
            &format!("/api/admin/dead-letters/{kind}/{message}/replay"),
            &json!({}),
            token,
        )
        .await
    }

    pub async fn recheck_payment(&self, token: &str, payment: &str) -> Response {
        self.post_json_as(
            &format!("/api/admin/payments/{payment}/recheck"),
            &json!({}),
            token,
        )
        .await
    }

    /// Books seats for a user as an admin (`POST /api/admin/bookings`).
    pub async fn admin_book(&self, token: &str, body: &Value) -> Response {
        self.post_json_as("/api/admin/bookings", body, token).await
    }

    pub async fn move_seats(&self, token: &str, booking: &str, body: &Value) -> Response {
        self.send_json(
            reqwest::Method::PUT,
            &format!("/api/admin/bookings/{booking}/seats"),
            body,
            Some(token),
        )
        .await
    }

    pub async fn admin_cancel(&self, token: &str, booking: &str, body: &Value) -> Response {
        self.post_json_as(
            &format!("/api/admin/bookings/{booking}/cancel"),
            body,
            token,
        )
        .await
    }

    /// `GET /api/admin/audit?{query}`.
    pub async fn audit(&self, token: &str, query: &str) -> Response {
        self.get_as(&format!("/api/admin/audit?{query}"), token)
            .await
    }

    /// `GET /api/admin/payments?{query}`.
    pub async fn admin_payments(&self, token: &str, query: &str) -> Response {
        self.get_as(&format!("/api/admin/payments?{query}"), token)
            .await
    }

    pub async fn dead_letters(&self, token: &str, kind: &str) -> Response {
        self.get_as(&format!("/api/admin/dead-letters/{kind}"), token)
            .await
    }

    /// `GET /api/stats/{report}?{query}`.
    pub async fn stats(&self, token: &str, report: &str, query: &str) -> Response {
        self.get_as(&format!("/api/stats/{report}?{query}"), token)
            .await
    }

    // Payments.

    pub async fn razorpay_order(&self, token: &str, booking: &str) -> Response {
        self.post_json_as(
            "/api/razorpay/orders",
            &json!({"booking_id": booking}),
            token,
        )
        .await
    }

    /// Hands the shop what Checkout handed the buyer.
    pub async fn razorpay_verify(&self, token: &str, checkout: &Value) -> Response {
        self.post_json_as("/api/razorpay/verify", checkout, token)
            .await
    }

    pub async fn refund(&self, token: &str, booking: &str, body: &Value) -> Response {
        self.post_json_as(
            &format!("/api/admin/bookings/{booking}/refund"),
            body,
            token,
        )
        .await
    }

    /// How many captures and refunds the stand-in Razorpay made.
    pub async fn razorpay_counts(&self) -> Value {
        self.client
            .get(format!("{}/razorpay/test/counts", self.stand_in))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    // Payments.

    /// Calls the stand-in Razorpay's `/razorpay{path}`.
    pub async fn razorpay(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}/razorpay{path}", self.stand_in))
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// A signed-in account: who it is and its tokens.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: uuid::Uuid,
    pub session_id: uuid::Uuid,
    pub email: String,
    pub access: String,
    pub refresh: String,
}

impl Account {
    /// From the token pair sign-in answers with.
    pub fn from_pair(email: &str, pair: &Value) -> Self {
        Self {
            id: pair["user"]["id"].as_str().unwrap().parse().unwrap(),
            session_id: pair["session_id"].as_str().unwrap().parse().unwrap(),
            email: email.to_owned(),
            access: pair["access_token"].as_str().unwrap().to_owned(),
            refresh: pair["refresh_token"].as_str().unwrap().to_owned(),
        }
    }
}

/// The access token of a signed-in account, or of a token pair an endpoint answered.
pub fn access(signed_in: &impl Tokens) -> &str {
    signed_in.access_token()
}

pub trait Tokens {
    fn access_token(&self) -> &str;
}

impl Tokens for Account {
    fn access_token(&self) -> &str {
        &self.access
    }
}

impl Tokens for Value {
    fn access_token(&self) -> &str {
        self["access_token"].as_str().unwrap()
    }
}

/// Asserts the one error shape and returns the code.
pub async fn error_code(response: Response) -> String {
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], request_id.as_str(), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"]["code"].as_str().unwrap().to_owned()
}

/// An address where nothing listens, to play a dependency that is down.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

/// A fresh Idempotency-Key.
pub fn key() -> String {
    Uuid::new_v4().to_string()
}

/// The state of `seat` in an availability answer.
pub fn seat_state(availability: &Value, seat: Uuid) -> String {
    availability["seats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["seat_id"] == seat.to_string())
        .unwrap()["state"]
        .as_str()
        .unwrap()
        .to_owned()
}
