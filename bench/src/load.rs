//! The on-sale itself: every buyer submits one booking and long-polls for its outcome, with
//! `concurrency` buyers in flight at once (a closed loop), bounded by `max_duration`.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant, SystemTime},
};

use futures::StreamExt;
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng, rngs::StdRng};
use serde_json::{Value, json};
use test_support::fixtures::{Buyer, ShowtimeFixture};
use uuid::Uuid;

use crate::Config;

pub struct LoadResult {
    pub submitted: u64,
    pub finished: u64,
    pub seconds: f64,
    /// Seconds from the start to the answer of the last booking that got seats.
    pub sellout_seconds: f64,
    pub seats_reserved: u64,
    /// Microseconds from submit to a final answer.
    pub latency: Histogram<u64>,
    pub by_status: BTreeMap<String, u64>,
    pub by_reason: BTreeMap<String, u64>,
    pub http_errors: BTreeMap<String, u64>,
    /// Decided bookings and their owners' tokens, for the read-path measurement.
    pub decided: Vec<(String, Uuid)>,
    /// Per decided booking: submitted, accepted and answered, for the stage breakdown.
    pub moments: Vec<(Uuid, [SystemTime; 3])>,
}

enum Outcome {
    Final {
        latency: Duration,
        /// Wall-clock moments: submitted, accepted (202), final answer received.
        moments: [SystemTime; 3],
        view: Value,
        token: String,
        booking: Uuid,
    },
    HttpError(String),
    TimedOut,
}

pub(crate) fn request(config: &Config, showtime: &ShowtimeFixture, index: u32) -> Value {
    let mut rng = StdRng::seed_from_u64(u64::from(index));
    let quantity = rng.random_range(1..=4usize);
    if rng.random_bool(config.named_share.clamp(0.0, 1.0)) {
        let hot = &showtime.sections[0].seat_ids;
        let hot = &hot[..(config.hot_seats as usize).clamp(quantity, hot.len())];
        let start = rng.random_range(0..=hot.len() - quantity);
        json!({"showtime_id": showtime.showtime_id, "seat_ids": &hot[start..start + quantity]})
    } else {
        let section = &showtime.sections[rng.random_range(0..showtime.sections.len())];
        json!({"showtime_id": showtime.showtime_id, "section_id": section.section_id, "quantity": quantity})
    }
}

async fn one_buyer(client: &reqwest::Client, api: &str, buyer: &Buyer, body: Value) -> Outcome {
    let started = Instant::now();
    let submitted = SystemTime::now();
    let response = client
        .post(format!("{api}/api/bookings"))
        .bearer_auth(&buyer.token)
        .header("idempotency-key", Uuid::new_v4().to_string())
        .json(&body)
        .send()
        .await;
    let response = match response {
        Ok(response) if response.status().as_u16() == 202 => response,
        Ok(response) => return Outcome::HttpError(format!("POST {}", response.status().as_u16())),
        Err(error) => return Outcome::HttpError(format!("POST {}", error.without_url())),
    };
    let Ok(accepted) = response.json::<Value>().await else {
        return Outcome::HttpError("POST body".into());
    };
    let Some(booking) = accepted["booking_id"]
        .as_str()
        .and_then(|id| id.parse().ok())
    else {
        return Outcome::HttpError("POST body".into());
    };
    let accepted_at = SystemTime::now();
    for _ in 0..30 {
        let polled = client
            .get(format!("{api}/api/bookings/{booking}?wait=10"))
            .bearer_auth(&buyer.token)
            .send()
            .await;
        let view: Value = match polled {
            Ok(response) if response.status().is_success() => match response.json().await {
                Ok(view) => view,
                Err(_) => return Outcome::HttpError("GET body".into()),
            },
            Ok(response) => {
                return Outcome::HttpError(format!("GET {}", response.status().as_u16()));
            }
            Err(error) => return Outcome::HttpError(format!("GET {}", error.without_url())),
        };
        if view["status"] != "PENDING" {
            return Outcome::Final {
                latency: started.elapsed(),
                moments: [submitted, accepted_at, SystemTime::now()],
                view,
                token: buyer.token.clone(),
                booking,
            };
        }
    }
    Outcome::TimedOut
}

pub async fn flash_sale(
    config: &Config,
    api: &str,
    showtimes: &[ShowtimeFixture],
    buyers: &[Buyer],
) -> LoadResult {
    let client = crate::client(config.concurrency);
    let started = Instant::now();
    let deadline = started + config.max_duration;
    let mut outcomes = futures::stream::iter(buyers.iter().enumerate())
        .map(|(index, buyer)| {
            let body = request(config, &showtimes[index % showtimes.len()], index as u32);
            let client = &client;
            async move {
                if Instant::now() > deadline {
                    return None;
                }
                Some(one_buyer(client, api, buyer, body).await)
            }
        })
        .buffer_unordered(config.concurrency);
    let mut result = LoadResult {
        submitted: 0,
        finished: 0,
        seconds: 0.0,
        sellout_seconds: 0.0,
        seats_reserved: 0,
        latency: Histogram::new(3)
            .unwrap_or_else(|_| unreachable!("3 significant figures is valid")),
        by_status: BTreeMap::new(),
        by_reason: BTreeMap::new(),
        http_errors: BTreeMap::new(),
        decided: Vec::new(),
        moments: Vec::new(),
    };
    while let Some(outcome) = outcomes.next().await {
        let Some(outcome) = outcome else { continue };
        result.submitted += 1;
        match outcome {
            Outcome::Final {
                latency,
                moments,
                view,
                token,
                booking,
            } => {
                result.moments.push((booking, moments));
                result.finished += 1;
                let _ = result.latency.record(latency.as_micros() as u64);
                let status = view["status"].as_str().unwrap_or("?").to_owned();
                if status == "RESERVED" {
                    result.seats_reserved += view["seats"].as_array().map_or(0, Vec::len) as u64;
                    result.sellout_seconds = started.elapsed().as_secs_f64();
                }
                if let Some(reason) = view["reject_reason"].as_str() {
                    *result.by_reason.entry(reason.to_owned()).or_default() += 1;
                }
                *result.by_status.entry(status).or_default() += 1;
                result.decided.push((token, booking));
            }
            Outcome::HttpError(what) => *result.http_errors.entry(what).or_default() += 1,
            Outcome::TimedOut => {
                *result
                    .http_errors
                    .entry("never decided".into())
                    .or_default() += 1
            }
        }
    }
    result.seconds = started.elapsed().as_secs_f64();
    result
}
