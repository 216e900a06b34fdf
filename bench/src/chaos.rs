//! The chaos run: a flash sale against release `api` and `workers` processes while the
//! machine's own services fail under it, one after another, the way they do on the night:
//!
//! 1. a worker process is killed with SIGKILL and a new one started;
//! 2. RabbitMQ is restarted (`rabbitmqctl shutdown`, then `rabbitmq-server -detached`);
//! 3. Redis is restarted (`redis-cli shutdown nosave`, then `redis-server`);
//! 4. PostgreSQL is restarted (`pg_ctlcluster ... restart`).
//!
//! Buyers behave as apps do: a refused or failed request is sent again, with the same
//! Idempotency-Key, after a pause. Each fault waits until bookings are being decided again
//! after the one before. Then the run checks, and prints, and fails if any check fails:
//! - the sale's invariants (no seat in two live bookings, counts add up);
//! - every booking decided within 60 s of the last fault, and none left PENDING;
//! - no API or worker process exited unless the run killed it;
//! - no answer was a 500 (an outage is a 503);
//! - the worker processes' broker reconnects, and the time from each fault to the first
//!   booking decided after it.
//!
//! It restarts this machine's shared services, so it belongs on a machine of one's own, never
//! in CI. Loopback only; every wait is bounded.

use std::{
    collections::BTreeMap,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use serde_json::Value;
use shared::config::Settings;
use test_support::fixtures::{self, Buyer, ShowtimeFixture};
use uuid::Uuid;

use crate::{Config, processes::Stack};

/// Every booking must be decided this soon after the last fault.
const DECIDED_WITHIN: Duration = Duration::from_secs(60);
/// Longest wait for bookings to be decided again after a fault before the next one.
const RECOVERY_BOUND: Duration = Duration::from_secs(120);
/// Decisions the sale must make after a fault before the next fault.
const PROGRESS_BETWEEN_FAULTS: u64 = 300;

#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    pub name: &'static str,
    pub at: DateTime<Utc>,
    /// When the service was back (the restart command returned).
    pub back_at: DateTime<Utc>,
    /// Seconds from the fault to the first booking decided after the service was back.
    pub first_decision_after_s: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub seats: i64,
    pub buyers: u32,
    pub bookings: i64,
    pub faults: Vec<Fault>,
    pub by_status: BTreeMap<String, i64>,
    pub left_pending: i64,
    /// Seconds from the last fault to the last decision of a booking made before it.
    pub last_decision_after_last_fault_s: f64,
    pub answers: BTreeMap<String, u64>,
    pub exited: Vec<String>,
    pub broker_reconnects: f64,
    /// Seats held or sold at the end, as the invariant check counted them.
    pub seats_held: i64,
    pub seats_sold: i64,
    pub failures: Vec<String>,
}

impl std::fmt::Display for ChaosReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "chaos run: {} seats, {} buyers, {} bookings",
            self.seats, self.buyers, self.bookings
        )?;
        for fault in &self.faults {
            let after = fault
                .first_decision_after_s
                .map_or("never".to_owned(), |s| format!("{s:.1} s"));
            let outage = (fault.back_at - fault.at).num_milliseconds() as f64 / 1000.0;
            writeln!(
                f,
                "  {:<28} down {outage:>5.1} s, first booking decided {after} after the fault",
                fault.name
            )?;
        }
        writeln!(f, "  bookings by status: {:?}", self.by_status)?;
        writeln!(f, "  left PENDING: {}", self.left_pending)?;
        writeln!(
            f,
            "  last booking made before the last fault decided {:.1} s after it",
            self.last_decision_after_last_fault_s
        )?;
        writeln!(f, "  answers: {:?}", self.answers)?;
        writeln!(
            f,
            "  seats held {}, sold {}",
            self.seats_held, self.seats_sold
        )?;
        writeln!(
            f,
            "  broker reconnects (live workers): {}",
            self.broker_reconnects
        )?;
        writeln!(
            f,
            "  processes that exited by themselves: {:?}",
            self.exited
        )?;
        if self.failures.is_empty() {
            writeln!(f, "  PASSED: every check held")
        } else {
            for failure in &self.failures {
                writeln!(f, "  FAILED: {failure}")?;
            }
            Ok(())
        }
    }
}

/// Makes one fault happen and returns once the service is back.
type Inject = fn(&mut Stack) -> anyhow::Result<()>;

/// What the buyers saw, shared with the fault schedule.
#[derive(Default)]
struct Progress {
    decided: AtomicU64,
    answers: std::sync::Mutex<BTreeMap<String, u64>>,
}

impl Progress {
    fn saw(&self, answer: String) {
        if let Ok(mut answers) = self.answers.lock() {
            *answers.entry(answer).or_default() += 1;
        }
    }
}

