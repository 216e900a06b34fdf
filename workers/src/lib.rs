//! BMS background workers: one apalis worker per job kind consuming its RabbitMQ queue, plus
//! the cron sweeps. Several processes share the queues as competing consumers, so operators
//! scale a busy kind by starting more processes; reservations are also split into partitions
//! by lock scope, which the processes share out among themselves (`partitions`).

pub mod context;
pub mod handlers;
pub mod http;
pub mod partitions;
pub mod reservations;
pub mod runtime;
pub mod startup;
pub mod sweeps;
