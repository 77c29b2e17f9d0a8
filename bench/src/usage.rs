//! CPU and memory over a stretch of a run: the server's, this client's, and everything
//! else's. These machines are shared, so every report says how much CPU other processes
//! took while it measured.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use crate::server::Server;

/// CPU used over a stretch of a run by everything but this process and the server: other
/// processes on a shared machine spoil latency and throughput figures, so the report
/// says how much of it there was.
pub struct CpuMeter {
    start: Instant,
    machine: f64,
    client: f64,
    server: Option<(u32, f64)>,
}

impl CpuMeter {
    pub fn start(server_pid: Option<u32>) -> CpuMeter {
        CpuMeter {
            start: Instant::now(),
            machine: machine_busy_secs(),
            client: cpu_secs(None),
            server: server_pid.map(|pid| (pid, cpu_secs(Some(pid)))),
        }
    }

    /// Percent of one core used by everything else since `start`.
    pub fn others_pct(&self) -> f64 {
        let machine = machine_busy_secs() - self.machine;
        let client = cpu_secs(None) - self.client;
        let server = self
            .server
            .map(|(pid, start)| cpu_secs(Some(pid)) - start)
            .unwrap_or(0.0);
        let wall = self.start.elapsed().as_secs_f64().max(1e-9);
        (100.0 * (machine - client - server) / wall).max(0.0)
    }
}

/// CPU time the whole machine has been busy so far (all cores, user + system + interrupts),
/// in seconds: beside the server's and the client's own time it shows what else ran.
pub fn machine_busy_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return 0.0;
    };
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let ticks: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().unwrap_or(0.0))
        .collect();
    // user nice system idle iowait irq softirq steal …
    let busy: f64 = [0, 1, 2, 5, 6]
        .iter()
        .map(|&i| ticks.get(i).copied().unwrap_or(0.0))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    busy / hz
}

/// CPU time (user + system) a process has used so far, in seconds; `None` is this process.
pub fn cpu_secs(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the parenthesized command name: state is the first, utime the 12th.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    (ticks(11) + ticks(12)) / hz
}

/// CPU and memory of a stretch of a run.
pub struct Usage {
    pub wall: f64,
    pub server_cpu: f64,
    pub client_cpu: f64,
    pub machine_cpu: f64,
    pub rss_start_kib: u64,
    pub rss_peak_kib: u64,
    pub rss_end_kib: u64,
}

impl Usage {
    pub fn pct(&self, cpu: f64) -> f64 {
        100.0 * cpu / self.wall.max(1e-9)
    }
    pub fn others_pct(&self) -> f64 {
        self.pct(self.machine_cpu - self.server_cpu - self.client_cpu)
            .max(0.0)
    }
}

/// Samples the server's RSS every `every` until dropped-stopped; CPU from start to `finish`.
pub struct UsageMeter {
    start: Instant,
    server_cpu: f64,
    client_cpu: f64,
    machine_cpu: f64,
    pid: u32,
    rss_start: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl UsageMeter {
    pub fn start(server: &Server) -> UsageMeter {
        let pid = server.pid();
        let rss_start = rss_kib(pid).unwrap_or(0);
        let peak = Arc::new(AtomicU64::new(rss_start));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let peak = peak.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(rss) = rss_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            });
        }
        UsageMeter {
            start: Instant::now(),
            server_cpu: cpu_secs(Some(pid)),
            client_cpu: cpu_secs(None),
            machine_cpu: machine_busy_secs(),
            pid,
            rss_start,
            peak,
            stop,
        }
    }

    pub fn finish(self) -> Usage {
        self.stop.store(true, Ordering::Relaxed);
        let rss_end = rss_kib(self.pid).unwrap_or(0);
        Usage {
            wall: self.start.elapsed().as_secs_f64(),
            server_cpu: cpu_secs(Some(self.pid)) - self.server_cpu,
            client_cpu: cpu_secs(None) - self.client_cpu,
            machine_cpu: machine_busy_secs() - self.machine_cpu,
            rss_start_kib: self.rss_start,
            rss_peak_kib: self.peak.load(Ordering::Relaxed).max(rss_end),
            rss_end_kib: rss_end,
        }
    }
}

pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))
}
