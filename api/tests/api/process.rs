//! The `api` binary as an operator runs it: settings errors, logs, graceful shutdown.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
};

use test_support::{TestEnv, eventually};

use crate::helpers::closed_port;

fn api_command(env: &TestEnv) -> Command {
    let directory = std::env::temp_dir().join(format!("bms-api-{}", env.id));
    std::fs::create_dir_all(&directory).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_api"));
    command
        .current_dir(&directory)
        .env_clear()
        .envs(env.values());
    command
}

#[test]
fn a_missing_setting_stops_the_api_with_one_line_naming_it() {
    let env = TestEnv::without_database();
    let output = api_command(&env).env_remove("JWT_SECRET").output().unwrap();

    assert!(!output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "api: missing required setting JWT_SECRET (see .env.example)\n"
    );
}

#[test]
fn production_refuses_the_example_secrets_and_the_stand_in() {
    let env = TestEnv::without_database();
    let output = api_command(&env)
        .env("APP_ENV", "production")
        .env("CORS_ORIGIN", "https://tickets.example.com")
        .output()
        .unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut lines = stderr.lines();
    assert_eq!(lines.next(), Some("api: refusing to start in production:"));
    let named: Vec<&str> = lines.map(|line| line.split(':').next().unwrap()).collect();
    for name in [
        "JWT_SECRET",
        "REFRESH_TOKEN_SECRET",
        "OTP_SECRET",
        "RAZORPAY_KEY_SECRET",
        "RAZORPAY_WEBHOOK_SECRET",
        "TWILIO_AUTH_TOKEN",
        "SENDGRID_API_KEY",
        "RAZORPAY_BASE_URL",
        "TWILIO_BASE_URL",
        "SENDGRID_BASE_URL",
        "GOOGLE_JWKS_URL",
        "OPS_TOKEN",
    ] {
        assert!(named.contains(&name), "{name} is not named in {stderr}");
    }
}

#[test]
fn demo_data_is_refused_in_production() {
    let mut env = TestEnv::without_database();
    env.as_production();
    let output = api_command(&env).arg("demo-data").output().unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("api: refusing to load demo data in production"),
        "{stderr}"
    );
}

#[test]
fn a_malformed_setting_stops_the_api_with_one_line_naming_it() {
    let env = TestEnv::without_database();
    let output = api_command(&env).env("PORT", "http").output().unwrap();

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("api: setting PORT is malformed:"),
        "{stderr}"
    );
}

/// The binary logs JSON with the request id on the request's lines, and stops cleanly on
/// SIGTERM.
#[tokio::test]
async fn request_logs_carry_the_request_id_and_sigterm_stops_the_api_cleanly() {
    let mut env = TestEnv::new().await;
    let port = closed_port();
    env.set("PORT", port.to_string())
        .set("LOG_FORMAT", "json")
        .set("RUST_LOG", "info");
    let mut child = api_command(&env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/health/live");
    eventually!(
        "the api answers",
        client
            .get(&url)
            .header("x-request-id", "log-trace-id-7")
            .send()
            .await
            .is_ok_and(|response| response.status() == 200)
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");

    let lines: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map(Result::unwrap)
        .collect();
    let request_lines: Vec<&String> = lines
        .iter()
        .filter(|line| line.contains("\"path\":\"/health/live\""))
        .collect();
    assert!(
        !request_lines.is_empty(),
        "no request log lines in {lines:?}"
    );
    for line in request_lines {
        let parsed: serde_json::Value = serde_json::from_str(line).expect("JSON log lines");
        assert_eq!(parsed["span"]["request_id"], "log-trace-id-7", "{line}");
    }
}
