//! What operators ask of the queues: how deep each one is and who consumes it, and the dead
//! letters: list them, read one, and replay it once its cause is fixed.
//!
//! RabbitMQ has no way to peek at a queue, so listing takes messages without acknowledging
//! them and closes the channel, which puts them all back. Replaying takes messages until it
//! finds the one asked for, publishes it to its work queue (persistent, confirmed), and only
//! then acknowledges it on the dead-letter queue: a crash in between leaves a copy in both,
//! which the idempotent handlers absorb, never none.

use lapin::{
    BasicProperties, Channel, Connection, ConnectionProperties,
    options::{
        BasicAckOptions, BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions,
        QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{
    Job, QueueTopology, Refund, ReserveSeats, SendEmailVerification, SendOtp, VerifyPayment,
};
use crate::{
    audit::{self, Actor},
    config::RabbitMqSettings,
};

/// The names of every job kind, as their queues are named.
pub const KINDS: [&str; 5] = [
    ReserveSeats::NAME,
    VerifyPayment::NAME,
    Refund::NAME,
    SendOtp::NAME,
    SendEmailVerification::NAME,
];

/// How many dead letters one listing or replay looks through at most.
const SCAN_LIMIT: usize = 1_000;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueHealth {
    pub kind: &'static str,
    pub queue: String,
    /// Messages waiting (not counting those delivered and not yet acknowledged), in the work
    /// queue and, for a partitioned kind, its partitions.
    pub ready: u32,
    /// Consumers of the work queue: one per worker process.
    pub consumers: u32,
    /// For a partitioned kind: how many partitions it has...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u16>,
    /// ...and how many of them a worker consumes now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions_consumed: Option<u16>,
    pub dead_letters: u32,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetter {
    /// The job's idempotency key; replay by it.
    pub message_id: Option<String>,
    pub kind: String,
    /// The job as it was published.
    pub job: Value,
    /// Why and how often the broker dead-lettered it (its `x-death` header), when it says.
    pub deaths: Option<i64>,
    pub reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueAdminError {
    #[error("no job kind is called {0:?}")]
    UnknownKind(String),
    #[error("the message broker is unreachable")]
    Broker(#[from] lapin::Error),
    #[error("the broker did not confirm the replayed message")]
    NotConfirmed,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Clone)]
pub struct QueueAdmin {
    url: String,
    topology: QueueTopology,
}

impl QueueAdmin {
    pub fn new(settings: &RabbitMqSettings) -> Self {
        Self {
            url: settings.url.expose().to_owned(),
            topology: QueueTopology::new(settings),
        }
    }

    async fn connect(&self) -> Result<Connection, lapin::Error> {
        Connection::connect(&self.url, ConnectionProperties::default()).await
    }

    fn kind(name: &str) -> Result<&'static str, QueueAdminError> {
        KINDS
            .into_iter()
            .find(|kind| *kind == name)
            .ok_or_else(|| QueueAdminError::UnknownKind(name.to_owned()))
    }

    /// Depth, consumers and dead letters of every job kind's queues. A queue nobody declared
    /// yet counts as empty.
    pub async fn health(&self) -> Result<Vec<QueueHealth>, QueueAdminError> {
        let connection = self.connect().await?;
        let mut report = Vec::with_capacity(KINDS.len());
        for kind in KINDS {
            let queue = self.topology.queue_named(kind);
            let (mut ready, consumers) = counts(&connection, &queue).await?;
            let (dead_letters, _) =
                counts(&connection, &self.topology.dead_letter_queue_named(kind)).await?;
            let (mut partitions, mut partitions_consumed) = (None, None);
            if kind == ReserveSeats::NAME {
                let count = self.topology.partitions();
                let mut consumed = 0;
                for index in 0..count {
                    let queue = self.topology.partition_queue::<ReserveSeats>(index);
                    let (waiting, consumers) = counts(&connection, &queue).await?;
                    ready = ready.saturating_add(waiting);
                    consumed += u16::from(consumers > 0);
                }
                partitions = Some(count);
                partitions_consumed = Some(consumed);
            }
            report.push(QueueHealth {
                kind,
                queue,
                ready,
                consumers,
                partitions,
                partitions_consumed,
                dead_letters,
            });
        }
        let _ = connection.close(200, "done".into()).await;
        Ok(report)
    }

    /// Up to `limit` dead letters of a kind, oldest first; they stay in their queue.
    pub async fn dead_letters(
        &self,
        kind: &str,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, QueueAdminError> {
        let kind = Self::kind(kind)?;
        let connection = self.connect().await?;
        let channel = connection.create_channel().await?;
        let queue = self.topology.dead_letter_queue_named(kind);
        let mut letters = Vec::new();
        while letters.len() < limit.min(SCAN_LIMIT) {
            let Some(message) = channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            else {
                break;
            };
            letters.push(dead_letter(
                kind,
                &message.delivery.properties,
                &message.delivery.data,
            ));
        }
        // Closing without acknowledging puts every message back, in order.
        let _ = connection.close(200, "listed".into()).await;
        Ok(letters)
    }

    /// Puts a dead letter back on its work queue once its cause is fixed, and records who did
    /// it. `false` if there is none.
    pub async fn replay_for(
        &self,
        db: &sqlx::PgPool,
        actor: &Actor,
        kind: &str,
        message_id: &str,
    ) -> Result<bool, QueueAdminError> {
        if !self.replay(kind, message_id).await? {
            return Ok(false);
        }
        let job = format!("{kind}:{message_id}");
        audit::record_one(db, actor.entry("job.replayed", "job", job)).await?;
        Ok(true)
    }

    /// Moves the dead letter with `message_id` back to its work queue. `false` if there is none.
    async fn replay(&self, kind: &str, message_id: &str) -> Result<bool, QueueAdminError> {
        let kind = Self::kind(kind)?;
        let connection = self.connect().await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let queue = self.topology.dead_letter_queue_named(kind);
        let mut found = false;
        for _ in 0..SCAN_LIMIT {
            let Some(message) = channel
                .basic_get(queue.as_str().into(), BasicGetOptions { no_ack: false })
                .await?
            else {
                break;
            };
            let properties = &message.delivery.properties;
            if properties.message_id().as_ref().map(|id| id.as_str()) != Some(message_id) {
                continue;
            }
            republish(
                &channel,
                &self.topology.queue_named(kind),
                kind,
                message_id,
                &message.delivery.data,
            )
            .await?;
            message
                .delivery
                .acker
                .ack(BasicAckOptions::default())
                .await?;
            found = true;
            break;
        }
        let _ = connection.close(200, "replayed".into()).await;
        Ok(found)
    }
}

async fn counts(connection: &Connection, queue: &str) -> Result<(u32, u32), lapin::Error> {
    // A passive declare of a missing queue closes its channel: one channel per question.
    let channel = connection.create_channel().await?;
    let passive = QueueDeclareOptions {
        passive: true,
        ..QueueDeclareOptions::default()
    };
    match channel
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await
    {
        Ok(declared) => {
            let _ = channel.close(200, "counted".into()).await;
            Ok((declared.message_count(), declared.consumer_count()))
        }
        // The broker closes the channel when the queue does not exist (404).
        Err(error) if channel.status().connected() || !connection.status().connected() => {
            Err(error)
        }
        Err(_) => Ok((0, 0)),
    }
}

async fn republish(
    channel: &Channel,
    queue: &str,
    kind: &'static str,
    message_id: &str,
    body: &[u8],
) -> Result<(), QueueAdminError> {
    let properties = BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(message_id.into())
        .with_type(kind.into())
        .with_app_id("bms".into());
    let confirmation = channel
        .basic_publish(
            "".into(),
            queue.into(),
            BasicPublishOptions::default(),
            body,
            properties,
        )
        .await?
        .await?;
    if confirmation.is_ack() {
        Ok(())
    } else {
        Err(QueueAdminError::NotConfirmed)
    }
}

fn dead_letter(kind: &str, properties: &BasicProperties, body: &[u8]) -> DeadLetter {
    let death = properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get("x-death").cloned())
        .and_then(|value| match value {
            AMQPValue::FieldArray(deaths) => deaths.as_slice().first().cloned(),
            _ => None,
        })
        .and_then(|first| match first {
            AMQPValue::FieldTable(table) => Some(table),
            _ => None,
        });
    let field = |name: &str| {
        death
            .as_ref()
            .and_then(|table| table.inner().get(name).cloned())
    };
    DeadLetter {
        message_id: properties.message_id().as_ref().map(|id| id.to_string()),
        kind: kind.to_owned(),
        job: serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned())),
        deaths: field("count").and_then(|count| match count {
            AMQPValue::LongLongInt(n) => Some(n),
            AMQPValue::LongInt(n) => Some(i64::from(n)),
            _ => None,
        }),
        reason: field("reason").and_then(|reason| match reason {
            AMQPValue::LongString(text) => Some(text.to_string()),
            AMQPValue::ShortString(text) => Some(text.to_string()),
            _ => None,
        }),
    }
}
