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
    workers: Vec<Child>,
    bare: Child,
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
        // Several worker processes on one machine: each serves its metrics on a port of its own.
        env.insert("WORKERS_HTTP_PORT".into(), "0".into());
        // One machine plays every buyer from one address: the limits would measure themselves.
        for group in ["READS", "WRITES", "AUTH", "OTP", "BOOKINGS"] {
            env.insert(format!("RATE_LIMIT_{group}"), "100000000/1m".into());
        }
        let api = spawn(config, "api", "api", &[], &env)?;
        let workers = (0..config.workers)
            .map(|n| spawn(config, "workers", &format!("workers-{n}"), &[], &env))
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
        };
        wait_until_up(&format!("{}/health", stack.api_url)).await?;
        wait_until_up(&format!("{}/bare", stack.bare_url)).await?;
        // Workers declare their queues and start consuming within moments of starting.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Ok(stack)
    }

    pub fn peak_memory(&self) -> PeakMemory {
        PeakMemory {
            api_mib: vm_hwm_mib(self.api.id()),
            workers_mib: self.workers.iter().map(|w| vm_hwm_mib(w.id())).collect(),
            bare_mib: vm_hwm_mib(self.bare.id()),
        }
    }

    pub async fn stop(mut self) {
        let mut children: Vec<&mut Child> = vec![&mut self.api, &mut self.bare];
        children.extend(self.workers.iter_mut());
        for child in children {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// Peak resident memory of a process, from /proc.
fn vm_hwm_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
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
