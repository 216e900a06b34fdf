//! Where the time of one booking goes, from the client's clock and the booking's own
//! timestamps (same machine, same wall clock): the HTTP request that records it, the wait in
//! the queue and batch until the transaction that decides it, and the delivery of the answer
//! back to the waiting client.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Stages {
    /// POST sent to 202 received (auth, checks, key claim, publish).
    pub http_accept: Spread,
    /// Accepted (the booking's `created_at`, stamped by the API) to decided (queue wait, batch,
    /// lock, commit).
    pub queue_and_reservation: Spread,
    /// Decided to the client holding the answer (status write, push, long-poll wake-up).
    pub answer_delivery: Spread,
    /// Bookings whose answer took longer than [`SLOW`], counted by the stage that took most
    /// of it: where the tail of the latency comes from.
    pub slow_by_stage: [usize; 3],
}

/// Median and 99th percentile of one stage, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Spread {
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// An answer slower than this counts in [`Stages::slow_by_stage`].
pub const SLOW: std::time::Duration = std::time::Duration::from_secs(2);

fn millis(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn spread(mut values: Vec<f64>) -> Spread {
    if values.is_empty() {
        return Spread::default();
    }
    values.sort_by(f64::total_cmp);
    let at = |quantile: f64| values[((values.len() - 1) as f64 * quantile).round() as usize];
    Spread {
        p50_ms: at(0.5),
        p99_ms: at(0.99),
    }
}

pub async fn breakdown(db: &PgPool, moments: &[(Uuid, [SystemTime; 3])]) -> anyhow::Result<Stages> {
    let ids: Vec<Uuid> = moments.iter().map(|(id, _)| *id).collect();
    let rows: Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)> =
        sqlx::query_as("SELECT id, created_at, updated_at FROM bookings WHERE id = ANY($1)")
            .bind(&ids)
            .fetch_all(db)
            .await?;
    let stamps: std::collections::HashMap<Uuid, (SystemTime, SystemTime)> = rows
        .into_iter()
        .map(|(id, created, decided)| (id, (created.into(), decided.into())))
        .collect();
    let (mut http, mut queue, mut delivery) = (Vec::new(), Vec::new(), Vec::new());
    let mut slow_by_stage = [0; 3];
    for (id, [submitted, accepted, answered]) in moments {
        let Some((created, decided)) = stamps.get(id) else {
            continue;
        };
        let stages = [
            millis(*submitted, *accepted),
            millis(*created, *decided),
            millis(*decided, *answered),
        ];
        if millis(*submitted, *answered) > SLOW.as_secs_f64() * 1000.0 {
            let longest = (0..3)
                .max_by(|a, b| stages[*a].total_cmp(&stages[*b]))
                .unwrap_or(0);
            slow_by_stage[longest] += 1;
        }
        http.push(stages[0]);
        queue.push(stages[1]);
        delivery.push(stages[2]);
    }
    Ok(Stages {
        http_accept: spread(http),
        queue_and_reservation: spread(queue),
        answer_delivery: spread(delivery),
        slow_by_stage,
    })
}
