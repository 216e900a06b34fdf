//! The processes under test: the API, the worker processes and a bare axum server, started from
//! the built binaries with the run's settings, and their peak memory (VmHWM) at the end.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};

use crate::Config;

pub struct Stack {
    pub api_url: String,
    pub bare_url: String,
    api: Child,
    workers: Vec<Worker>,
    bare: Child,
    config: Config,
    env: HashMap<String, String>,
}

/// A worker process and the port of its `/metrics` and `/health`.
struct Worker {
    child: Child,
    http_port: u16,
    /// Killed on purpose (the chaos run): its exit is no failure.
    killed: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PeakMemory {
    pub api_mib: f64,
    pub workers_mib: Vec<f64>,
    pub bare_mib: f64,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn spawn(
    config: &Config,
    binary: &str,
    log_name: &str,
    args: &[&str],
    env: &HashMap<String, String>,
) -> anyhow::Result<Child> {
    let path = config.bin_dir.join(binary);
    let stdout = match &config.logs {
        Some((dir, _)) => Stdio::from(std::fs::File::create(dir.join(format!("{log_name}.log")))?),
        None => Stdio::null(),
    };
    Command::new(&path)
        .args(args)
        .env_clear()
        .envs(env)
        .current_dir(std::env::temp_dir())
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting {}", path.display()))
}

async fn wait_until_up(url: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{url} did not come up")
}

impl Stack {
    pub async fn start(config: &Config, env: &HashMap<String, String>) -> anyhow::Result<Self> {
        let mut env = env.clone();
        let api_port = free_port()?;
        env.insert("HOST".into(), "127.0.0.1".into());
        env.insert("PORT".into(), api_port.to_string());

        // One machine plays every buyer from one address: the limits would measure themselves.
        for group in ["READS", "WRITES", "AUTH", "OTP", "BOOKINGS"] {
            env.insert(format!("RATE_LIMIT_{group}"), "100000000/1m".into());
        }
        // The same for the sign-in throttle's count per address (it counts attempts in flight).
        env.insert("LOGIN_MAX_FAILURES_PER_IP".into(), "100000000".into());
        let api = spawn(config, "api", "api", &[], &env)?;
        let workers = (0..config.workers)
            .map(|n| spawn_worker(config, &env, n as usize))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let bare_port = free_port()?;
        let port = bare_port.to_string();
        let bare = spawn(
            config,
            "flash-sale",
            "bare",
            &["bare-server", "--port", &port],
            &env,
        )?;
        let stack = Self {
            api_url: format!("http://127.0.0.1:{api_port}"),
            bare_url: format!("http://127.0.0.1:{bare_port}"),
            api,
            workers,
            bare,
            config: config.clone(),
            env,
        };
        wait_until_up(&format!("{}/health", stack.api_url)).await?;
        wait_until_up(&format!("{}/bare", stack.bare_url)).await?;
        // Workers declare their queues and start consuming within moments of starting.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(stack)
    }

    pub fn peak_memory(&self) -> PeakMemory {
        PeakMemory {
            api_mib: memory_mib(self.api.id(), "VmHWM:"),
            workers_mib: self
                .workers
                .iter()
                .filter(|w| !w.killed)
                .map(|w| memory_mib(w.child.id(), "VmHWM:"))
                .collect(),
            bare_mib: memory_mib(self.bare.id(), "VmHWM:"),
        }
    }

    /// The API's resident memory now, in MiB.
    pub fn api_resident_mib(&self) -> f64 {
        memory_mib(self.api.id(), "VmRSS:")
    }

    /// Kills worker `index` with SIGKILL, as a crashed machine would.
    pub fn kill_worker(&mut self, index: usize) -> anyhow::Result<()> {
        let worker = self
            .workers
            .get_mut(index)
            .context("no such worker process")?;
        worker.killed = true;
        worker.child.kill()?;
        worker.child.wait()?;
        Ok(())
    }

    /// Starts one more worker process.
    pub fn add_worker(&mut self) -> anyhow::Result<()> {
        let worker = spawn_worker(&self.config, &self.env, self.workers.len())?;
        self.workers.push(worker);
        Ok(())
    }

    /// The metrics ports of the worker processes that were not killed.
    pub fn worker_ports(&self) -> Vec<u16> {
        self.workers
            .iter()
            .filter(|w| !w.killed)
            .map(|w| w.http_port)
            .collect()
    }

    /// The processes that exited although nobody stopped them, by name.
    pub fn exited(&mut self) -> Vec<String> {
        let mut exited = Vec::new();
        if !matches!(self.api.try_wait(), Ok(None)) {
            exited.push("api".to_owned());
        }
        for (index, worker) in self.workers.iter_mut().enumerate() {
            if !worker.killed && !matches!(worker.child.try_wait(), Ok(None)) {
                exited.push(format!("workers-{index}"));
            }
        }
        exited
    }

    pub async fn stop(mut self) {
        let mut children: Vec<&mut Child> = vec![&mut self.api, &mut self.bare];
        children.extend(
            self.workers
                .iter_mut()
                .filter(|w| !w.killed)
                .map(|w| &mut w.child),
        );
        for child in children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for Stack {
    /// A run that failed half-way leaves no process behind.
    fn drop(&mut self) {
        let mut children: Vec<&mut Child> = vec![&mut self.api, &mut self.bare];
        children.extend(self.workers.iter_mut().map(|w| &mut w.child));
        for child in children {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// A worker process with a metrics port of its own (several run on one machine).
fn spawn_worker(
    config: &Config,
    env: &HashMap<String, String>,
    index: usize,
) -> anyhow::Result<Worker> {
    let http_port = free_port()?;
    let mut env = env.clone();
    env.insert("WORKERS_HTTP_PORT".into(), http_port.to_string());
    let child = spawn(config, "workers", &format!("workers-{index}"), &[], &env)?;
    Ok(Worker {
        child,
        http_port,
        killed: false,
    })
}

/// A memory figure of a process from /proc (`VmHWM:` peak, `VmRSS:` now), in MiB.
fn memory_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|value| {
                    value
                        .trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The comparison point for the read path: an axum server answering a small JSON document.
pub async fn serve_bare(port: u16) -> anyhow::Result<()> {
    use axum::{Json, Router, routing::get};
    let router = Router::new().route(
        "/bare",
        get(|| async { Json(serde_json::json!({"status": "RESERVED", "ok": true})) }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, router).await?;
    Ok(())
}
