//! Assembling a worker process: one queue worker per job kind and the cron sweeps, stopped
//! together.

use std::future::Future;

use futures::future::{self, FutureExt};
use shared::{
    config::Settings,
    jobs::{Refund, ReserveSeats, SendEmailVerification, SendOtp, VerifyPayment},
};
use tokio_util::sync::CancellationToken;

use crate::{
    context::{JobContext, RunJob},
    partitions::partition_consumers,
    runtime::{ConsumerStates, WorkerFuture, amqp_pool, queue_worker},
    sweeps,
};

pub struct Application {
    ctx: JobContext,
    http: tokio::net::TcpListener,
    pool: deadpool_lapin::Pool,
    shutdown: CancellationToken,
    workers: Vec<WorkerFuture>,
    consumers: ConsumerStates,
}

impl Application {
    /// A worker process with every job kind and sweep of the system.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let concurrency = settings.jobs.concurrency;
        let ctx = JobContext::new(settings)?;
        ctx.core
            .jobs
            .check_partitioning::<ReserveSeats>()
            .await
            .map_err(anyhow::Error::msg)?;
        let mut app = Self::empty(ctx).await?;
        app.consume::<ReserveSeats>(concurrency.reserve_seats);
        // The process works on `reserve_seats` reservations at once across its partitions;
        // each partition takes twice its even share of them from the broker. Not more: a
        // partition let go to another process first finishes what it took, so a deep prefetch
        // would keep the newcomer idle while this process works through it.
        let partitions = u32::from(app.ctx.core.settings.rabbitmq.partitions);
        let per_partition = (u32::from(concurrency.reserve_seats) * 2).div_ceil(partitions);
        app.consume_partitions::<ReserveSeats>(u16::try_from(per_partition).unwrap_or(u16::MAX));
        app.consume::<VerifyPayment>(concurrency.verify_payment);
        app.consume::<Refund>(concurrency.refund);
        app.consume::<SendOtp>(concurrency.send_otp);
        app.consume::<SendEmailVerification>(concurrency.send_email_verification);
        app.sweep_expired_holds()?;
        Ok(app)
    }

    /// A process with no workers yet; add them with [`Self::consume`] and the sweep methods.
    /// Binds the operations port (`/metrics`, `/health`) at once.
    pub async fn empty(ctx: JobContext) -> anyhow::Result<Self> {
        shared::metrics::recorder();
        let pool = amqp_pool(ctx.core.settings.rabbitmq.url.expose())?;
        let address = std::net::SocketAddr::new(
            ctx.core.settings.http.host,
            ctx.core.settings.jobs.http_port,
        );
        let http = tokio::net::TcpListener::bind(address).await?;
        Ok(Self {
            ctx,
            http,
            pool,
            shutdown: CancellationToken::new(),
            workers: Vec::new(),
            consumers: ConsumerStates::default(),
        })
    }

    /// The port `/metrics` and `/health` are served on.
    pub fn http_port(&self) -> u16 {
        self.http.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    /// Consumes the queue of `J`, running up to `concurrency` jobs at once, from the moment
    /// the process runs; while the broker is away the consumer keeps reconnecting.
    pub fn consume<J: RunJob>(&mut self, concurrency: u16) {
        let worker = queue_worker::<J>(
            self.ctx.clone(),
            self.pool.clone(),
            concurrency,
            self.shutdown.clone(),
            self.consumers.clone(),
        );
        self.workers.push(worker);
    }

    /// Consumes this process's share of the partitions of `J` (see `partitions`), `concurrency`
    /// jobs at once on each. Add it beside [`Self::consume`], whose consumer counts the process.
    pub fn consume_partitions<J: RunJob>(&mut self, concurrency: u16) {
        let worker = partition_consumers::<J>(
            self.ctx.clone(),
            self.pool.clone(),
            concurrency,
            self.shutdown.clone(),
        );
        self.workers.push(worker);
    }

    pub fn sweep_expired_holds(&mut self) -> anyhow::Result<()> {
        let worker = sweeps::hold_expiry(self.ctx.clone(), self.shutdown.clone())?;
        self.workers.push(worker);
        Ok(())
    }

    /// Runs until `shutdown` resolves, then lets jobs in flight finish. Losing a dependency
    /// does not end it: consumers reconnect by themselves and sweeps keep their schedule.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let token = self.shutdown.clone();
        let stopper = tokio::spawn({
            let token = token.clone();
            async move {
                shutdown.await;
                token.cancel();
            }
        });
        let operations = axum::serve(
            self.http,
            crate::http::router(self.ctx.clone(), self.consumers.clone()),
        )
        .with_graceful_shutdown(token.clone().cancelled_owned());
        let operations = tokio::spawn(async move {
            if let Err(error) = operations.await {
                tracing::warn!(%error, "the operations port stopped");
            }
        });
        tracing::info!(workers = self.workers.len(), "workers running");
        // A worker that ends with an error (a sweep whose schedule broke) stops the others,
        // so the process exits rather than run half of itself.
        let stop_all_on_error = self.workers.into_iter().map(|worker| {
            let token = token.clone();
            worker.inspect(move |outcome| {
                if outcome.is_err() {
                    token.cancel();
                }
            })
        });
        let outcomes = future::join_all(stop_all_on_error).await;
        stopper.abort();
        operations.abort();
        tracing::info!("workers stopped");
        outcomes.into_iter().collect()
    }
}
