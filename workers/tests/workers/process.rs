//! The worker process as an operator runs it: signals and settings.

use std::process::Command;

use test_support::{TestEnv, eventually};

use crate::helpers::{Harness, Probe};

/// SIGTERM goes to this test's own process, where the application is listening for it exactly
/// as the `workers` binary does. (nextest runs each test in a process of its own; under
/// `cargo test` no other test listens for the signal.)
#[tokio::test]
async fn sigterm_lets_the_job_in_flight_finish_and_acknowledges_it() {
    let harness = Harness::new().await;
    let app = harness.probe_workers("worker_a", 4).await;
    let running = tokio::spawn(app.run_until_stopped(shared::shutdown::signal()));
    let job = Probe {
        work_ms: 1_500,
        ..Probe::succeeding()
    };
    harness.publisher.publish(&job).await.unwrap();
    eventually!(
        "the job starts",
        harness
            .count("SELECT count(*) FROM probe_started WHERE id = $1", job.id)
            .await
            == 1
    );

    let status = Command::new("kill")
        .args(["-TERM", &std::process::id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());

    running
        .await
        .expect("the worker task")
        .expect("the workers stop cleanly");
    assert_eq!(
        harness.completions(job.id).await,
        1,
        "the job in flight finished"
    );
    assert_eq!(
        harness.probe_queues().await,
        (0, 0),
        "nothing left queued or dead-lettered"
    );
}

fn run_workers_binary(env: &TestEnv, without: &str, overrides: &[(&str, &str)]) -> (bool, String) {
    let directory = std::env::temp_dir().join(format!("bms-settings-{}", env.id));
    std::fs::create_dir_all(&directory).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_workers"));
    command.current_dir(&directory).env_clear();
    for (name, value) in env.values() {
        if name != without {
            command.env(name, value);
        }
    }
    for (name, value) in overrides {
        command.env(name, value);
    }
    let output = command.output().expect("the workers binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_missing_setting_stops_the_process_with_one_line_naming_it() {
    let env = TestEnv::without_database();
    let (success, stderr) = run_workers_binary(&env, "RABBITMQ_URL", &[]);
    assert!(!success);
    assert_eq!(
        stderr,
        "workers: missing required setting RABBITMQ_URL (see .env.example)\n"
    );
}

#[test]
fn a_malformed_setting_stops_the_process_with_one_line_naming_it() {
    let env = TestEnv::without_database();
    let (success, stderr) =
        run_workers_binary(&env, "", &[("WORKER_CONCURRENCY_RESERVE_SEATS", "lots")]);
    assert!(!success);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.starts_with("workers: setting WORKER_CONCURRENCY_RESERVE_SEATS is malformed:"),
        "{stderr}"
    );
}
