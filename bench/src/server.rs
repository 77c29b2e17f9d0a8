//! Starting the real `slashd` binary with a generated config, and talking to it over REST
//! and its CLI.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

pub const ADMIN_PASSWORD: &str = "bench-admin-password";
const PASSWORD: &str = "bench-password-123";
/// How many WARN/ERROR lines of the server log are kept for the report.
const KEEP_LOG_LINES: usize = 20;

/// Where the server runs and which database it uses.
#[derive(Clone)]
pub struct ServerOpts {
    pub bin: PathBuf,
    pub database_url: Option<String>,
    /// Cluster mode: every node gets the same JWT secret and Redis namespace.
    pub cluster: Option<ClusterOpts>,
    /// TOML appended to the generated config (e.g. `[plugins.NAME]` tables).
    pub extra_config: String,
    /// `[commands] rate_per_sec` (the burst is twice it); None: effectively unlimited.
    pub commands_rate: Option<f64>,
    /// Keep slashd's own per-connection frame limits (`[realtime] rate_per_sec`, burst,
    /// flood strikes) instead of lifting them.
    pub frame_limits: bool,
    /// Lift `[commands] complete_rate_per_sec` and `complete_burst` as the command rate is
    /// (only for scenarios that complete: a slashd from before completion refuses the keys,
    /// and A/B runs start one).
    pub completion_rate: bool,
}

#[derive(Clone)]
pub struct ClusterOpts {
    pub redis_url: String,
    pub namespace: String,
    pub secret: String,
    /// `[cluster] shard_rooms`; None: the server's default (a slashd from before the key
    /// refuses it).
    pub shard_rooms: Option<bool>,
}

/// The server's WARN and ERROR log lines, counted, the first few kept.
#[derive(Default, Debug)]
pub struct LogReport {
    pub warnings: usize,
    pub errors: usize,
    pub lines: Vec<String>,
}

pub struct Server {
    pub addr: String,
    pub ws_url: String,
    pub http: reqwest::Client,
    /// Unique per server, so user names never collide in a reused PostgreSQL database.
    tag: String,
    config_path: PathBuf,
    bin: PathBuf,
    child: Option<Child>,
    log: Arc<Mutex<LogReport>>,
    dir: tempfile::TempDir,
}

#[derive(Clone)]
pub struct User {
    pub id: String,
    pub token: String,
}