pub async fn run(config: Config) -> anyhow::Result<ChaosReport> {
    let (values, db) = crate::prepare(&config).await?;
    let settings = Settings::from_map(&values).context("chaos settings")?;
    let layout = crate::layout(config.seats, config.sections);
    let showtime = fixtures::showtime_on_sale(&db, &layout).await;
    let buyers = fixtures::buyers(&db, &settings, config.buyers as usize).await;
    db.close().await;

    let mut stack = Stack::start(&config, &values).await?;
    let progress = Arc::new(Progress::default());
    let sale = buy(
        config.clone(),
        stack.api_url.clone(),
        showtime.clone(),
        buyers,
        Arc::clone(&progress),
    );
    let schedule = async {
        let mut faults = Vec::new();
        let steps: [(&'static str, Inject); 4] = [
            ("worker killed (SIGKILL)", |stack| {
                stack.kill_worker(0)?;
                stack.add_worker()
            }),
            ("RabbitMQ restarted", |_| restart_rabbitmq()),
            ("Redis restarted", |_| restart_redis()),
            ("PostgreSQL restarted", |_| restart_postgres()),
        ];
        for (name, fault) in steps {
            wait_for_progress(&progress, PROGRESS_BETWEEN_FAULTS).await;
            let at = Utc::now();
            println!("fault: {name}");
            fault(&mut stack).with_context(|| format!("fault {name}"))?;
            faults.push(Fault {
                name,
                at,
                back_at: Utc::now(),
                first_decision_after_s: None,
            });
        }
        Ok::<_, anyhow::Error>(faults)
    };
    let ((), faults) = tokio::join!(sale, schedule);
    let mut faults = faults?;
    let last_fault = faults.last().map_or_else(Utc::now, |f| f.back_at);

    // The database restarted under the old pool: read the outcome on a new one.
    let db = shared::db::pool(&settings.database)?;
    let deadline = Instant::now() + DECIDED_WITHIN;
    let mut left_pending = pending(&db).await?;
    while left_pending > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        left_pending = pending(&db).await?;
    }
    for fault in &mut faults {
        let first: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT min(updated_at) FROM bookings WHERE status <> 'PENDING' AND updated_at > $1",
        )
        .bind(fault.back_at)
        .fetch_one(&db)
        .await?;
        fault.first_decision_after_s =
            first.map(|first| (first - fault.at).num_milliseconds() as f64 / 1000.0);
    }
    let last_decision: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT max(updated_at) FROM bookings WHERE created_at <= $1 AND status <> 'PENDING'",
    )
    .bind(last_fault)
    .fetch_one(&db)
    .await?;
    let last_decision_after =
        last_decision.map_or(0.0, |t| (t - last_fault).num_milliseconds() as f64 / 1000.0);
    let by_status: BTreeMap<String, i64> = sqlx::query_as::<_, (String, i64)>(
        "SELECT status::text, count(*) FROM bookings GROUP BY 1",
    )
    .fetch_all(&db)
    .await?
    .into_iter()
    .collect();
    let invariants = test_support::invariants::check_sale(&db, showtime.showtime_id).await;
    let reconnects = broker_reconnects(&stack.worker_ports()).await;
    let exited = stack.exited();
    let answers = progress
        .answers
        .lock()
        .map(|answers| answers.clone())
        .unwrap_or_default();

    let mut failures = Vec::new();
    let (seats_held, seats_sold) = match &invariants {
        Ok(sale) => (sale.held, sale.sold),
        Err(broken) => {
            failures.push(format!("invariant broken: {broken}"));
            (0, 0)
        }
    };
    if left_pending > 0 {
        failures.push(format!("{left_pending} bookings still PENDING"));
    }
    if last_decision_after > DECIDED_WITHIN.as_secs_f64() {
        failures.push(format!(
            "a booking made before the last fault was decided {last_decision_after:.1} s after it"
        ));
    }
    if !exited.is_empty() {
        failures.push(format!("processes exited by themselves: {exited:?}"));
    }
    let server_errors: u64 = answers
        .iter()
        .filter(|(answer, _)| answer.ends_with(" 500"))
        .map(|(_, count)| count)
        .sum();
    if server_errors > 0 {
        failures.push(format!("{server_errors} answers were 500"));
    }
    if faults.iter().any(|f| f.first_decision_after_s.is_none()) {
        failures.push("no booking was decided after some fault".into());
    }
    if answers.contains_key("gave up") {
        failures.push("some buyers gave up".into());
    }
    stack.stop().await;
    db.close().await;
    crate::drop_database(&values["DATABASE_URL"]).await;
    Ok(ChaosReport {
        seats: seats_total(&layout),
        buyers: config.buyers,
        bookings: by_status.values().sum(),
        faults,
        by_status,
        left_pending,
        last_decision_after_last_fault_s: last_decision_after,
        answers,
        exited,
        broker_reconnects: reconnects,
        seats_held,
        seats_sold,
        failures,
    })
}

