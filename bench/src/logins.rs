//! A sign-in rush: accounts register and then sign in, from many parallel clients, against a
//! release API with the production argon2 cost (`ARGON2_*` as configured). It reports how the
//! hashing pool answered (created, signed in, refused with 503) and the API's memory: before,
//! at its peak, and once the rush is over.
//!
//! A client refused with 503 waits a moment and tries again, as an app would, so every account
//! ends registered and signed in. Loopback only, bounded in count and time.

use std::{collections::BTreeMap, time::Duration};

use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::{Config, processes::Stack};

/// Tries per request before the client gives up (each after a 503).
const MAX_TRIES: u32 = 600;

#[derive(Debug, Clone, Serialize)]
pub struct LoginReport {
    pub accounts: u32,
    pub concurrency: usize,
    pub hash_threads: String,
    pub argon2_memory_kib: String,
    pub seconds: f64,
    /// Hashes per second the API did (every sign-up and sign-in hashes once).
    pub api_hashes_per_second: f64,
    /// The raw limit, same run: hashes per second of this machine with the same cost and
    /// threads, in the benchmark's own process, nothing else around them.
    pub raw_hashes_per_second: f64,
    /// Answers by request and status (`register 201`, `login 503`, ...).
    pub answers: BTreeMap<String, u64>,
    pub api_before_mib: f64,
    pub api_peak_mib: f64,
    pub api_after_mib: f64,
}

impl std::fmt::Display for LoginReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "sign-in rush: {} accounts registered then signed in by {} parallel clients",
            self.accounts, self.concurrency
        )?;
        writeln!(
            f,
            "  argon2 {} KiB, PASSWORD_HASH_THREADS={}; {:.1} s",
            self.argon2_memory_kib, self.hash_threads, self.seconds
        )?;
        writeln!(
            f,
            "  hashes/s: API {:.1}, raw limit (same run) {:.1} ({:.2}x)",
            self.api_hashes_per_second,
            self.raw_hashes_per_second,
            self.api_hashes_per_second / self.raw_hashes_per_second.max(f64::MIN_POSITIVE)
        )?;
        for (answer, count) in &self.answers {
            writeln!(f, "  {answer}: {count}")?;
        }
        writeln!(
            f,
            "  API resident memory: {:.1} MiB before, {:.1} MiB peak, {:.1} MiB after",
            self.api_before_mib, self.api_peak_mib, self.api_after_mib
        )
    }
}

/// Hashes the raw limit is measured over.
const RAW_HASHES: u32 = 40;

/// Hashes per second with the run's argon2 cost and threads, all threads busy.
async fn raw_hash_rate(settings: &shared::config::Settings) -> anyhow::Result<f64> {
    let hasher = shared::accounts::PasswordHasher::new(&settings.auth.argon2)?;
    let password = shared::accounts::Password::parse("a-long-password")?;
    let started = std::time::Instant::now();
    let hashes = (0..RAW_HASHES).map(|_| hasher.hash(&password));
    for hashed in futures::future::join_all(hashes).await {
        hashed?;
    }
    Ok(f64::from(RAW_HASHES) / started.elapsed().as_secs_f64())
}

pub async fn run(config: Config, accounts: u32) -> anyhow::Result<LoginReport> {
    let (values, db) = crate::prepare(&config).await?;
    let settings = shared::config::Settings::from_map(&values)?;
    let raw = raw_hash_rate(&settings).await?;
    let stack = Stack::start(&config, &values).await?;
    let before = stack.api_resident_mib();
    let client = crate::client(config.concurrency);
    let started = std::time::Instant::now();
    let api = stack.api_url.clone();
    let mut answers = BTreeMap::new();
    let mut outcomes = futures::stream::iter(0..accounts)
        .map(|index| {
            let client = &client;
            let api = &api;
            async move {
                let email = format!("rush-{index}@example.com");
                let body = json!({"name": "Rush", "email": email, "password": "a-long-password"});
                let mut seen = Vec::new();
                seen.extend(
                    send(
                        client,
                        &format!("{api}/api/auth/register"),
                        &body,
                        "register",
                    )
                    .await,
                );
                let login = json!({"email": email, "password": "a-long-password"});
                seen.extend(send(client, &format!("{api}/api/auth/login"), &login, "login").await);
                seen
            }
        })
        .buffer_unordered(config.concurrency);
    while let Some(seen) = outcomes.next().await {
        for answer in seen {
            *answers.entry(answer).or_default() += 1;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    // What the process keeps once the rush is over.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = stack.api_resident_mib();
    let peak = stack.peak_memory().api_mib;
    stack.stop().await;
    db.close().await;
    crate::drop_database(&values["DATABASE_URL"]).await;
    Ok(LoginReport {
        accounts,
        concurrency: config.concurrency,
        hash_threads: values
            .get("PASSWORD_HASH_THREADS")
            .cloned()
            .unwrap_or_else(|| "cores".into()),
        argon2_memory_kib: values
            .get("ARGON2_MEMORY_KIB")
            .cloned()
            .unwrap_or_else(|| "19456".into()),
        seconds,
        api_hashes_per_second: f64::from(accounts) * 2.0 / seconds,
        raw_hashes_per_second: raw,
        answers,
        api_before_mib: before,
        api_peak_mib: peak,
        api_after_mib: after,
    })
}

/// Sends until the answer is not a 503; every answer seen, as `what status`.
async fn send(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
    what: &str,
) -> Vec<String> {
    let mut seen = Vec::new();
    for _ in 0..MAX_TRIES {
        let status = match client.post(url).json(body).send().await {
            Ok(response) => response.status().as_u16().to_string(),
            Err(_) => "connection error".to_owned(),
        };
        let refused = status == "503";
        seen.push(format!("{what} {status}"));
        if !refused {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    seen.push(format!("{what} gave up"));
    seen
}
