//! One isolated environment per integration test, against the real services: a freshly
//! created and migrated database, its own Redis key prefix and its own RabbitMQ queue prefix
//! (queues the broker deletes once unused), so tests run in parallel in any order.
//!
//! Settings start from `.env.example`; `DATABASE_URL`, `REDIS_URL` and `RABBITMQ_URL` in the
//! environment point the tests at other servers.

// Test support fails loudly: a test that cannot get what it needs should stop right there.
#![allow(clippy::unwrap_used)]

pub mod fixtures;
pub mod invariants;
pub mod proxy;
pub mod wait;

use std::collections::HashMap;

use shared::config::Settings;
use sqlx::{Connection, PgConnection, PgPool};
use url::Url;
use uuid::Uuid;

/// Prefix of every database the tests create; the test script drops leftovers by it.
pub const TEST_DATABASE_PREFIX: &str = "bms_test_";

#[derive(Clone)]
pub struct TestEnv {
    /// Short unique id of this test's environment, part of every name it uses.
    pub id: String,
    values: HashMap<String, String>,
}

impl TestEnv {
    /// Creates and migrates a fresh database and picks fresh Redis and queue prefixes.
    pub async fn new() -> Self {
        let env = Self::without_database();
        env.create_database().await;
        let db = env.db();
        shared::db::migrate(&db).await.expect("migrations apply");
        db.close().await;
        env
    }

    /// The same, but the database named in the settings is not created.
    pub fn without_database() -> Self {
        let mut values: HashMap<String, String> =
            dotenvy::from_read_iter(include_str!("../../.env.example").as_bytes())
                .map(|item| item.expect("a valid .env.example line"))
                .collect();
        for name in ["DATABASE_URL", "REDIS_URL", "RABBITMQ_URL"] {
            if let Ok(value) = std::env::var(name) {
                values.insert(name.to_owned(), value);
            }
        }
        let id = Uuid::new_v4().simple().to_string()[..12].to_owned();
        let mut database_url: Url = values["DATABASE_URL"].parse().expect("a database URL");
        database_url.set_path(&format!("{TEST_DATABASE_PREFIX}{id}"));
        let overrides = [
            ("APP_ENV", "test".to_owned()),
            ("PORT", "0".to_owned()),
            ("WORKERS_HTTP_PORT", "0".to_owned()),
            ("DATABASE_URL", database_url.to_string()),
            ("DATABASE_POOL_SIZE", "5".to_owned()),
            ("REDIS_KEY_PREFIX", format!("test-{id}")),
            ("RABBITMQ_QUEUE_PREFIX", format!("test-{id}")),
            ("RABBITMQ_QUEUE_EXPIRES", "10m".to_owned()),
            ("JOB_BACKOFF_MIN", "10ms".to_owned()),
            // Cheap hashes: tests exercise the logic, not the cost.
            ("ARGON2_MEMORY_KIB", "1024".to_owned()),
            ("ARGON2_ITERATIONS", "1".to_owned()),
            ("JOB_BACKOFF_MAX", "50ms".to_owned()),
            // Every test client shares one address and signs many users in; the rate-limit
            // tests set their own limits.
            ("RATE_LIMIT_READS", "1000000/1m".to_owned()),
            ("RATE_LIMIT_WRITES", "1000000/1m".to_owned()),
            ("RATE_LIMIT_AUTH", "1000000/1m".to_owned()),
            ("RATE_LIMIT_OTP", "1000000/1m".to_owned()),
            ("RATE_LIMIT_BOOKINGS", "1000000/1m".to_owned()),
        ];
        for (name, value) in overrides {
            values.insert(name.to_owned(), value);
        }
        Self { id, values }
    }

