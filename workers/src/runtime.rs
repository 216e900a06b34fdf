//! Turning a [`RunJob`] kind into a running apalis worker on its RabbitMQ queue.
//!
//! Delivery contract:
//! - the message is acknowledged only after the handler returned `Ok`, i.e. after its commit;
//! - a transient failure is retried in this process with exponential backoff and jitter, up to
//!   `JOB_MAX_ATTEMPTS` attempts; then, or at once for a permanent failure, the job is killed
//!   and its message rejected into the kind's dead-letter queue;
//! - on shutdown no new job starts, jobs in flight finish, and a job whose retries were cut
//!   short is requeued for another worker; unacknowledged messages of a process that dies are
//!   redelivered by the broker;
//! - a lost broker connection never ends the process: the consumer reconnects with back-off
//!   and resumes, and a handler that was running finishes its work (it runs on a task of its
//!   own); its message, never acknowledged, is delivered again and found already done.

use std::{
    collections::BTreeMap,
    future::poll_fn,
    sync::{Arc, Mutex},
    time::Duration,
};

use apalis::{
    layers::{
        WorkerBuilderExt,
        retry::{HasherRng, RetryPolicy, backoff::ExponentialBackoffMaker, backoff::MakeBackoff},
    },
    prelude::{
        AbortError, Attempt, Backend, BoxDynError, Data, Event, EventListenerExt, WorkerBuilder,
        WorkerContext,
    },
};
use apalis_amqp::AmqpBackend;
use futures::{FutureExt, future::BoxFuture};
use shared::jobs::QueueTopology;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::context::{JobContext, JobError, RunJob};

pub type WorkerFuture = BoxFuture<'static, anyhow::Result<()>>;

/// Connections to RabbitMQ shared by the consumers of one process (one channel each).
pub fn amqp_pool(url: &str) -> anyhow::Result<deadpool_lapin::Pool> {
    let config = deadpool_lapin::Config {
        url: Some(url.to_owned()),
        // Every consumer, its queue declaration and its watchdog borrow from it now and then;
        // the default (twice the cores) can leave one waiting on the others.
        pool: Some(deadpool_lapin::PoolConfig::new(16)),
    };
    Ok(config.create_pool(Default::default, deadpool_lapin::Runtime::Tokio1)?)
}

/// The consumer of `J`'s queue, kept running until `shutdown` is cancelled: declares the
/// queues, consumes, and when the broker connection is lost (a restart, a network cut, a
/// broker-initiated close) starts over on a fresh connection after a capped, jittered
/// back-off. apalis-amqp 1.0 neither reconnects nor lets a backend or worker be reused after
/// its channel died, so each round builds both anew. The returned future ends only on
/// shutdown, once the jobs in flight are done.
pub fn queue_worker<J: RunJob>(
    ctx: JobContext,
    pool: deadpool_lapin::Pool,
    concurrency: u16,
    shutdown: CancellationToken,
    consumers: ConsumerStates,
) -> WorkerFuture {
    async move {
        let mut backoff = Reconnect::default();
        consumers.set(J::NAME, false);
        while !shutdown.is_cancelled() {
            let started = tokio::time::Instant::now();
            let outcome = consume_once::<J>(&ctx, &pool, concurrency, &shutdown, &consumers).await;
            consumers.set(J::NAME, false);
            if shutdown.is_cancelled() {
                break;
            }
            match outcome {
                Ok(()) => tracing::warn!(job = J::NAME, "the broker ended the consumer; reconnecting"),
                Err(error) => tracing::warn!(job = J::NAME, error = %format!("{error:#}"), "consumer lost its broker connection; reconnecting"),
            }
            metrics::counter!("broker_reconnects_total", "kind" => J::NAME).increment(1);
            if started.elapsed() > HEALTHY_RUN {
                backoff = Reconnect::default();
            }
            let pause = backoff.next_pause();
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => {}
            }
        }
        tracing::info!(job = J::NAME, "consumer stopped");
        Ok(())
    }
    .boxed()
}

