//! The load generator's server processes: starting `carewell serve` (or the do-nothing bot)
//! against the fakes, reading their CPU time and memory, and killing and restarting them in turn.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::SECRET;
use super::cpu_limit::CpuGroup;

pub(super) struct ServerProc {
    pub url: String,
    pub child: Child,
    /// The process's CPU budget, when it has one (removed after the process, see `Drop`).
    _group: Option<CpuGroup>,
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start a server process (the same for each, and again after a kill).
#[derive(Clone)]
pub(super) struct ServerSpec {
    pub db_url: String,
    pub graph_url: String,
    pub erp_url: String,
    pub llm_url: Option<String>,
    pub workdir: std::path::PathBuf,
    pub log_filter: Option<String>,
    pub baseline: bool,
    /// Lease and outbox claim length in ms (`LEASE_MS`, `OUTBOX_CLAIM_MS`), when not the default.
    pub lease_ms: Option<u64>,
    /// Each process's runtime threads (`RUNTIME_THREADS`).
    pub runtime_threads: usize,
    /// Each process's CPU budget in cores, in a control group of its own (`cpu_limit`).
    pub cpu_limit: Option<f64>,
}

/// Starts a server on `port` (0: any free one). Errors: it cannot be started, or exits before
/// saying where it listens.
pub(super) fn start_server(spec: &ServerSpec, port: u16) -> Result<ServerProc, String> {
    let ServerSpec {
        db_url,
        graph_url,
        erp_url,
        llm_url,
        workdir,
        log_filter,
        baseline,
        lease_ms,
        runtime_threads,
        cpu_limit,
    } = spec;
    let (workdir, baseline) = (workdir.as_path(), *baseline);
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let log = std::fs::File::create(workdir.join(format!("server-{}.log", uuid::Uuid::new_v4().simple())))
        .map_err(|e| e.to_string())?;
    let group = cpu_limit.map(CpuGroup::create).transpose()?;
    let mut cmd = group.as_ref().map_or_else(|| Command::new(&exe), |g| g.command(&exe));
    cmd.arg(if baseline { "baseline-bot" } else { "serve" })
        .env("PORT", port.to_string())
        .env("DATABASE_URL", db_url)
        .env("WHATSAPP_APP_SECRET", SECRET)
        .env("WHATSAPP_API_BASE_URL", graph_url)
        .env("WHATSAPP_ACCESS_TOKEN", crate::fakes::GRAPH_TOKEN)
        .env("ERP_BASE_URL", erp_url)
        .env("ERP_API_KEY", crate::fakes::ERP_KEY.0)
        .env("ERP_API_SECRET", crate::fakes::ERP_KEY.1)
        .env("RATE_SENDER_PER_MINUTE", "1000")
        .env("RATE_IP_PER_SECOND", "100000")
        .env("OUTBOUND_PER_SECOND", "100000")
        .env("RUST_LOG", log_filter.as_deref().unwrap_or("warn"))
        .env("FLOWS_DIR", workdir.join("flows"))
        .env("RUNTIME_THREADS", runtime_threads.to_string())
        .stdout(Stdio::piped())
        .stderr(log);
    if let Some(ms) = lease_ms {
        cmd.env("LEASE_MS", ms.to_string()).env("OUTBOX_CLAIM_MS", ms.to_string());
    }
    if let Some(url) = llm_url {
        cmd.env("LLM_BASE_URL", url)
            .env("LLM_API_KEY", crate::fakes::LLM_KEY)
            .env("LLM_TIMEOUT_MS", "10000")
            .env("LLM_BUDGET_MS", "12000")
            .env("LLM_MAX_CONCURRENCY", "8192");
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot start the server: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line.starts_with("listening on ") => {
                return Ok(ServerProc { url: line["listening on ".len()..].to_string(), child, _group: group });
            }
            Some(Ok(_)) => continue,
            _ => {
                // Gone, or not saying where it listens: make sure it is gone (and its group free).
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("the server did not start; see the logs in {}", workdir.display()));
            }
        }
    }
}

/// CPU seconds (user + system) and peak RSS in KiB of a process, from /proc.
pub(super) fn proc_usage(pid: u32) -> (f64, u64) {
    let ticks = 100.0; // USER_HZ on Linux
    let cpu = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            Some((after.get(11)?.parse::<f64>().ok()? + after.get(12)?.parse::<f64>().ok()?) / ticks)
        })
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0);
    (cpu, rss)
}

/// Every `every`, kills one server (SIGKILL, in turn) and starts it again on the same port, until
/// aborted; counts the kills. (A killed process's CPU time is not in the report's.)
pub(super) async fn kill_in_turn(
    servers: Arc<Mutex<Vec<ServerProc>>>,
    spec: ServerSpec,
    every: Duration,
    kills: Arc<AtomicUsize>,
) {
    let mut next = 0;
    loop {
        tokio::time::sleep(every).await;
        let spec = spec.clone();
        let servers = servers.clone();
        let restarted = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut list = servers.lock().map_err(|_| "the servers' list is poisoned".to_string())?;
            let count = list.len();
            let victim = list.get_mut(next % count).ok_or("no server")?;
            let port: u16 = victim.url.rsplit(':').next().and_then(|p| p.parse().ok()).ok_or("no port")?;
            let _ = victim.child.kill();
            let _ = victim.child.wait();
            // The port is free once the process is gone; a restart may need a moment.
            let mut last = String::new();
            for _ in 0..50 {
                match start_server(&spec, port) {
                    Ok(fresh) => {
                        *victim = fresh;
                        return Ok(());
                    }
                    Err(e) => last = e,
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(last)
        })
        .await;
        match restarted {
            Ok(Ok(())) => {
                kills.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Err(e)) => eprintln!("\na killed server could not be started again: {e}"),
            Err(e) => eprintln!("\nthe kill task failed: {e}"),
        }
        next += 1;
    }
}