    /// Starts a stand-in server for Google, Twilio, SendGrid and Razorpay on a free port and points the settings
    /// at it. Returns its base URL.
    pub async fn start_stand_in(&mut self) -> String {
        let config = stand_in::Config {
            twilio_account_sid: self.values["TWILIO_ACCOUNT_SID"].clone(),
            twilio_auth_token: self.values["TWILIO_AUTH_TOKEN"].clone(),
            sendgrid_api_key: self.values["SENDGRID_API_KEY"].clone(),
            google_client_id: self.values["GOOGLE_CLIENT_ID"].clone(),
            razorpay: stand_in::RazorpayConfig {
                key_id: self.values["RAZORPAY_KEY_ID"].clone(),
                key_secret: self.values["RAZORPAY_KEY_SECRET"].clone(),
                webhook_secret: self.values["RAZORPAY_WEBHOOK_SECRET"].clone(),
                // The test points it at its API once that listens.
                webhook_url: None,
            },
        };
        let server = stand_in::StandIn::bind(([127, 0, 0, 1], 0).into(), config)
            .await
            .expect("the stand-in binds");
        let base = format!("http://{}", server.address());
        tokio::spawn(server.run());
        self.set("GOOGLE_JWKS_URL", format!("{base}/google/oauth2/v3/certs"));
        self.set("TWILIO_BASE_URL", format!("{base}/twilio"));
        self.set("SENDGRID_BASE_URL", format!("{base}/sendgrid"));
        self.set("RAZORPAY_BASE_URL", format!("{base}/razorpay"));
        base
    }

    /// Settings a production deployment could start with: its own secrets, the real
    /// providers' URLs (never called by a test that uses this) and an operations token.
    pub fn as_production(&mut self) -> &mut Self {
        for (name, value) in [
            ("APP_ENV", "production"),
            ("CORS_ORIGIN", "https://tickets.example.com"),
            ("JWT_SECRET", "jwt-secret-only-this-deployment-knows"),
            (
                "REFRESH_TOKEN_SECRET",
                "refresh-secret-only-this-deployment-knows",
            ),
            ("OTP_SECRET", "otp-secret-only-this-deployment-knows"),
            ("RAZORPAY_KEY_SECRET", "razorpay-key-secret-of-production"),
            (
                "RAZORPAY_WEBHOOK_SECRET",
                "razorpay-webhook-secret-of-production",
            ),
            ("TWILIO_AUTH_TOKEN", "twilio-token-of-production"),
            ("SENDGRID_API_KEY", "sendgrid-key-of-production"),
            ("OPS_TOKEN", "operations-token-only-this-deployment-knows"),
            ("RAZORPAY_BASE_URL", "https://api.razorpay.com"),
            ("TWILIO_BASE_URL", "https://api.twilio.com"),
            ("SENDGRID_BASE_URL", "https://api.sendgrid.com"),
            (
                "GOOGLE_JWKS_URL",
                "https://www.googleapis.com/oauth2/v3/certs",
            ),
        ] {
            self.set(name, value);
        }
        self
    }

    /// Starts a proxy in front of the server the URL setting `name` points at (its port, or
    /// `default_port`), and points the setting at the proxy instead.
    pub async fn route_through_proxy(
        &mut self,
        name: &str,
        default_port: u16,
    ) -> proxy::CuttableProxy {
        let mut url: Url = self.values[name].parse().expect("a URL setting");
        let target = format!(
            "{}:{}",
            url.host_str().expect("a host"),
            url.port().unwrap_or(default_port)
        );
        let proxy = proxy::CuttableProxy::start(target.parse().expect("an address")).await;
        url.set_port(Some(proxy.address().port()))
            .expect("a URL that takes a port");
        self.set(name, url.to_string());
        proxy
    }

    /// Changes one setting, as an operator would in the environment.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.values.insert(name.to_owned(), value.into());
        self
    }

    pub fn get(&self, name: &str) -> &str {
        self.values
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    pub fn values(&self) -> &HashMap<String, String> {
        &self.values
    }

    pub fn settings(&self) -> Settings {
        Settings::from_map(&self.values).expect("test settings are valid")
    }

    /// A pool on this test's database.
    pub fn db(&self) -> PgPool {
        shared::db::pool(&self.settings().database).expect("a database pool")
    }

    pub fn database_name(&self) -> String {
        format!("{TEST_DATABASE_PREFIX}{}", self.id)
    }

    async fn create_database(&self) {
        let mut server: Url = self.values["DATABASE_URL"].parse().expect("a database URL");
        server.set_path("/postgres");
        let mut conn = PgConnection::connect(server.as_str())
            .await
            .expect("PostgreSQL is reachable (is it running?)");
        sqlx::query(&format!(r#"CREATE DATABASE "{}""#, self.database_name()))
            .execute(&mut conn)
            .await
            .expect("a test database is created");
    }
}
