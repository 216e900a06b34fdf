//! Who consumes which partition of a partitioned job kind (reservations).
//!
//! Reservation jobs are hashed by lock scope onto `RABBITMQ_PARTITIONS` queues
//! (`shared::jobs::QueueTopology`), so that one process batches every job of a scope and takes
//! the scope's lock once per batch. Two processes that each took jobs of every scope would take
//! turns at each lock, with half the batch each time.
//!
//! A partition has at most one consumer: it is consumed exclusively, and the broker refuses a
//! second. Every few seconds each process counts the worker processes (the consumers of the
//! kind's plain queue, one per process) and keeps its share, `ceil(partitions / processes)`:
//! it takes free partitions while it holds fewer, and lets the extra ones go when processes
//! have joined (its jobs in flight finish first; its unstarted deliveries go back to the
//! queue). A process that dies loses its consumers with its connection, and the others take
//! its partitions at their next look. Correctness never rests on this: the scope's lock and
//! the database decide every seat whoever consumes.

use std::{collections::BTreeMap, time::Duration};

use futures::FutureExt;
use shared::jobs::QueueTopology;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    context::{JobContext, RunJob},
    runtime::{WorkerFuture, consumer_count, declare, run_consumer, start},
};

/// How often a process looks at its share. A partition left by a dead process waits about
/// this long for another to take it.
const REBALANCE_EVERY: Duration = Duration::from_secs(2);

struct Held {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Keeps this process consuming its share of `J`'s partitions, `concurrency` jobs at once on
/// each, until `shutdown`; then waits for their jobs in flight.
pub fn partition_consumers<J: RunJob>(
    ctx: JobContext,
    pool: deadpool_lapin::Pool,
    concurrency: u16,
    shutdown: CancellationToken,
) -> WorkerFuture {
    async move {
        let topology = QueueTopology::new(&ctx.core.settings.rabbitmq);
        let count = topology.partitions();
        // Processes start their search at different partitions, so they seldom race for one.
        let first = rand::random_range(0..count);
        let mut held: BTreeMap<u16, Held> = BTreeMap::new();
        let mut released: Vec<JoinHandle<()>> = Vec::new();
        let mut declared = false;
        while !shutdown.is_cancelled() {
            // A consumer that lost its connection or was cancelled is no longer held.
            let before = held.len();
            held.retain(|_, partition| !partition.task.is_finished());
            released.retain(|task| !task.is_finished());
            // Declared before anything is asked of the queues, and again once a consumer was
            // lost (a restarted broker may have lost them too).
            if !declared || held.len() < before {
                declared = declare::<J>(&topology, &pool).await.is_ok();
            }
            let processes = match declared {
                true => consumer_count(&pool, &topology.queue::<J>()).await,
                false => None,
            };
            if let Some(processes) = processes {
                let processes = u16::try_from(processes.max(1)).unwrap_or(u16::MAX);
                let share = usize::from(count.div_ceil(processes));
                while held.len() > share {
                    let Some((index, partition)) = held.pop_last() else {
                        break;
                    };
                    tracing::info!(job = J::NAME, partition = index, "letting a partition go");
                    partition.stop.cancel();
                    released.push(partition.task);
                }
                if held.len() < share {
                    for index in (0..count).map(|offset| (first + offset) % count) {
                        if held.len() >= share || shutdown.is_cancelled() {
                            break;
                        }
                        // A partition another process consumes is not asked for: the broker
                        // would refuse it, closing a channel with an error in the logs.
                        if held.contains_key(&index)
                            || consumer_count(&pool, &topology.partition_queue::<J>(index)).await
                                != Some(0)
                        {
                            continue;
                        }
                        let taken =
                            take::<J>(&ctx, &pool, &topology, index, concurrency, &shutdown);
                        if let Some(partition) = taken.await {
                            held.insert(index, partition);
                        }
                    }
                }
            }
            metrics::gauge!("partitions_held", "kind" => J::NAME).set(held.len() as f64);
            let pause = REBALANCE_EVERY.mul_f64(rand::random_range(0.75..=1.25));
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => {}
            }
        }
        // Every consumer's token is a child of `shutdown`: they are all stopping.
        for task in held
            .into_values()
            .map(|partition| partition.task)
            .chain(released)
        {
            let _ = task.await;
        }
        tracing::info!(job = J::NAME, "partition consumers stopped");
        Ok(())
    }
    .boxed()
}

/// Starts consuming partition `index`, or `None` if another process consumes it (the broker
/// refuses an exclusive consumer on a queue in use) or the broker is away.
async fn take<J: RunJob>(
    ctx: &JobContext,
    pool: &deadpool_lapin::Pool,
    topology: &QueueTopology,
    index: u16,
    concurrency: u16,
    shutdown: &CancellationToken,
) -> Option<Held> {
    let stop = shutdown.child_token();
    let name = format!("{}-part-{index}-{}", J::NAME, Uuid::new_v4().simple());
    let config = topology.partition_consumer_config::<J>(index, concurrency);
    let backend = match start::<J>(pool, config, &name, &stop).await {
        Ok(Some(backend)) => backend,
        Ok(None) => return None,
        Err(error) => {
            tracing::debug!(job = J::NAME, partition = index, error = %format!("{error:#}"), "partition not taken");
            return None;
        }
    };
    tracing::info!(job = J::NAME, partition = index, "consuming a partition");
    let queue = topology.partition_queue::<J>(index);
    let task = tokio::spawn({
        let (ctx, pool, stop) = (ctx.clone(), pool.clone(), stop.clone());
        async move {
            let consumed =
                run_consumer(&ctx, &pool, backend, &name, queue, concurrency, &stop).await;
            if let Err(error) = consumed {
                tracing::warn!(job = J::NAME, partition = index, error = %format!("{error:#}"), "partition consumer lost; it will be taken again");
            }
        }
    });
    Some(Held { stop, task })
}
