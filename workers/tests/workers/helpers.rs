//! A probe job kind whose behaviour each test chooses, and access to the test's queues.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use lapin::{
    Connection, ConnectionProperties,
    options::{BasicGetOptions, QueueDeclareOptions},
    types::FieldTable,
};
use serde::{Deserialize, Serialize};
use shared::jobs::{Job, JobPublisher, QueueTopology};
use sqlx::PgPool;
use test_support::TestEnv;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use workers::{
    context::{JobContext, JobError, RunJob},
    startup::Application,
};

/// A job whose behaviour the test chooses; it records every attempt in Postgres.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Probe {
    pub id: Uuid,
    /// Attempts that fail transiently before one succeeds.
    pub failures: i64,
    pub permanent_failure: bool,
    /// How long a successful attempt works before it commits.
    pub work_ms: u64,
}

impl Probe {
    pub fn succeeding() -> Self {
        Self {
            id: Uuid::new_v4(),
            failures: 0,
            permanent_failure: false,
            work_ms: 0,
        }
    }
}

impl Job for Probe {
    const NAME: &'static str = "probe";

    fn idempotency_key(&self) -> String {
        self.id.to_string()
    }
}

impl RunJob for Probe {
    async fn run(self, ctx: &JobContext) -> Result<(), JobError> {
        sqlx::query("INSERT INTO probe_attempts (id) VALUES ($1)")
            .bind(self.id)
            .execute(&ctx.core.db)
            .await?;
        let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM probe_attempts WHERE id = $1")
            .bind(self.id)
            .fetch_one(&ctx.core.db)
            .await?;
        if self.permanent_failure {
            return Err(JobError::Permanent(anyhow::anyhow!(
                "probe refuses for good"
            )));
        }
        if attempts <= self.failures {
            return Err(JobError::Transient(anyhow::anyhow!(
                "probe attempt {attempts} fails"
            )));
        }
        if self.work_ms > 0 {
            sqlx::query("INSERT INTO probe_started (id) VALUES ($1)")
                .bind(self.id)
                .execute(&ctx.core.db)
                .await?;
            tokio::time::sleep(Duration::from_millis(self.work_ms)).await;
        }
        sqlx::query(
            "INSERT INTO probe_done (id, worker) VALUES ($1, current_setting('application_name'))",
        )
        .bind(self.id)
        .execute(&ctx.core.db)
        .await?;
        Ok(())
    }
}

/// A `workers` process; killed if the test ends without stopping it.
pub struct WorkerProcess(Child);

impl WorkerProcess {
    pub fn start(env: &TestEnv) -> Self {
        Self::start_with(env, &[])
    }

    /// The same with some settings replaced.
    pub fn start_with(env: &TestEnv, overrides: &[(&str, &str)]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_workers"))
            .env_clear()
            .envs(env.values())
            .envs(overrides.iter().copied())
            .env("RUST_LOG", "warn")
            .current_dir(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the workers binary starts");
        Self(child)
    }

    /// A worker process whose `/metrics` is served on a port of its own, also returned.
    pub fn start_observed(env: &TestEnv) -> (Self, u16) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let process = Self::start_with(env, &[("WORKERS_HTTP_PORT", &port.to_string())]);
        (process, port)
    }

