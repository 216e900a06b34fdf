//! Turning a [`RunJob`] kind into a running apalis worker on its RabbitMQ queue.
//!
//! Delivery contract:
//! - the message is acknowledged only after the handler returned `Ok`, i.e. after its commit;
//! - a transient failure is retried in this process with exponential backoff and jitter, up to
//!   `JOB_MAX_ATTEMPTS` attempts; then, or at once for a permanent failure, the job is killed
//!   and its message rejected into the kind's dead-letter queue;
//! - on shutdown no new job starts, jobs in flight finish, and a job whose retries were cut
//!   short is requeued for another worker; unacknowledged messages of a process that dies are
//!   redelivered by the broker.

use std::{future::poll_fn, panic::AssertUnwindSafe};

use apalis::{
    layers::{
        WorkerBuilderExt,
        retry::{HasherRng, RetryPolicy, backoff::ExponentialBackoffMaker, backoff::MakeBackoff},
    },
    prelude::{AbortError, Attempt, Backend, BoxDynError, Data, WorkerBuilder, WorkerContext},
};
use apalis_amqp::AmqpBackend;
use futures::{FutureExt, future::BoxFuture};
use shared::jobs::QueueTopology;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::context::{JobContext, RunJob};

pub type WorkerFuture = BoxFuture<'static, anyhow::Result<()>>;

/// Connections to RabbitMQ shared by the consumers of one process (one channel each).
pub fn amqp_pool(url: &str) -> anyhow::Result<deadpool_lapin::Pool> {
    let config = deadpool_lapin::Config {
        url: Some(url.to_owned()),
        pool: None,
    };
    Ok(config.create_pool(Default::default, deadpool_lapin::Runtime::Tokio1)?)
}

/// Declares the queues of `J` and starts consuming them; the returned future runs the worker
/// until `shutdown` is cancelled and its jobs in flight are done.
pub async fn queue_worker<J: RunJob>(
    ctx: JobContext,
    pool: deadpool_lapin::Pool,
    concurrency: u16,
    shutdown: CancellationToken,
) -> anyhow::Result<WorkerFuture> {
    let topology = QueueTopology::new(&ctx.settings.rabbitmq);
    {
        let connection = pool.get().await?;
        let channel = connection.create_channel().await?;
        topology.declare::<J>(&channel).await?;
        channel.close(200, "declared".into()).await?;
    }
    let name = format!("{}-{}", J::NAME, Uuid::new_v4().simple());
    let mut backend: AmqpBackend<J> =
        AmqpBackend::new(pool).with_config(topology.consumer_config::<J>(concurrency));
    start_consuming(&mut backend, &name).await?;

    let jobs = &ctx.settings.jobs;
    let backoff = ExponentialBackoffMaker::new(
        jobs.backoff_min,
        jobs.backoff_max,
        0.5,
        HasherRng::default(),
    )?
    .make_backoff();
    // The handler turns the last failed attempt into a kill, so the policy may allow them all.
    let retries = usize::try_from(jobs.max_attempts).unwrap_or(usize::MAX);
    let worker = WorkerBuilder::new(name.as_str())
        .backend(backend)
        .data(ctx)
        .concurrency(usize::from(concurrency))
        .retry(RetryPolicy::retries(retries).with_backoff(backoff))
        .build(execute::<J>);
    Ok(async move {
        worker
            .run_until(cancelled(shutdown))
            .await
            .map_err(|error| anyhow::anyhow!("worker {name} stopped: {error}"))
    }
    .boxed())
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
) -> Result<(), BoxDynError> {
    let key = job.idempotency_key();
    let started = std::time::Instant::now();
    let outcome = run_guarded(job, &ctx, &key, &attempt).await;
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

async fn run_guarded<J: RunJob>(
    job: J,
    ctx: &JobContext,
    key: &str,
    attempt: &Attempt,
) -> Result<(), BoxDynError> {
    // A panicking handler is a bug that a retry will not fix: dead-letter the job, keep the
    // worker running.
    let outcome = AssertUnwindSafe(job.run(ctx)).catch_unwind().await;
    let Ok(outcome) = outcome else {
        tracing::error!(job = J::NAME, %key, "job panicked, dead-lettered");
        return Err(Box::new(AbortError::new(format!(
            "{} job panicked",
            J::NAME
        ))));
    };
    let error = match outcome {
        Ok(()) => {
            tracing::info!(job = J::NAME, %key, attempt = attempt.current(), "job done");
            return Ok(());
        }
        Err(error) => error,
    };
    let last_attempt =
        attempt.current() >= usize::try_from(ctx.settings.jobs.max_attempts).unwrap_or(usize::MAX);
    if error.is_retryable() && !last_attempt {
        tracing::warn!(job = J::NAME, %key, attempt = attempt.current(), error = %error, "job failed, will retry");
        return Err(Box::new(error));
    }
    tracing::error!(job = J::NAME, %key, attempt = attempt.current(), error = %error, "job dead-lettered");
    Err(Box::new(AbortError::new(error)))
}