/// A run that lasted this long was a working connection: the next loss starts the back-off
/// from the beginning again.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// Capped exponential back-off with full jitter between reconnection attempts, so replicas
/// that lost the broker together do not all come back in the same instant.
#[derive(Default)]
struct Reconnect {
    attempt: u32,
}

impl Reconnect {
    const FIRST: Duration = Duration::from_millis(200);
    const CAP: Duration = Duration::from_secs(15);

    fn next_pause(&mut self) -> Duration {
        let ceiling = Self::FIRST
            .saturating_mul(2u32.saturating_pow(self.attempt))
            .min(Self::CAP);
        self.attempt = self.attempt.saturating_add(1);
        ceiling.mul_f64(rand::random_range(0.5..=1.0))
    }
}

/// One connection's worth of consuming: returns when the connection is lost (an error, or the
/// consumer ended by the broker) or, with `Ok`, on shutdown.
async fn consume_once<J: RunJob>(
    ctx: &JobContext,
    pool: &deadpool_lapin::Pool,
    concurrency: u16,
    shutdown: &CancellationToken,
    consumers: &ConsumerStates,
) -> anyhow::Result<()> {
    let topology = QueueTopology::new(&ctx.core.settings.rabbitmq);
    let name = format!("{}-{}", J::NAME, Uuid::new_v4().simple());
    // A connection attempt that hangs neither blocks for the system's TCP timeout nor holds up
    // a shutdown.
    tokio::select! {
        declared = tokio::time::timeout(CONNECT_TIMEOUT, declare::<J>(&topology, pool)) => declared
            .map_err(|_| anyhow::anyhow!("connecting to the broker timed out"))??,
        () = shutdown.cancelled() => return Ok(()),
    }
    let config = topology.consumer_config::<J>(concurrency);
    let Some(backend) = start::<J>(pool, config, &name, shutdown).await? else {
        return Ok(());
    };
    consumers.set(J::NAME, true);
    run_consumer(
        ctx,
        pool,
        backend,
        &name,
        topology.queue::<J>(),
        concurrency,
        shutdown,
    )
    .await
}

/// Declares `J`'s queues (and partitions) as every producer and consumer does.
pub(crate) async fn declare<J: RunJob>(
    topology: &QueueTopology,
    pool: &deadpool_lapin::Pool,
) -> anyhow::Result<()> {
    // Back to the pool before a backend takes one: the pool is small.
    let connection = pool.get().await?;
    let channel = connection.create_channel().await?;
    topology.declare::<J>(&channel).await?;
    channel.close(200, "declared".into()).await?;
    Ok(())
}

/// Starts a consumer with `config` on queues already declared; `None` if `shutdown` came
/// first.
pub(crate) async fn start<J: RunJob>(
    pool: &deadpool_lapin::Pool,
    config: apalis_amqp::Config,
    name: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<AmqpBackend<J>>> {
    let starting = async {
        let mut backend: AmqpBackend<J> = AmqpBackend::new(pool.clone()).with_config(config);
        start_consuming(&mut backend, name).await?;
        Ok::<_, anyhow::Error>(backend)
    };
    tokio::select! {
        started = tokio::time::timeout(CONNECT_TIMEOUT, starting) => Ok(Some(started
            .map_err(|_| anyhow::anyhow!("starting a consumer timed out"))??)),
        () = shutdown.cancelled() => Ok(None),
    }
}

/// Runs the jobs `backend` delivers from `queue` until `shutdown` (then `Ok`, once the jobs in
/// flight are done) or until the consumer is lost (an error).
pub(crate) async fn run_consumer<J: RunJob>(
    ctx: &JobContext,
    pool: &deadpool_lapin::Pool,
    backend: AmqpBackend<J>,
    name: &str,
    queue: String,
    concurrency: u16,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let jobs = &ctx.core.settings.jobs;
    let backoff = ExponentialBackoffMaker::new(
        jobs.backoff_min,
        jobs.backoff_max,
        0.5,
        HasherRng::default(),
    )?
    .make_backoff();
    // The handler turns the last failed attempt into a kill, so the policy may allow them all.
    let retries = usize::try_from(jobs.max_attempts).unwrap_or(usize::MAX);
    // A consumer the broker cancelled (its queue deleted) ends its stream without an error, and
    // apalis then waits for the stop signal while consuming nothing: treat that end as a loss.
    let ended = CancellationToken::new();
    let worker = WorkerBuilder::new(name)
        .backend(backend)
        .data(ctx.clone())
        .concurrency(usize::from(concurrency))
        .on_event({
            let ended = ended.clone();
            move |_, event| {
                if matches!(event, Event::Exit) {
                    ended.cancel();
                }
            }
        })
        .retry(RetryPolicy::retries(retries).with_backoff(backoff))
        .build(execute::<J>);
    tracing::info!(job = J::NAME, worker = %name, %queue, "consuming");
    let stop = {
        let shutdown = shutdown.clone();
        let ended = ended.clone();
        let watchdog = consumer_gone(pool.clone(), queue);
        async move {
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = ended.cancelled() => {}
                () = watchdog => ended.cancel(),
            }
            Ok::<(), std::io::Error>(())
        }
    };
    worker
        .run_until(stop)
        .await
        .map_err(|error| anyhow::anyhow!("worker {name} stopped: {error}"))?;
    if ended.is_cancelled() && !shutdown.is_cancelled() {
        anyhow::bail!("the broker cancelled consumer {name}");
    }
    Ok(())
}