fn seats_total(layout: &[(i32, i32)]) -> i64 {
    layout
        .iter()
        .map(|(rows, per_row)| i64::from(rows * per_row))
        .sum()
}

async fn pending(db: &sqlx::PgPool) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM bookings WHERE status = 'PENDING'")
            .fetch_one(db)
            .await?,
    )
}

async fn wait_for_progress(progress: &Progress, decisions: u64) {
    let from = progress.decided.load(Ordering::Relaxed);
    let deadline = Instant::now() + RECOVERY_BOUND;
    while progress.decided.load(Ordering::Relaxed) < from + decisions && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The buyers: each books once and follows the booking to its decision, retrying whatever
/// fails as an app would.
async fn buy(
    config: Config,
    api: String,
    showtime: ShowtimeFixture,
    buyers: Vec<Buyer>,
    progress: Arc<Progress>,
) {
    let client = crate::client(config.concurrency);
    let deadline = Instant::now() + config.max_duration;
    let buyers = buyers.iter().enumerate().map(|(index, buyer)| {
        let body = crate::load::request(&config, &showtime, index as u32);
        (buyer, body)
    });
    futures::stream::iter(buyers)
        .map(|(buyer, body)| {
            let client = &client;
            let api = &api;
            let progress = &progress;
            async move { one_buyer(client, api, buyer, &body, progress, deadline).await }
        })
        .buffer_unordered(config.concurrency)
        .for_each(|()| async {})
        .await;
}

async fn one_buyer(
    client: &reqwest::Client,
    api: &str,
    buyer: &Buyer,
    body: &Value,
    progress: &Progress,
    deadline: Instant,
) {
    let key = Uuid::new_v4().to_string();
    let booking = loop {
        if Instant::now() > deadline {
            progress.saw("gave up".into());
            return;
        }
        let sent = client
            .post(format!("{api}/api/bookings"))
            .bearer_auth(&buyer.token)
            .header("idempotency-key", &key)
            .json(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status().as_u16();
                progress.saw(format!("POST {status}"));
                if status == 202 {
                    let accepted: Option<Value> = response.json().await.ok();
                    if let Some(id) = accepted
                        .as_ref()
                        .and_then(|a| a["booking_id"].as_str())
                        .and_then(|id| id.parse::<Uuid>().ok())
                    {
                        break id;
                    }
                } else if status < 500 && status != 429 && status != 408 {
                    // Refused for a reason a retry will not change.
                    return;
                }
            }
            Err(_) => progress.saw("POST connection error".into()),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    loop {
        if Instant::now() > deadline {
            progress.saw("gave up".into());
            return;
        }
        let polled = client
            .get(format!("{api}/api/bookings/{booking}?wait=10"))
            .bearer_auth(&buyer.token)
            .send()
            .await;
        match polled {
            Ok(response) => {
                let status = response.status().as_u16();
                if status != 200 {
                    progress.saw(format!("GET {status}"));
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                let view: Option<Value> = response.json().await.ok();
                if view.is_some_and(|view| view["status"] != "PENDING") {
                    progress.saw("GET decided".into());
                    progress.decided.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            Err(_) => {
                progress.saw("GET connection error".into());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// The sum of `broker_reconnects_total` over the given workers' `/metrics`.
async fn broker_reconnects(ports: &[u16]) -> f64 {
    let mut total = 0.0;
    for port in ports {
        let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await else {
            continue;
        };
        let Ok(text) = response.text().await else {
            continue;
        };
        total += text
            .lines()
            .filter(|line| line.starts_with("broker_reconnects_total"))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    total
}

fn run_command(program: &str, args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("running {program}"))?;
    if !status.success() {
        bail!("{program} {} failed: {status}", args.join(" "));
    }
    Ok(())
}

fn restart_rabbitmq() -> anyhow::Result<()> {
    run_command("rabbitmqctl", &["-q", "shutdown"])?;
    run_command("rabbitmq-server", &["-detached"])?;
    // The node registers a moment after `-detached` returns; until then await_startup fails.
    for _ in 0..120 {
        let ready = Command::new("rabbitmqctl")
            .args(["-q", "await_startup"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if ready {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    bail!("RabbitMQ did not come back within two minutes")
}

fn restart_redis() -> anyhow::Result<()> {
    run_command("redis-cli", &["-p", "6379", "shutdown", "nosave"])?;
    run_command(
        "redis-server",
        &[
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
    )
}

fn restart_postgres() -> anyhow::Result<()> {
    let version = std::fs::read_dir("/etc/postgresql")
        .context("PostgreSQL's configuration in /etc/postgresql")?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .max_by_key(|name| name.parse::<u32>().unwrap_or(0))
        .context("no PostgreSQL cluster")?;
    run_command(
        "pg_ctlcluster",
        &["--skip-systemctl-redirect", &version, "main", "restart"],
    )
}
