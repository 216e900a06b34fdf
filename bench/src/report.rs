//! The report printed at the end of a run.

use std::{collections::BTreeMap, fmt};

use serde::Serialize;
use test_support::invariants::SaleInvariants;

use crate::{
    Config, load::LoadResult, processes::PeakMemory, raw::RawLimit, reads::Reads, stages::Stages,
};

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Seats of all the showtimes together.
    pub seats: u32,
    pub showtimes: u32,
    pub buyers: u32,
    pub concurrency: usize,
    pub workers: u32,
    pub submitted: u64,
    pub finished: u64,
    pub seconds: f64,
    pub bookings_per_second: f64,
    pub seats_reserved: u64,
    /// Seats reserved per second, until the last seat was taken.
    pub seats_reserved_per_second: f64,
    pub sellout_seconds: f64,
    pub latency: Latency,
    pub by_status: BTreeMap<String, u64>,
    pub by_reason: BTreeMap<String, u64>,
    pub http_errors: BTreeMap<String, u64>,
    pub raw: RawLimit,
    pub pipeline_to_raw: f64,
    pub reads: Reads,
    pub status_to_bare: f64,
    pub availability_to_bare: f64,
    pub memory: PeakMemory,
    pub invariants: SaleInvariants,
    pub stages: Stages,
}

impl Report {
    pub fn new(
        config: &Config,
        raw: RawLimit,
        load: LoadResult,
        reads: Reads,
        memory: PeakMemory,
        invariants: SaleInvariants,
        stages: Stages,
    ) -> Self {
        let ms = |quantile: f64| load.latency.value_at_quantile(quantile) as f64 / 1000.0;
        let seats_reserved_per_second =
            load.seats_reserved as f64 / load.sellout_seconds.max(f64::EPSILON);
        Self {
            seats: u32::try_from(invariants.seats).unwrap_or(config.seats),
            showtimes: config.showtimes,
            buyers: config.buyers,
            concurrency: config.concurrency,
            workers: config.workers,
            submitted: load.submitted,
            finished: load.finished,
            seconds: load.seconds,
            bookings_per_second: load.finished as f64 / load.seconds,
            seats_reserved: load.seats_reserved,
            seats_reserved_per_second,
            sellout_seconds: load.sellout_seconds,
            latency: Latency {
                p50_ms: ms(0.50),
                p95_ms: ms(0.95),
                p99_ms: ms(0.99),
                max_ms: load.latency.max() as f64 / 1000.0,
            },
            by_status: load.by_status,
            by_reason: load.by_reason,
            http_errors: load.http_errors,
            pipeline_to_raw: seats_reserved_per_second / raw.per_second,
            status_to_bare: reads.status.per_second / reads.bare.per_second,
            availability_to_bare: reads.availability.per_second / reads.bare.per_second,
            raw,
            reads,
            memory,
            invariants,
            stages,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "flash sale: S={} seats in {} showtime(s), B={} buyers, C={} in flight, {} worker process(es)",
            self.seats, self.showtimes, self.buyers, self.concurrency, self.workers
        )?;
        writeln!(
            f,
            "  bookings      {} finished of {} submitted in {:.1} s: {:.0} bookings/s",
            self.finished, self.submitted, self.seconds, self.bookings_per_second
        )?;
        writeln!(
            f,
            "  seats         {} reserved in {:.1} s (to the last seat held): {:.0} seats/s",
            self.seats_reserved, self.sellout_seconds, self.seats_reserved_per_second
        )?;
        writeln!(
            f,
            "  latency       submit to final: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.latency.p50_ms, self.latency.p95_ms, self.latency.p99_ms, self.latency.max_ms
        )?;
        writeln!(
            f,
            "  stages        p50/p99: HTTP accept {:.1}/{:.1} ms, queue+reservation {:.1}/{:.1} ms, answer delivery {:.1}/{:.1} ms",
            self.stages.http_accept.p50_ms,
            self.stages.http_accept.p99_ms,
            self.stages.queue_and_reservation.p50_ms,
            self.stages.queue_and_reservation.p99_ms,
            self.stages.answer_delivery.p50_ms,
            self.stages.answer_delivery.p99_ms
        )?;
        let [accept, decide, deliver] = self.stages.slow_by_stage;
        writeln!(
            f,
            "  slow answers  {} over {} s, by their longest stage: accept {accept}, queue+reservation {decide}, delivery {deliver}",
            accept + decide + deliver,
            crate::stages::SLOW.as_secs()
        )?;
        writeln!(
            f,
            "  outcomes      {:?}; reasons {:?}",
            self.by_status, self.by_reason
        )?;
        writeln!(f, "  http errors   {:?}", self.http_errors)?;
        writeln!(
            f,
            "  raw limit     {:.0} single-seat UPDATEs/s ({} over {} connections); pipeline/raw = {:.2}",
            self.raw.per_second, self.raw.updates, self.raw.connections, self.pipeline_to_raw
        )?;
        writeln!(
            f,
            "  reads         status {:.0}/s, availability (compact) {:.0}/s, bare {:.0}/s; status/bare = {:.2}, availability/bare = {:.2}; full availability {:.0}/s",
            self.reads.status.per_second,
            self.reads.availability.per_second,
            self.reads.bare.per_second,
            self.status_to_bare,
            self.availability_to_bare,
            self.reads.availability_full.per_second
        )?;
        writeln!(
            f,
            "  peak memory   api {:.1} MiB, workers {:?} MiB, bare {:.1} MiB",
            self.memory.api_mib,
            self.memory
                .workers_mib
                .iter()
                .map(|m| (m * 10.0).round() / 10.0)
                .collect::<Vec<_>>(),
            self.memory.bare_mib
        )?;
        write!(
            f,
            "  invariants    held {} + free {} = {} seats; 0 oversold; 0 pending",
            self.invariants.held, self.invariants.free, self.invariants.seats
        )
    }
}
