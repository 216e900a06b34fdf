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
    /// Median milliseconds: POST sent to 202 received (auth, checks, insert, publish).
    pub http_accept_ms: f64,
    /// Median milliseconds: booking row created to decided (queue wait, batch, lock, commit).
    pub queue_and_reservation_ms: f64,
    /// Median milliseconds: decided to the client holding the answer (status write, push).
    pub answer_delivery_ms: f64,
}

fn millis(from: SystemTime, to: SystemTime) -> f64 {
    to.duration_since(from)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
    for (id, [submitted, accepted, answered]) in moments {
        let Some((created, decided)) = stamps.get(id) else {
            continue;
        };
        http.push(millis(*submitted, *accepted));
        queue.push(millis(*created, *decided));
        delivery.push(millis(*decided, *answered));
    }
    Ok(Stages {
        http_accept_ms: median(http),
        queue_and_reservation_ms: median(queue),
        answer_delivery_ms: median(delivery),
    })
}