    pub fn kill_hard(&mut self) {
        self.0.kill().expect("SIGKILL");
        self.0.wait().expect("reaped");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct Harness {
    pub env: TestEnv,
    pub db: PgPool,
    pub publisher: JobPublisher,
    pub topology: QueueTopology,
}

impl Harness {
    pub async fn new() -> Self {
        Self::with_env(TestEnv::new().await).await
    }

    /// The same around an environment the test prepared (a stand-in started, settings changed).
    pub async fn with_env(env: TestEnv) -> Self {
        let db = env.db();
        sqlx::raw_sql(
            "CREATE TABLE probe_attempts (id UUID NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now());
             CREATE TABLE probe_started (id UUID NOT NULL);
             CREATE TABLE probe_done (id UUID NOT NULL, worker TEXT NOT NULL);",
        )
        .execute(&db)
        .await
        .expect("probe tables");
        let settings = env.settings();
        Self {
            publisher: JobPublisher::new(&settings.rabbitmq),
            topology: QueueTopology::new(&settings.rabbitmq),
            env,
            db,
        }
    }

    /// A worker process's application consuming only the probe queue. `name` shows up as the
    /// Postgres application name of its connections.
    pub async fn probe_workers(&self, name: &str, concurrency: u16) -> Application {
        let mut env = self.env.values().clone();
        let url = format!("{}?application_name={name}", env["DATABASE_URL"]);
        env.insert("DATABASE_URL".into(), url);
        let settings = shared::config::Settings::from_map(&env).expect("settings");
        let mut app = Application::empty(JobContext::new(settings).expect("context"))
            .await
            .expect("an application");
        app.consume::<Probe>(concurrency);
        app
    }

    pub async fn count(&self, sql: &str, id: Uuid) -> i64 {
        sqlx::query_scalar(sql)
            .bind(id)
            .fetch_one(&self.db)
            .await
            .expect("a count")
    }

    pub async fn attempts(&self, id: Uuid) -> i64 {
        self.count("SELECT count(*) FROM probe_attempts WHERE id = $1", id)
            .await
    }

    pub async fn completions(&self, id: Uuid) -> i64 {
        self.count("SELECT count(*) FROM probe_done WHERE id = $1", id)
            .await
    }

    /// Ready messages in the probe's work queue and in its dead-letter queue.
    pub async fn probe_queues(&self) -> (u32, u32) {
        (
            self.ready_messages(&self.topology.queue::<Probe>()).await,
            self.ready_messages(&self.topology.dead_letter_queue::<Probe>())
                .await,
        )
    }

    /// Messages ready in a queue (not counting those delivered and not yet acknowledged).
    pub async fn ready_messages(&self, queue: &str) -> u32 {
        let connection = self.broker().await;
        let channel = connection.create_channel().await.expect("a channel");
        let declared = channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("the queue exists");
        declared.message_count()
    }

    /// Declares the queues of `J`, so they can be counted before anything is published.
    pub async fn declare<J: Job>(&self) {
        let connection = self.broker().await;
        let channel = connection.create_channel().await.expect("a channel");
        self.topology
            .declare::<J>(&channel)
            .await
            .expect("declared");
    }

    /// Takes one message off a queue and returns its body.
    pub async fn take_message(&self, queue: &str) -> Option<Vec<u8>> {
        let connection = self.broker().await;
        let channel = connection.create_channel().await.expect("a channel");
        channel
            .basic_get(queue.into(), BasicGetOptions { no_ack: true })
            .await
            .expect("basic.get")
            .map(|message| message.delivery.data.clone())
    }

    async fn broker(&self) -> Connection {
        Connection::connect(
            self.env.get("RABBITMQ_URL"),
            ConnectionProperties::default(),
        )
        .await
        .expect("RabbitMQ is reachable")
    }
}

/// A running worker application and the way to stop it.
pub struct Running {
    pub stop: CancellationToken,
    pub handle: JoinHandle<anyhow::Result<()>>,
}

impl Running {
    pub fn start(app: Application) -> Self {
        let stop = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(stop.clone().cancelled_owned()));
        Self { stop, handle }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.handle
            .await
            .expect("the worker task")
            .expect("workers stop cleanly");
    }
}

/// Waits until `condition` holds; fails the test if it never does. A bound on a hang, not an
/// assertion about speed.
/// The value of the unlabelled-but-for-`kind` gauge `name` for `kind` on the worker process
/// serving `/metrics` on `port`; `None` while it does not answer or has not set it.
pub async fn gauge(port: u16, name: &str, kind: &str) -> Option<f64> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let series = format!("{name}{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
}
