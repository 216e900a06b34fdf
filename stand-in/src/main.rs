//! `stand-in` serves the local stand-ins of Google sign-in, Twilio, SendGrid and Razorpay on `STAND_IN_ADDR`
//! (default 127.0.0.1:9090), with the credentials from the environment or `.env`.

use std::{net::SocketAddr, process::ExitCode};

use stand_in::{Config, RazorpayConfig, StandIn};

#[tokio::main]
async fn main() -> ExitCode {
    // The stand-in reads the same .env as the API, so their credentials agree.
    let _ = dotenvy::dotenv();
    tracing_subscriber::fmt::init();
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let address: SocketAddr = match var("STAND_IN_ADDR", "127.0.0.1:9090").parse() {
        Ok(address) => address,
        Err(error) => {
            eprintln!("stand-in: setting STAND_IN_ADDR is malformed: {error}");
            return ExitCode::FAILURE;
        }
    };
    let config = Config {
        twilio_account_sid: var("TWILIO_ACCOUNT_SID", "AC00000000000000000000000000000000"),
        twilio_auth_token: var("TWILIO_AUTH_TOKEN", "local-twilio-auth-token"),
        sendgrid_api_key: var("SENDGRID_API_KEY", "local-sendgrid-api-key"),
        google_client_id: var("GOOGLE_CLIENT_ID", "bms-local.apps.googleusercontent.com"),
        razorpay: RazorpayConfig {
            key_id: var("RAZORPAY_KEY_ID", "rzp_test_local"),
            key_secret: var("RAZORPAY_KEY_SECRET", "local-razorpay-key-secret"),
            webhook_secret: var("RAZORPAY_WEBHOOK_SECRET", "local-razorpay-webhook-secret"),
            // Webhooks go to the API this stand-in serves.
            webhook_url: Some(format!(
                "{}/api/razorpay/webhook",
                var("BASE_URL", "http://localhost:8080").trim_end_matches('/')
            )),
        },
    };
    let server = match StandIn::bind(address, config).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!("stand-in: cannot listen on {address}: {error}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(address = %server.address(), "stand-in listening");
    match server.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("stand-in: {error}");
            ExitCode::FAILURE
        }
    }
}