/// How often a consumer checks that the broker still delivers to it.
const WATCHDOG_EVERY: Duration = Duration::from_secs(30);

/// Resolves once the queue has no consumer at all although this one is running: the broker
/// cancelled it (the queue was deleted or failed over), which apalis-amqp 1.0 reports only as
/// a quiet end of its stream that leaves the worker idle until it is stopped.
async fn consumer_gone(pool: deadpool_lapin::Pool, queue: String) {
    loop {
        tokio::time::sleep(WATCHDOG_EVERY).await;
        // Unknown (the broker is unreachable) is left to the connection's own error.
        if consumer_count(&pool, &queue).await == Some(0) {
            return;
        }
    }
}

/// How many consumers `queue` has now; `None` if the broker did not say.
pub(crate) async fn consumer_count(pool: &deadpool_lapin::Pool, queue: &str) -> Option<u32> {
    let consumers = async {
        let connection = pool.get().await.ok()?;
        let channel = connection.create_channel().await.ok()?;
        let passive = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let declared = channel
            .queue_declare(queue.into(), passive, lapin::types::FieldTable::default())
            .await;
        let _ = channel.close(200, "checked".into()).await;
        declared.ok().map(|queue| queue.consumer_count())
    };
    tokio::time::timeout(CONNECT_TIMEOUT, consumers)
        .await
        .ok()
        .flatten()
}

/// Longest wait for a broker connection or a consumer to start; a blackholed broker otherwise
/// blocks for the operating system's TCP timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether each job kind's consumer is connected now, for `/health`.
#[derive(Clone, Default)]
pub struct ConsumerStates(Arc<Mutex<BTreeMap<&'static str, bool>>>);

impl ConsumerStates {
    fn set(&self, kind: &'static str, up: bool) {
        if let Ok(mut states) = self.0.lock() {
            states.insert(kind, up);
        }
        metrics::gauge!("consumer_connected", "kind" => kind).set(if up { 1.0 } else { 0.0 });
    }

    /// Each kind with whether its consumer is connected.
    pub fn snapshot(&self) -> BTreeMap<&'static str, bool> {
        self.0
            .lock()
            .map(|states| states.clone())
            .unwrap_or_default()
    }
}

/// The stop signal in the form apalis's `run_until` takes.
pub(crate) async fn cancelled(shutdown: CancellationToken) -> std::io::Result<()> {
    shutdown.cancelled().await;
    Ok(())
}

