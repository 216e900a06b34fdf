//! A small flash sale through the benchmark tool itself, run with the test suite: the tool's
//! invariant checks and counts on a few hundred bookings against the real services.

use std::{path::PathBuf, time::Duration};

use test_support::TestEnv;

#[tokio::test]
async fn a_small_flash_sale_keeps_every_invariant() {
    let bin_dir = PathBuf::from(env!("CARGO_BIN_EXE_flash-sale"))
        .parent()
        .expect("the target directory")
        .to_path_buf();
    for binary in ["api", "workers"] {
        assert!(
            bin_dir.join(binary).exists(),
            "{binary} is not built in {}: run the suite with --workspace",
            bin_dir.display()
        );
    }
    let env = TestEnv::without_database();
    let config = bench::Config {
        seats: 60,
        sections: 2,
        showtimes: 2,
        buyers: 300,
        concurrency: 32,
        workers: 2,
        named_share: 0.3,
        hot_seats: 10,
        max_duration: Duration::from_secs(300),
        read_duration: Duration::from_millis(500),
        bin_dir,
        settings: env.values().clone(),
        logs: None,
    };

    let report = bench::run(config).await.expect("every invariant holds");

    assert_eq!(report.submitted, 300);
    assert_eq!(report.finished, 300, "every booking got a final answer");
    assert!(report.http_errors.is_empty(), "{:?}", report.http_errors);
    assert_eq!(report.seats, 120, "two showtimes of 60 seats");
    assert_eq!(report.seats_reserved as i64, report.invariants.held);
    assert!(report.seats_reserved <= 120);
    assert_eq!(
        report.by_status.values().sum::<u64>(),
        300,
        "{:?}",
        report.by_status
    );
    assert!(
        report.raw.updates == 60,
        "the raw limit updated every seat once"
    );
    assert!(report.reads.bare.requests > 0 && report.reads.status.requests > 0);
    assert!(report.memory.api_mib > 0.0);
    assert!(report.stages.queue_and_reservation.p50_ms > 0.0);
}
