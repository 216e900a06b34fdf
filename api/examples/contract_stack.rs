//! The stack `scripts/contract` fuzzes: the API, a worker process and the stand-in providers,
//! on a fresh database with the demo catalogue, its own Redis prefix and queue prefix, as the
//! integration tests start them (`test_support::TestEnv`, rate limits raised).
//!
//! Prints one JSON line, `{"base_url", "buyer", "admin"}` (an access token each), then serves
//! until its standard input closes.

use api::startup::Application;
use serde_json::{Value, json};
use test_support::TestEnv;
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut env = TestEnv::new().await;
    env.set("DATABASE_POOL_SIZE", "20");
    // One token per role serves the whole run, however many cases it makes.
    env.set("JWT_EXPIRES_IN", "24h");
    // The fuzzer tries every operation many times, with one token per role.
    env.set("LOGIN_MAX_FAILURES_PER_ACCOUNT", "1000000");
    env.set("LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS", "1000000");
    env.set("LOGIN_MAX_FAILURES_PER_IP", "1000000");
    env.set("OTP_MAX_PER_PHONE_PER_HOUR", "1000000");
    env.set("OTP_MAX_PER_IP_PER_HOUR", "1000000");
    env.set("EMAIL_VERIFICATION_MAX_PER_HOUR", "1000000");
    env.start_stand_in().await;
    let password = "contract-admin-password";
    shared::demo::load(&env.db(), password).await?;

    let application = Application::build(env.settings()).await?;
    let base_url = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped(std::future::pending()));
    let workers = workers::startup::Application::build(env.settings()).await?;
    tokio::spawn(workers.run_until_stopped(std::future::pending()));

    let client = reqwest::Client::new();
    let admin = sign_in(
        &client,
        &format!("{base_url}/api/auth/login"),
        json!({"email": shared::demo::ADMIN_EMAIL, "password": password}),
    )
    .await?;
    let buyer = sign_in(
        &client,
        &format!("{base_url}/api/auth/register"),
        json!({"name": "Contract Buyer", "email": "buyer@contract.test",
               "password": "contract-buyer-password"}),
    )
    .await?;
    println!(
        "{}",
        json!({"base_url": base_url, "buyer": buyer, "admin": admin})
    );

    // Serve until the script closes our standard input (or goes away).
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 64];
    while stdin.read(&mut buffer).await? > 0 {}
    Ok(())
}

async fn sign_in(client: &reqwest::Client, url: &str, body: Value) -> anyhow::Result<String> {
    let pair: Value = client
        .post(url)
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    pair["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no access token in {pair}"))
}
