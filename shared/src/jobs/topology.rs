//! Queue names, arguments and declarations, made in one place for producers and consumers.
//!
//! RabbitMQ refuses to redeclare a queue with different arguments, so whoever touches a queue
//! first must declare it exactly as everyone else does. Each job kind gets:
//! - a durable work queue `<prefix>.<name>`, whose rejected messages go to
//! - the direct exchange `<prefix>.dead-letter`, routed by job name to
//! - a durable dead-letter queue `<prefix>.<name>.dead`, kept for inspection and replay.
//!
//! A partitioned kind (reservations) also gets a ring: a consistent-hash exchange
//! `<prefix>.<name>.ring-<n>` over n = `RABBITMQ_PARTITIONS` durable queues
//! `<prefix>.<name>.ring-<n>.part-<i>` (plugin `rabbitmq_consistent_hash_exchange`). The
//! exchange hashes each job's partition key, so the jobs of one key always wait in the same
//! partition, and each partition is consumed by one worker process at a time (an exclusive
//! consumer; see `workers::partitions`). Jobs without a key, and replays from the dead-letter
//! queue, go to the plain work queue.
//!
//! The count is in the names, so changing it makes a new ring instead of rebinding the old
//! one: while processes of both settings run, each ring is consumed by its own; jobs left in
//! the old ring afterwards are published again by the sweeps (the API keeps each accepted job
//! until its booking is recorded), and the old queues can then be deleted.

use std::time::Duration;

use lapin::{
    Channel, ExchangeKind,
    options::{
        BasicConsumeOptions, BasicNackOptions, BasicRejectOptions, ExchangeDeclareOptions,
        QueueBindOptions, QueueDeclareOptions,
    },
    types::{AMQPValue, FieldTable},
};

use super::Job;
use crate::config::RabbitMqSettings;

#[derive(Debug, Clone)]
pub struct QueueTopology {
    prefix: String,
    expires: Option<Duration>,
    partitions: u16,
}

/// The exchange type of `rabbitmq_consistent_hash_exchange`.
const CONSISTENT_HASH: &str = "x-consistent-hash";

impl QueueTopology {
    pub fn new(settings: &RabbitMqSettings) -> Self {
        Self {
            prefix: settings.queue_prefix.clone(),
            expires: settings.queue_expires,
            partitions: settings.partitions,
        }
    }

    /// How many partition queues a partitioned kind has.
    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    /// The consistent-hash exchange that spreads `J`'s jobs over its partitions.
    pub fn partition_exchange<J: Job>(&self) -> String {
        format!("{}.{}.ring-{}", self.prefix, J::NAME, self.partitions)
    }

    /// Partition `index` (from 0) of `J`.
    pub fn partition_queue<J: Job>(&self, index: u16) -> String {
        format!("{}.part-{index}", self.partition_exchange::<J>())
    }

    pub fn queue<J: Job>(&self) -> String {
        self.queue_named(J::NAME)
    }

    pub fn dead_letter_queue<J: Job>(&self) -> String {
        self.dead_letter_queue_named(J::NAME)
    }

    /// The work queue of the job kind called `kind`.
    pub fn queue_named(&self, kind: &str) -> String {
        format!("{}.{kind}", self.prefix)
    }

    pub fn dead_letter_queue_named(&self, kind: &str) -> String {
        format!("{}.{kind}.dead", self.prefix)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead-letter", self.prefix)
    }

    /// Arguments of the work queue of `J`: where its rejected messages go.
    pub fn queue_arguments<J: Job>(&self) -> FieldTable {
        let mut arguments = self.expiry_arguments();
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(self.dead_letter_exchange().into()),
        );
        arguments.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(J::NAME.into()),
        );
        arguments
    }

    fn expiry_arguments(&self) -> FieldTable {
        let mut arguments = FieldTable::default();
        if let Some(expires) = self.expires {
            let millis = i64::try_from(expires.as_millis()).unwrap_or(i64::MAX);
            arguments.insert("x-expires".into(), AMQPValue::LongLongInt(millis));
        }
        arguments
    }

    /// Declares the work queue of `J` with its dead-letter exchange and queue. Idempotent.
    pub async fn declare<J: Job>(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        channel
            .exchange_declare(
                self.dead_letter_exchange().as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                self.dead_letter_queue::<J>().as_str().into(),
                durable,
                self.expiry_arguments(),
            )
            .await?;
        channel
            .queue_bind(
                self.dead_letter_queue::<J>().as_str().into(),
                self.dead_letter_exchange().as_str().into(),
                J::NAME.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        channel
            .queue_declare(
                self.queue::<J>().as_str().into(),
                durable,
                self.queue_arguments::<J>(),
            )
            .await?;
        if J::PARTITIONED {
            self.declare_partitions::<J>(channel).await?;
        }
        Ok(())
    }

    /// Declares the consistent-hash exchange of `J`. A broker without the plugin answers by
    /// closing the whole connection (503 COMMAND_INVALID, "unknown exchange type").
    pub async fn declare_partition_exchange<J: Job>(
        &self,
        channel: &Channel,
    ) -> Result<(), lapin::Error> {
        channel
            .exchange_declare(
                self.partition_exchange::<J>().as_str().into(),
                ExchangeKind::Custom(CONSISTENT_HASH.into()),
                ExchangeDeclareOptions {
                    durable: true,
                    // Short-lived environments: gone with the last of its expiring queues.
                    auto_delete: self.expires.is_some(),
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
    }

    async fn declare_partitions<J: Job>(&self, channel: &Channel) -> Result<(), lapin::Error> {
        let exchange = self.partition_exchange::<J>();
        self.declare_partition_exchange::<J>(channel).await?;
        for index in 0..self.partitions {
            let queue = self.partition_queue::<J>(index);
            channel
                .queue_declare(
                    queue.as_str().into(),
                    QueueDeclareOptions {
                        durable: true,
                        ..QueueDeclareOptions::default()
                    },
                    self.queue_arguments::<J>(),
                )
                .await?;
            // The binding key is the partition's weight on the hash ring: all equal.
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.as_str().into(),
                    "1".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
        Ok(())
    }

    /// How a worker consumes the queue of `J` through apalis-amqp.
    ///
    /// apalis-amqp acknowledges after the handler returns, and so after its database commit.
    /// It nacks a failed job with `nack_options` and rejects a killed one with
    /// `reject_options`. The worker retries in process and kills a job only once its attempts
    /// are used up or the failure is permanent, so a kill is rejected without requeue and goes
    /// to the dead-letter queue. A plain failure reaches the broker only when the worker is
    /// shutting down before its retries are over: that job is requeued for another worker.
    pub fn consumer_config<J: Job>(&self, prefetch: u16) -> apalis_amqp::Config {
        apalis_amqp::Config::default()
            .queue(self.queue::<J>())
            .prefetch_count(prefetch)
            .declare_arguments(self.queue_arguments::<J>())
            .nack_options(BasicNackOptions {
                multiple: false,
                requeue: true,
            })
            .reject_options(BasicRejectOptions { requeue: false })
    }

    /// How a worker consumes partition `index` of `J`: as [`Self::consumer_config`], and
    /// exclusively, so the broker refuses a second process while this one consumes it.
    pub fn partition_consumer_config<J: Job>(
        &self,
        index: u16,
        prefetch: u16,
    ) -> apalis_amqp::Config {
        self.consumer_config::<J>(prefetch)
            .queue(self.partition_queue::<J>(index))
            .consume_options(BasicConsumeOptions {
                exclusive: true,
                ..BasicConsumeOptions::default()
            })
    }
}
