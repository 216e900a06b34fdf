//! Publishing jobs with the guarantees apalis-amqp's own sink does not give: persistent
//! messages, publisher confirms, and one long-lived channel instead of one per message.
//!
//! `publish` returns only once the broker has confirmed that it stored the message, so a
//! caller that got `Ok` may tell its client the work is accepted. The body and properties are
//! those the apalis-amqp consumer reads: the job as JSON, metadata in message properties.

use std::{collections::HashSet, sync::Arc, time::Duration};

use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
    options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions},
    types::FieldTable,
};
use tokio::sync::Mutex;

use super::{Job, QueueTopology};
use crate::config::RabbitMqSettings;

/// Persistent delivery mode: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the message broker is unreachable")]
    Unavailable(#[source] lapin::Error),
    #[error("the message broker did not take the message")]
    NotConfirmed,
    #[error("the broker took too long to answer")]
    TimedOut,
    #[error("the job could not be encoded")]
    Encode(#[from] serde_json::Error),
}

/// A cheap-to-clone handle that publishes jobs; reconnects on the next publish after the
/// connection drops.
#[derive(Clone)]
pub struct JobPublisher {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    topology: QueueTopology,
    timeout: Duration,
    link: Mutex<Option<Link>>,
}

struct Link {
    // Kept so the connection lives as long as its channel.
    _connection: Connection,
    channel: Channel,
    declared: HashSet<&'static str>,
}

impl JobPublisher {
    /// Makes a publisher; it connects on first use, so the broker may be down at start-up.
    pub fn new(settings: &RabbitMqSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                url: settings.url.expose().to_owned(),
                topology: QueueTopology::new(settings),
                timeout: Duration::from_secs(5),
                link: Mutex::new(None),
            }),
        }
    }

    pub fn topology(&self) -> &QueueTopology {
        &self.inner.topology
    }

    /// Publishes `job` and waits for the broker's confirmation.
    #[tracing::instrument(skip_all, fields(job = J::NAME, key = %job.idempotency_key()))]
    pub async fn publish<J: Job>(&self, job: &J) -> Result<(), PublishError> {
        let body = serde_json::to_vec(job)?;
        let channel = self.channel_for::<J>().await?;
        let properties = BasicProperties::default()
            .with_delivery_mode(PERSISTENT)
            .with_content_type("application/json".into())
            .with_message_id(job.idempotency_key().into())
            .with_type(J::NAME.into())
            .with_app_id("bms".into());
        let topology = &self.inner.topology;
        let (exchange, routing_key) = match job.partition_key() {
            Some(key) if J::PARTITIONED => (topology.partition_exchange::<J>(), key),
            _ => (String::new(), topology.queue::<J>()),
        };
        let confirmation = tokio::time::timeout(self.inner.timeout, async {
            channel
                .basic_publish(
                    exchange.as_str().into(),
                    routing_key.as_str().into(),
                    // An unroutable message (its queue deleted since we declared it) comes back
                    // instead of vanishing with an ack.
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &body,
                    properties,
                )
                .await?
                .await
        })
        .await
        .map_err(|_| PublishError::TimedOut)?
        // A closed channel is noticed and replaced by the next call to `connected`.
        .map_err(PublishError::Unavailable)?;
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_returned)) => {
                // Declared again on the next publish.
                if let Some(link) = self.inner.link.lock().await.as_mut() {
                    link.declared.remove(J::NAME);
                }
                Err(PublishError::NotConfirmed)
            }
            Confirmation::Nack(_) | Confirmation::NotRequested => Err(PublishError::NotConfirmed),
        }
    }

    /// Start-up check that the broker can route the partitioned kind `J`: an error names the
    /// missing plugin (without it no reservation could be published, and the connection of
    /// every declaration would be closed). A broker that cannot be reached is no error here:
    /// the processes start without it and reconnect.
    pub async fn check_partitioning<J: Job>(&self) -> Result<(), String> {
        let declared = tokio::time::timeout(self.inner.timeout, async {
            let connection =
                Connection::connect(&self.inner.url, ConnectionProperties::default()).await?;
            let channel = connection.create_channel().await?;
            self.inner
                .topology
                .declare_partition_exchange::<J>(&channel)
                .await?;
            let _ = connection.close(200, "checked".into()).await;
            Ok::<(), lapin::Error>(())
        })
        .await;
        match declared {
            Ok(Err(error)) if matches!(error.kind(), lapin::ErrorKind::ProtocolError(refusal) if refusal.get_id() == 503) => {
                Err(format!(
                    "RabbitMQ refuses the consistent-hash exchange that routes {} jobs ({error}): \
                     enable its plugin with `rabbitmq-plugins enable rabbitmq_consistent_hash_exchange`",
                    J::NAME
                ))
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "broker not reachable at start-up; partitions are checked when it is");
                Ok(())
            }
            Err(_) => Ok(()),
            Ok(Ok(())) => Ok(()),
        }
    }

    /// Makes one round trip to the broker, for health reports.
    pub async fn ping(&self) -> Result<(), PublishError> {
        let channel = {
            let mut link = self.inner.link.lock().await;
            self.connected(&mut link).await?.channel.clone()
        };
        let passive = ExchangeDeclareOptions {
            passive: true,
            ..ExchangeDeclareOptions::default()
        };
        tokio::time::timeout(
            self.inner.timeout,
            channel.exchange_declare(
                "amq.direct".into(),
                ExchangeKind::Direct,
                passive,
                FieldTable::default(),
            ),
        )
        .await
        .map_err(|_| PublishError::TimedOut)?
        .map_err(PublishError::Unavailable)
    }

    async fn channel_for<J: Job>(&self) -> Result<Channel, PublishError> {
        let mut guard = self.inner.link.lock().await;
        let link = self.connected(&mut guard).await?;
        if !link.declared.contains(J::NAME) {
            let declared = tokio::time::timeout(
                self.inner.timeout,
                self.inner.topology.declare::<J>(&link.channel),
            )
            .await
            .map_err(|_| PublishError::TimedOut)?;
            if let Err(error) = declared {
                *guard = None;
                return Err(PublishError::Unavailable(error));
            }
            link.declared.insert(J::NAME);
        }
        Ok(link.channel.clone())
    }

    async fn connected<'a>(
        &self,
        link: &'a mut Option<Link>,
    ) -> Result<&'a mut Link, PublishError> {
        let usable = link
            .as_ref()
            .is_some_and(|link| link.channel.status().connected());
        if !usable {
            *link = None;
            let fresh = tokio::time::timeout(self.inner.timeout, self.connect())
                .await
                .map_err(|_| PublishError::TimedOut)?
                .map_err(PublishError::Unavailable)?;
            *link = Some(fresh);
        }
        link.as_mut().ok_or(PublishError::NotConfirmed)
    }

    async fn connect(&self) -> Result<Link, lapin::Error> {
        let connection =
            Connection::connect(&self.inner.url, ConnectionProperties::default()).await?;
        let channel = connection.create_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Link {
            _connection: connection,
            channel,
            declared: HashSet::new(),
        })
    }
}
