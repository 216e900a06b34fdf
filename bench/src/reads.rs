//! The read path at the same concurrency: booking status polls and availability reads, next to
//! a bare axum JSON endpoint served the same way.

use std::time::Instant;

use rand::Rng;
use uuid::Uuid;

use crate::{Config, processes::Stack};
use test_support::fixtures::ShowtimeFixture;

#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadRate {
    pub requests: u64,
    pub errors: u64,
    pub per_second: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Reads {
    pub status: ReadRate,
    /// The compact form, what a client polls.
    pub availability: ReadRate,
    /// The full form, every seat spelled out.
    pub availability_full: ReadRate,
    pub bare: ReadRate,
}

async fn hammer<F>(config: &Config, make: F) -> ReadRate
where
    F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + Clone + 'static,
{
    let client = crate::client(config.concurrency);
    let started = Instant::now();
    let deadline = started + config.read_duration;
    let tasks = (0..config.concurrency).map(|_| {
        let (client, make) = (client.clone(), make.clone());
        tokio::spawn(async move {
            let (mut ok, mut errors) = (0u64, 0u64);
            while Instant::now() < deadline {
                match make(&client).send().await {
                    Ok(response) if response.status().is_success() => {
                        // Read the body: a client that drops it measures nothing.
                        if response.bytes().await.is_ok() {
                            ok += 1;
                        } else {
                            errors += 1;
                        }
                    }
                    _ => errors += 1,
                }
            }
            (ok, errors)
        })
    });
    let (mut requests, mut errors) = (0, 0);
    for task in futures::future::join_all(tasks).await {
        let (ok, failed) = task.unwrap_or((0, 0));
        requests += ok;
        errors += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    ReadRate {
        requests,
        errors,
        per_second: requests as f64 / seconds,
    }
}

pub async fn measure(
    config: &Config,
    stack: &Stack,
    showtime: &ShowtimeFixture,
    decided: &[(String, Uuid)],
) -> anyhow::Result<Reads> {
    let bare_url = format!("{}/bare", stack.bare_url);
    let bare = hammer(config, move |client| client.get(&bare_url)).await;
    let decided = std::sync::Arc::new(decided.to_vec());
    let api = stack.api_url.clone();
    let status = if decided.is_empty() {
        ReadRate {
            requests: 0,
            errors: 0,
            per_second: 0.0,
        }
    } else {
        hammer(config, move |client| {
            let (token, booking) = &decided[rand::rng().random_range(0..decided.len())];
            client
                .get(format!("{api}/api/bookings/{booking}"))
                .bearer_auth(token)
        })
        .await
    };
    let compact_url = format!(
        "{}/api/showtimes/{}/availability/compact",
        stack.api_url, showtime.showtime_id
    );
    let availability = hammer(config, move |client| client.get(&compact_url)).await;
    let full_url = format!(
        "{}/api/showtimes/{}/availability",
        stack.api_url, showtime.showtime_id
    );
    let availability_full = hammer(config, move |client| client.get(&full_url)).await;
    Ok(Reads {
        status,
        availability,
        availability_full,
        bare,
    })
}
