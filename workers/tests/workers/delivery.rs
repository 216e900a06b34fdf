//! Job delivery: done once, retried, dead-lettered, shared by two consumers, and unsupported
//! kinds kept rather than dropped.

use std::collections::HashMap;

use shared::jobs::{PaymentSignal, VerifyPayment};
use uuid::Uuid;
use workers::startup::Application;

use test_support::eventually;

use crate::helpers::{Harness, Probe, Running};

#[tokio::test]
async fn a_published_job_is_processed_once_and_acknowledged() {
    let harness = Harness::new().await;
    let workers = Running::start(harness.probe_workers("worker_a", 4).await);
    let job = Probe::succeeding();

    harness
        .publisher
        .publish(&job)
        .await
        .expect("the broker confirms");

    eventually!("the job completes", harness.completions(job.id).await == 1);
    workers.stop().await;
    assert_eq!(harness.attempts(job.id).await, 1);
    assert_eq!(
        harness.probe_queues().await,
        (0, 0),
        "nothing left queued or dead-lettered"
    );
}

#[tokio::test]
async fn a_failing_job_is_retried_until_it_succeeds() {
    let harness = Harness::new().await;
    let workers = Running::start(harness.probe_workers("worker_a", 4).await);
    let job = Probe {
        failures: 2,
        ..Probe::succeeding()
    };

    harness.publisher.publish(&job).await.unwrap();

    eventually!("the job completes", harness.completions(job.id).await == 1);
    workers.stop().await;
    assert_eq!(harness.attempts(job.id).await, 3);
    assert_eq!(
        harness
            .ready_messages(&harness.topology.dead_letter_queue::<Probe>())
            .await,
        0
    );
}

#[tokio::test]
async fn a_job_failing_every_attempt_is_dead_lettered_after_the_last() {
    let harness = Harness::new().await;
    let max_attempts: i64 = harness.env.get("JOB_MAX_ATTEMPTS").parse().unwrap();
    let workers = Running::start(harness.probe_workers("worker_a", 4).await);
    let job = Probe {
        failures: 1_000,
        ..Probe::succeeding()
    };

    harness.publisher.publish(&job).await.unwrap();

    let dead_letters = harness.topology.dead_letter_queue::<Probe>();
    eventually!(
        "the job is dead-lettered",
        harness.ready_messages(&dead_letters).await == 1
    );
    workers.stop().await;
    assert_eq!(harness.attempts(job.id).await, max_attempts);
    assert_eq!(harness.completions(job.id).await, 0);
    let body = harness
        .take_message(&dead_letters)
        .await
        .expect("the dead letter");
    let dead: Probe = serde_json::from_slice(&body).expect("the job as published");
    assert_eq!(dead.id, job.id);
    assert_eq!(
        harness
            .ready_messages(&harness.topology.queue::<Probe>())
            .await,
        0
    );
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_without_retries() {
    let harness = Harness::new().await;
    let workers = Running::start(harness.probe_workers("worker_a", 4).await);
    let job = Probe {
        permanent_failure: true,
        ..Probe::succeeding()
    };

    harness.publisher.publish(&job).await.unwrap();

    let dead_letters = harness.topology.dead_letter_queue::<Probe>();
    eventually!(
        "the job is dead-lettered",
        harness.ready_messages(&dead_letters).await == 1
    );
    workers.stop().await;
    assert_eq!(harness.attempts(job.id).await, 1);
}

#[tokio::test]
async fn two_worker_processes_share_a_queue_and_run_each_job_exactly_once() {
    let harness = Harness::new().await;
    let first = Running::start(harness.probe_workers("worker_a", 4).await);
    let second = Running::start(harness.probe_workers("worker_b", 4).await);
    let jobs: Vec<Probe> = (0..200).map(|_| Probe::succeeding()).collect();

    let publishes = jobs.iter().map(|job| harness.publisher.publish(job));
    for outcome in futures::future::join_all(publishes).await {
        outcome.expect("the broker confirms");
    }

    eventually!("every job completes", {
        let done: i64 = sqlx::query_scalar("SELECT count(*) FROM probe_done")
            .fetch_one(&harness.db)
            .await
            .unwrap();
        done >= 200
    });
    first.stop().await;
    second.stop().await;
    let runs: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, worker FROM probe_done")
        .fetch_all(&harness.db)
        .await
        .unwrap();
    let mut per_job: HashMap<Uuid, usize> = HashMap::new();
    for (id, _) in &runs {
        *per_job.entry(*id).or_default() += 1;
    }
    assert_eq!(runs.len(), 200, "no job ran twice");
    assert!(jobs.iter().all(|job| per_job.get(&job.id) == Some(&1)));
    for worker in ["worker_a", "worker_b"] {
        assert!(
            runs.iter().any(|(_, ran_on)| ran_on == worker),
            "{worker} took part"
        );
    }
}

#[tokio::test]
async fn a_job_that_can_never_succeed_is_dead_lettered_not_dropped() {
    let harness = Harness::new().await;
    let app = Application::build(harness.env.settings())
        .await
        .expect("the worker process");
    let workers = Running::start(app);
    // No payment has this order: a permanent failure.
    let job = VerifyPayment {
        provider_order_id: "order_test".into(),
        provider_payment_id: format!("pay_{}", Uuid::new_v4().simple()),
        signal: PaymentSignal::Checkout {
            signature: "0".repeat(64),
        },
    };

    harness.publisher.publish(&job).await.unwrap();

    let dead_letters = harness.topology.dead_letter_queue::<VerifyPayment>();
    eventually!(
        "the job is dead-lettered",
        harness.ready_messages(&dead_letters).await == 1
    );
    workers.stop().await;
    let body = harness
        .take_message(&dead_letters)
        .await
        .expect("the dead letter");
    assert_eq!(serde_json::from_slice::<VerifyPayment>(&body).unwrap(), job);
}