impl Server {
    /// Write a config into a fresh temp dir, start `slashd serve`, and wait for its
    /// "listening" log line.
    pub async fn start(opts: &ServerOpts) -> anyhow::Result<Server> {
        let bin = std::fs::canonicalize(&opts.bin).with_context(|| {
            format!(
                "server binary {} not found (build it with `cargo build --release -p slashd`, \
                 or pass --server-bin)",
                opts.bin.display()
            )
        })?;
        let dir = tempfile::Builder::new().prefix("slashd-bench").tempdir()?;
        let db_url = match &opts.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}/slashd.db?mode=rwc", dir.path().display()),
        };
        let secret = match &opts.cluster {
            Some(c) => c.secret.clone(),
            None => format!(
                "{}{}",
                uuid::Uuid::new_v4().simple(),
                uuid::Uuid::new_v4().simple()
            ),
        };
        let mut config = render_config(
            dir.path(),
            &db_url,
            &secret,
            opts.commands_rate,
            opts.frame_limits,
            opts.completion_rate,
        );
        if let Some(c) = &opts.cluster {
            config.push_str(&format!(
                "\n[cluster]\nredis_url = {:?}\nnamespace = {:?}\n",
                c.redis_url, c.namespace
            ));
            if let Some(shard) = c.shard_rooms {
                config.push_str(&format!("shard_rooms = {shard}\n"));
            }
        }
        config.push_str(&opts.extra_config);
        let config_path = dir.path().join("slashd.toml");
        std::fs::write(&config_path, config)?;

        let log = Arc::new(Mutex::new(LogReport::default()));
        let mut server = Server {
            addr: String::new(),
            ws_url: String::new(),
            http: reqwest::Client::new(),
            tag: uuid::Uuid::new_v4().simple().to_string()[..8].to_string(),
            config_path,
            bin,
            child: None,
            log,
            dir,
        };
        server.spawn().await?;
        Ok(server)
    }

    /// Start `slashd serve` on this server's config and wait for its "listening" line.
    async fn spawn(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new(&self.bin)
            .args(["--log-format", "json", "--config"])
            .arg(&self.config_path)
            .arg("serve")
            .current_dir(self.dir.path())
            .env("SLASHD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SLASHD_LOG", "info,tower_http=warn,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("spawn {}", self.bin.display()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow!("the server's stderr was not piped"))?;
        let (tx, rx) = mpsc::channel();
        {
            let log = self.log.clone();
            // Drain stderr for the server's whole life, so it never blocks on a full pipe.
            std::thread::spawn(move || drain_log(stderr, tx, log));
        }
        self.child = Some(child);
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await?
            .map_err(|_| {
                let lines = self
                    .log
                    .lock()
                    .map(|l| l.lines.join("\n"))
                    .unwrap_or_default();
                anyhow!("slashd did not report a listening address within 60 s\n{lines}")
            })?;
        self.ws_url = format!("ws://{addr}/ws");
        self.addr = addr;
        self.wait_ready().await
    }

    /// Wait for `/readyz` to answer 200: on a cold compile cache the plugins compile after
    /// the server listens, and a measurement must not start before they can answer.
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let answer = self
                .http
                .get(format!("http://{}/readyz", self.addr))
                .send()
                .await;
            match answer {
                Ok(r) if r.status() == reqwest::StatusCode::OK => return Ok(()),
                Ok(r) if std::time::Instant::now() >= deadline => {
                    anyhow::bail!("slashd was not ready within 180 s: /readyz {}", r.status())
                }
                Err(e) if std::time::Instant::now() >= deadline => {
                    anyhow::bail!("slashd was not ready within 180 s: {e}")
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// `kill -9` the server and reap it; the data directory and database stay.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| anyhow!("the server is not running"))?;
        child.kill().context("kill -9 the server")?;
        child.wait().context("reap the killed server")?;
        Ok(())
    }

    /// Start the server again on the same config, data directory and database (after
    /// [`Server::kill9`]); it listens on a new port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.is_some() {
            bail!("the server is still running");
        }
        self.spawn().await
    }

    /// The SQLite database file when the server runs on its default database.
    pub fn sqlite_url(&self) -> String {
        format!("sqlite://{}/slashd.db?mode=rw", self.dir.path().display())
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// The server's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| anyhow!("no VmRSS in /proc/{}/status", self.pid()))
    }

    /// The server's `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let answer = self
            .http
            .get(format!("http://{}/metrics", self.addr))
            .send()
            .await
            .context("GET /metrics")?;
        if !answer.status().is_success() {
            bail!("GET /metrics: {}", answer.status());
        }
        Ok(answer.text().await?)
    }

    /// Create `count` viewer users with the CLI and log each in once.
    pub async fn users(&self, prefix: &str, count: usize) -> anyhow::Result<Vec<User>> {
        let mut users = Vec::with_capacity(count);
        for i in 0..count {
            let name = format!("{prefix}-{}-{i}", self.tag);
            self.add_user(&name).await?;
            users.push(self.login(&name, PASSWORD).await?);
        }
        Ok(users)
    }

    async fn add_user(&self, name: &str) -> anyhow::Result<()> {
        let mut child = tokio::process::Command::new(&self.bin)
            .arg("--config")
            .arg(&self.config_path)
            .args(["user", "add", name, "--role", "viewer", "--password-stdin"])
            .current_dir(self.dir.path())
            .env("SLASHD_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(format!("{PASSWORD}\n").as_bytes()).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "slashd user add {name} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    async fn login(&self, name: &str, password: &str) -> anyhow::Result<User> {
        let body = self
            .post(
                "/auth/login",
                None,
                json!({"username": name, "password": password}),
                200,
            )
            .await?;
        Ok(User {
            id: body["user"]["id"].as_str().unwrap_or_default().to_string(),
            token: body["token"]
                .as_str()
                .ok_or_else(|| anyhow!("login {name}: no token in {body}"))?
                .to_string(),
        })
    }

    /// Create a session owned by `owner`; returns its id.
    pub async fn session(&self, owner: &User, title: &str) -> anyhow::Result<String> {
        let body = self
            .post(
                "/chat/sessions",
                Some(&owner.token),
                json!({"title": title}),
                201,
            )
            .await?;
        Ok(body["id"].as_str().unwrap_or_default().to_string())
    }

    pub async fn add_member(
        &self,
        owner: &User,
        session: &str,
        member: &User,
    ) -> anyhow::Result<()> {
        self.post(
            &format!("/chat/sessions/{session}/members"),
            Some(&owner.token),
            json!({"user_id": member.id}),
            201,
        )
        .await?;
        Ok(())
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
        expect: u16,
    ) -> anyhow::Result<Value> {
        let mut req = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .json(&body);
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.with_context(|| format!("POST {path}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        if status != expect {
            bail!("POST {path}: {status} {text}");
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// SIGTERM, wait for the exit (SIGKILL after 15 s), and hand back the log report.
    pub fn stop(mut self) -> LogReport {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
            unsafe {
                libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        if !status.success() {
                            self.log
                                .lock()
                                .unwrap()
                                .lines
                                .push(format!("slashd exited with {status}"));
                        }
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = child.kill();
                        let _ = child.wait();
                        let mut log = self.log.lock().unwrap();
                        log.errors += 1;
                        log.lines
                            .push("slashd did not exit within 15 s of SIGTERM".into());
                        break;
                    }
                }
            }
        }
        // Give the drain thread a moment to read the last lines.
        std::thread::sleep(Duration::from_millis(100));
        std::mem::take(&mut *self.log.lock().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
/// The server config: real defaults, except the limits a benchmark must not trip over.
fn render_config(
    dir: &Path,
    db_url: &str,
    secret: &str,
    commands_rate: Option<f64>,
    frame_limits: bool,
    completion_rate: bool,
) -> String {
    let (command_rate, command_burst) = match commands_rate {
        Some(rate) => (rate, (2.0 * rate).max(1.0)),
        None => (1_000_000.0, 1_000_000.0),
    };
    let frame_rate = match frame_limits {
        true => "# slashd's own frame and reconnect limits",
        // One client drives thousands of round trips per second on one connection.
        false => {
            "rate_per_sec = 1000000.0\nrate_burst = 1000000.0\nflood_strikes = 1000000.0\n\
                  connects_per_user_per_min = 1000000"
        }
    };
    let completion = match completion_rate {
        true => {
            format!("complete_rate_per_sec = {command_rate:?}\ncomplete_burst = {command_burst:?}")
        }
        false => String::new(),
    };
    format!(
        r#"[server]
listen = "127.0.0.1:0"
data_dir = {data_dir:?}
shutdown_grace = "5s"
# Every bench client connects from 127.0.0.1: the per-address cap would see one attacker.
max_connections_per_ip = 1000000
max_connections = 1000000

[database]
url = {db_url:?}

[auth]
jwt_secret = {secret:?}
# The bench logs in thousands of users from one address.
login_attempts_per_ip = 1000000
login_failures_per_user = 1000000
login_queue = 100000

[realtime]
{frame_rate}
# Fan-out and idle connections are many connections of a few users.
max_connections_per_user = 20000

[commands]
# The /help round trip runs thousands of commands from one user (unless a scenario asks
# for a real per-user rate).
rate_per_sec = {command_rate:?}
rate_burst = {command_burst:?}
{completion}
"#,
        data_dir = dir.join("data").display().to_string(),
    )
}

fn drain_log(
    stderr: std::process::ChildStderr,
    listening: mpsc::Sender<String>,
    log: Arc<Mutex<LogReport>>,
) {
    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            // Not JSON: a panic message or similar; always worth reporting.
            let mut log = log.lock().unwrap();
            log.errors += 1;
            if log.lines.len() < KEEP_LOG_LINES {
                log.lines.push(line);
            }
            continue;
        };
        if v["fields"]["message"] == "listening" {
            let _ = listening.send(v["fields"]["addr"].as_str().unwrap_or_default().to_string());
        }
        let level = v["level"].as_str().unwrap_or_default();
        if level == "WARN" || level == "ERROR" {
            let mut log = log.lock().unwrap();
            if level == "WARN" {
                log.warnings += 1;
            } else {
                log.errors += 1;
            }
            if log.lines.len() < KEEP_LOG_LINES {
                log.lines.push(line);
            }
        }
    }
}