/// apalis-amqp 1.0 reports the backend ready once its queue is declared but before its
/// consumer exists, and its first poll for a job then panics; its acknowledger is also a clone
/// taken when the worker starts, which must already hold the channel. So the backend is driven
/// through declaring the queue and starting the consumer before the worker takes it.
async fn start_consuming<J: RunJob>(
    backend: &mut AmqpBackend<J>,
    name: &str,
) -> Result<(), apalis_amqp::Error> {
    let context = WorkerContext::new(name);
    // Init -> queue declared -> consumer started -> ready.
    for _ in 0..3 {
        poll_fn(|cx| Backend::poll_ready(backend, cx, &context)).await?;
    }
    Ok(())
}

async fn execute<J: RunJob>(
    job: J,
    ctx: Data<JobContext>,
    attempt: Attempt,
    worker: WorkerContext,
) -> Result<(), BoxDynError> {
    let key = job.idempotency_key();
    let started = std::time::Instant::now();
    let outcome = run_guarded(job, &ctx, &key, &attempt, &worker).await;
    metrics::histogram!("job_duration_seconds", "kind" => J::NAME)
        .record(started.elapsed().as_secs_f64());
    let label = match &outcome {
        Ok(()) => "processed",
        Err(error) if error.downcast_ref::<AbortError>().is_some() => "dead_lettered",
        Err(_) => "retried",
    };
    metrics::counter!("jobs_total", "kind" => J::NAME, "outcome" => label).increment(1);
    outcome
}

/// One run of the handler, on a task of its own, so that losing the broker connection (which
/// drops the worker's futures) cannot cut it off between two of its writes. A panicking
/// handler is a bug that a retry will not fix: the job is dead-lettered, the worker runs on.
async fn run_once<J: RunJob>(
    job: J,
    ctx: &JobContext,
    key: &str,
) -> Result<Result<(), JobError>, BoxDynError> {
    let ctx = ctx.clone();
    match tokio::spawn(async move { job.run(&ctx).await }).await {
        Ok(outcome) => Ok(outcome),
        Err(_) => {
            tracing::error!(job = J::NAME, %key, "job panicked, dead-lettered");
            Err(Box::new(AbortError::new(format!(
                "{} job panicked",
                J::NAME
            ))))
        }
    }
}

/// Longest pause between two tries of a job whose database or Redis is away.
const OUTAGE_PAUSE_MAX: Duration = Duration::from_secs(5);

async fn run_guarded<J: RunJob>(
    job: J,
    ctx: &JobContext,
    key: &str,
    attempt: &Attempt,
    worker: &WorkerContext,
) -> Result<(), BoxDynError> {
    // A dependency that is away (Postgres restarting, Redis down) is waited out here, with
    // back-off, without spending the job's attempts: otherwise an outage longer than the retry
    // schedule would dead-letter every job in flight. The message stays unacknowledged
    // meanwhile, and goes back to the queue if the process stops.
    let mut pause = Duration::from_millis(250);
    let outcome = loop {
        let outcome = run_once(job.clone(), ctx, key).await?;
        match outcome {
            Err(error) if error.is_outage() && !worker.is_shutting_down() => {
                tracing::warn!(job = J::NAME, %key, error = %error, "a dependency is away; the job waits for it");
                metrics::counter!("jobs_waiting_on_outage_total", "kind" => J::NAME).increment(1);
                tokio::time::sleep(pause.mul_f64(rand::random_range(0.5..=1.0))).await;
                pause = (pause * 2).min(OUTAGE_PAUSE_MAX);
            }
            outcome => break outcome,
        }
    };
    let error = match outcome {
        Ok(()) => {
            tracing::info!(job = J::NAME, %key, attempt = attempt.current(), "job done");
            return Ok(());
        }
        Err(error) => error,
    };
    let last_attempt = attempt.current()
        >= usize::try_from(ctx.core.settings.jobs.max_attempts).unwrap_or(usize::MAX);
    if error.is_retryable() && !last_attempt {
        tracing::warn!(job = J::NAME, %key, attempt = attempt.current(), error = %error, "job failed, will retry");
        return Err(Box::new(error));
    }
    tracing::error!(job = J::NAME, %key, attempt = attempt.current(), error = %error, "job dead-lettered");
    Err(Box::new(AbortError::new(error)))
}
