//! Prometheus metrics. One recorder per process, installed when the process builds its
//! application; the API and the workers render it at `/metrics`. Durations are in seconds
//! (`*_seconds` histograms), counts are `*_total` counters.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process's recorder, installed on first call.
pub fn recorder() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder was installed first; /metrics stays empty");
        }
        // Histograms keep raw samples until upkeep folds them into their buckets: without it
        // they grow for as long as the process runs. A thread of its own, so it outlives any
        // one async runtime.
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(UPKEEP_EVERY);
                    upkeep.run_upkeep();
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "metrics upkeep not started; histograms fold at each scrape only");
        }
        handle
    })
}

/// Everything recorded so far, in Prometheus's text format.
pub fn render() -> String {
    recorder().render()
}
