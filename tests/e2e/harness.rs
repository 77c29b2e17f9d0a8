//! The end-to-end harness: starts the real `slashd` binary against a fresh SQLite file or a
//! fresh PostgreSQL database, and drives it over real HTTP and WebSocket connections.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sqlx::{Connection, Executor};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const BIN: &str = env!("CARGO_BIN_EXE_slashd");
pub const SECRET: &str = "e2e-secret-0123456789abcdef0123456789abcdef";
pub const ADMIN_PASSWORD: &str = "admin-password-123";
pub const PASSWORD: &str = "password-123";
/// How long a test waits for an expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generate `mod NAME { sqlite, postgres }` tests that run `NAME(backend)` on each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::harness::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::harness::Backend::Postgres).await
            }
        }
    )*};
}

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A built test or built-in plugin component (built by host/build.rs).
pub fn plugin_wasm(name: &str) -> String {
    format!("{}/{name}.wasm", env!("BUILT_PLUGIN_WASM_DIR"))
}

/// A test plugin as the 0.1.0 SDK built it, kept in `tests/fixtures/plugins-v0.1.0`.
pub fn plugin_wasm_v010(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/plugins-v0.1.0")
        .join(format!("{name}.wasm"));
    assert!(path.exists(), "{} is missing", path.display());
    path.display().to_string()
}

/// A Python or JavaScript test plugin (`pyprobe`, `jsprobe`) built with the stock
/// toolchains by `scripts/guest-plugins.sh` — run once per test process, here if `.ci/run`
/// has not already. Panics (the test fails, it is never skipped) if they cannot be built.
pub fn guest_plugin(name: &str) -> String {
    static BUILT: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    built_by_script(&BUILT, "guest-plugins.sh", "guest-plugins", &[], name)
}

/// `NAME.wasm` from a build script of `scripts/` that writes its components to the folder it
/// is given (`OUT`, beside the test plugins) — run once per test process through `built`.
/// Panics (the test fails, it is never skipped) if the script fails.
pub fn built_by_script(
    built: &'static std::sync::OnceLock<Result<PathBuf, String>>,
    script: &str,
    out: &str,
    args: &[&str],
    name: &str,
) -> String {
    let dir = built.get_or_init(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let out = PathBuf::from(env!("BUILT_PLUGIN_WASM_DIR"))
            .join("../../..")
            .join(out);
        let status = std::process::Command::new(root.join("scripts").join(script))
            .arg(&out)
            .args(args)
            .status()
            .map_err(|e| format!("cannot run scripts/{script}: {e}"))?;
        if !status.success() {
            return Err(format!("scripts/{script} failed: {status}"));
        }
        Ok(out)
    });
    match dir {
        Ok(dir) => dir.join(format!("{name}.wasm")).display().to_string(),
        Err(why) => panic!("the {name} plugin cannot be built: {why}"),
    }
}

/// A test plugin built as a native library (built by host/build.rs).
pub fn plugin_native(name: &str) -> String {
    format!("{}/lib{name}.so", env!("BUILT_PLUGIN_NATIVE_DIR"))
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Resident memory of process `pid`, in KiB (0 if it cannot be read). See
/// [`Server::rss_kib`]; this form needs no `Server`, for a task that outlives a borrow.
pub fn rss_kib_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The compile cache the suite shares: servers' `cache_dir`, and the CLI's (`plugin run`,
/// `plugin check`) through `XDG_CACHE_HOME` = [`SHARED_XDG_CACHE_HOME`].
pub const SHARED_COMPILE_CACHE: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/slashd/plugin-cache");
pub const SHARED_XDG_CACHE_HOME: &str = env!("CARGO_TARGET_TMPDIR");

/// A server configuration, rendered to `slashd.toml`.
#[derive(Clone)]
pub struct Setup {
    backend: Backend,
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Setup {
    pub fn new(backend: Backend) -> Setup {
        let mut setup = Setup {
            backend,
            sections: BTreeMap::new(),
        };
        setup = setup
            .set("server", "listen", "\"127.0.0.1:0\"")
            .set("server", "shutdown_grace", "\"5s\"")
            .set("auth", "jwt_secret", &format!("{SECRET:?}"))
            // Many servers run at once against one PostgreSQL (100 connections by default).
            .set("database", "max_connections", "4")
            // One compile cache for the whole suite, as one install keeps one across
            // restarts: each server would otherwise compile every built-in again (seconds
            // of CPU per start, hundreds of starts). Safe to share: entries are keyed by
            // the component's bytes and the engine's settings and written by rename.
            .set(
                "commands",
                "cache_dir",
                &format!("{SHARED_COMPILE_CACHE:?}"),
            );
        setup
    }

    /// A compile cache of the server's own (`<data_dir>/plugin-cache`, empty at the
    /// start), for the tests of compiling and of the cache itself.
    pub fn own_compile_cache(self) -> Setup {
        self.unset("commands", "cache_dir")
    }

    /// Set `section.key` to a raw TOML value (strings need their quotes).
    pub fn set(mut self, section: &str, key: &str, raw: &str) -> Setup {
        self.sections
            .entry(section.into())
            .or_default()
            .insert(key.into(), raw.into());
        self
    }

    /// Configure a test plugin from `target/plugins` with `[plugins.NAME]` keys.
    pub fn plugin(self, name: &str, keys: &[(&str, &str)]) -> Setup {
        self.plugin_file(name, &plugin_wasm(name), keys)
    }

    /// Configure the plugin file at `path` as `[plugins.NAME]`, with more keys.
    pub fn plugin_file(self, name: &str, path: &str, keys: &[(&str, &str)]) -> Setup {
        let section = format!("plugins.{name}");
        let mut setup = self.set(&section, "path", &format!("{path:?}"));
        for (k, v) in keys {
            setup = setup.set(&section, k, v);
        }
        setup
    }

    pub fn unset(mut self, section: &str, key: &str) -> Setup {
        if let Some(s) = self.sections.get_mut(section) {
            s.remove(key);
        }
        self
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (section, keys) in &self.sections {
            out.push_str(&format!("[{section}]\n"));
            for (k, v) in keys {
                out.push_str(&format!("{k} = {v}\n"));
            }
        }
        out
    }

    pub async fn start(self) -> Server {
        self.start_with(Launch::default()).await
    }

    /// Like [`Setup::start`], launched as `launch` says.
    pub async fn start_with(self, launch: Launch) -> Server {
        let pg = match self.backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(Arc::new(PgDatabase::create().await)),
        };
        self.start_on(pg, &launch).await
    }

    /// Start `n` nodes on one PostgreSQL database, fanning out over Redis at `redis_url`
    /// in a namespace of their own (tests run in parallel on one Redis).
    pub async fn start_cluster(self, n: usize, redis_url: &str) -> Vec<Server> {
        let pg = Arc::new(PgDatabase::create().await);
        let namespace = format!("\"test-{}\"", uuid::Uuid::new_v4().simple());
        let setup = self
            .set("cluster", "redis_url", &format!("{redis_url:?}"))
            .set("cluster", "namespace", &namespace);
        let mut nodes = Vec::new();
        for _ in 0..n {
            nodes.push(
                setup
                    .clone()
                    .start_on(Some(pg.clone()), &Launch::default())
                    .await,
            );
        }
        nodes
    }

    /// Start on `pg`, a database made with [`PgDatabase::create`] (and perhaps filled by
    /// the test first).
    pub async fn start_on_postgres(self, pg: Arc<PgDatabase>) -> Server {
        self.start_on(Some(pg), &Launch::default()).await
    }

    async fn start_on(self, pg: Option<Arc<PgDatabase>>, launch: &Launch) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = match (&pg, &launch.sqlite_url) {
            (Some(pg), _) => pg.url.clone(),
            (None, Some(template)) => template.replace("{dir}", &dir.path().display().to_string()),
            (None, None) => format!("sqlite://{}/slashd.db?mode=rwc", dir.path().display()),
        };
        let setup = self.set("database", "url", &format!("{url:?}")).set(
            "server",
            "data_dir",
            &format!("{:?}", dir.path().join("data")),
        );
        let config_path = dir.path().join("slashd.toml");
        std::fs::write(&config_path, setup.render()).expect("write config");
        let mut server = Server {
            backend: setup.backend,
            base: String::new(),
            ws_url: String::new(),
            dir,
            config_path,
            child: None,
            logs: Arc::new(Mutex::new(Vec::new())),
            pg,
            http: reqwest::Client::new(),
        };
        server.spawn_with(launch).await;
        server
    }
}

pub struct Server {
    pub backend: Backend,
    pub base: String,
    pub ws_url: String,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
    pg: Option<Arc<PgDatabase>>,
    pub http: reqwest::Client,
}

pub struct User {
    pub id: String,
    pub name: String,
    pub token: String,
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Setup::new(backend).start().await
    }

    /// Start (or restart) the process and wait for its "listening" line.
    pub async fn spawn(&mut self) {
        self.spawn_with(&Launch::default()).await
    }

    /// Start (or restart) the process as `launch` says and wait for its "listening" line.
    pub async fn spawn_with(&mut self, launch: &Launch) {
        let mut command = match launch.nofile {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let human = launch.human_logs;
        command
            .args([
                "--log-format",
                if human { "human" } else { "json" },
                "--config",
            ])
            .arg(&self.config_path)
            .arg("serve")
            .current_dir(self.dir.path())
            .env("SLASHD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SLASHD_LOG", "info,slashd=debug,tower_http=warn,sqlx=warn");
        if human {
            // Plain lines, without colour codes (the JSON format has none).
            command.env("NO_COLOR", "1");
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn slashd");
        let stderr = child.stderr.take().expect("stderr");
        let logs = self.logs.clone();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["fields"]["message"] == "listening" {
                        let _ =
                            tx.send(v["fields"]["addr"].as_str().unwrap_or_default().to_string());
                    }
                } else if human {
                    let plain = strip_ansi(&line);
                    if plain.contains(" listening") {
                        if let Some(addr) = plain
                            .split_whitespace()
                            .find_map(|w| w.strip_prefix("addr="))
                        {
                            let _ = tx.send(addr.to_string());
                        }
                    }
                }
                logs.lock().unwrap().push(line);
            }
        });
        self.child = Some(child);
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
            .await
            .unwrap();
        let addr = match addr {
            Ok(addr) => addr,
            Err(_) => panic!("slashd did not start; its log:\n{}", self.logs_text()),
        };
        self.base = format!("http://{addr}");
        self.ws_url = format!("ws://{addr}/ws");
        if !launch.listening_only {
            self.wait_ready().await;
        }
    }

    /// Wait until `/readyz` answers 200: on a cold compile cache (every test has its own
    /// data directory) the plugins compile after the server listens. Generous: tens of
    /// seconds for a Python or JavaScript component, more while the suite builds beside it.
    pub async fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        let mut last = String::new();
        while std::time::Instant::now() < deadline {
            match self.http.get(format!("{}/readyz", self.base)).send().await {
                Ok(r) if r.status() == StatusCode::OK => return,
                Ok(r) => last = format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "slashd listened but was not ready within 180 s (last /readyz: {last}); its log:\n{}",
            self.logs_text()
        );
    }

    /// The database URL this server uses.
    pub fn database_url(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url.clone(),
            None => format!("sqlite://{}/slashd.db", self.dir.path().display()),
        }
    }

    /// Run one SQL query returning a single integer (for checking what was stored).
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.database_url())
            .await
            .expect("connect to the test database");
        let row = sqlx::query(sql).fetch_one(&mut conn).await.expect(sql);
        sqlx::Row::try_get::<i64, _>(&row, 0).expect("integer result")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Everything the server logged so far (JSON lines).
    pub fn logs_text(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    pub fn log_lines(&self) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Wait (up to 5 s) for a log line matching `pred`; the log is read by another thread.
    pub async fn wait_for_log(&self, pred: impl Fn(&Value) -> bool) -> bool {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            if self.log_lines().iter().any(&pred) {
                return true;
            }
            if std::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Rewrite the config file the server was started with.
    pub fn edit_config(&self, edit: impl FnOnce(String) -> String) {
        let text = std::fs::read_to_string(&self.config_path).expect("read config");
        std::fs::write(&self.config_path, edit(text)).expect("write config");
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGTERM, then wait for the process to exit; returns whether it exited in time.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let child = self.child.as_mut()?;
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .ok()?;
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// SIGKILL: the crash case.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Resident memory of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib_of(self.pid())
    }

    /// Run the CLI against this server's config (and database).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .current_dir(self.dir.path())
            .env("SLASHD_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn slashd cli");
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(input) = stdin {
            // The CLI may exit before reading (a bad argument): that is its answer, not ours.
            let _ = pipe.write_all(input.as_bytes());
        }
        drop(pipe);
        child.wait_with_output().expect("cli output")
    }

    /// Create a user with the CLI and log in over REST.
    pub async fn user(&self, name: &str, role: &str) -> User {
        let out = self.cli(
            &["user", "add", name, "--role", role, "--password-stdin"],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(
            out.status.success(),
            "user add failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.login(name, PASSWORD).await
    }

    pub async fn admin(&self) -> User {
        self.login("admin", ADMIN_PASSWORD).await
    }

    pub async fn login(&self, name: &str, password: &str) -> User {
        let (status, body) = self
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"username": name, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {name}: {body}");
        User {
            id: body["user"]["id"].as_str().unwrap().to_string(),
            name: name.to_string(),
            token: body["token"].as_str().unwrap().to_string(),
        }
    }

    /// A JSON request; answers the status and the JSON body (`null` when empty or not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, _, body) = self.call_via(&self.http, method, path, token, body).await;
        (status, body)
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// A request with a raw body and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, Value) {
        let resp = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Create a session owned by `owner`; returns its id.
    pub async fn session(&self, owner: &User, title: &str) -> String {
        let (status, body) = self
            .post("/chat/sessions", &owner.token, json!({"title": title}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_string()
    }

    pub async fn add_member(&self, owner: &User, session: &str, member: &User) {
        let (status, body) = self
            .post(
                &format!("/chat/sessions/{session}/members"),
                &owner.token,
                json!({"user_id": member.id}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// A token signed with the server's secret, with arbitrary claims.
    pub fn forge(claims: &Value) -> String {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    }

    /// A WebSocket authenticated by header; the `ready` frame is consumed.
    pub async fn ws(&self, user: &User) -> Ws {
        let mut ws = self.ws_with_header(Some(&user.token)).await;
        let ready = ws.recv().await;
        assert_eq!(ready["type"], "ready", "{ready}");
        ws
    }

    /// A WebSocket with an optional `Authorization` header and nothing read yet.
    pub async fn ws_with_header(&self, token: Option<&str>) -> Ws {
        let mut req = self.ws_url.as_str().into_client_request().unwrap();
        if let Some(token) = token {
            req.headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let (stream, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("ws connect");
        Ws { stream }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let logs = self.logs_text();
            let tail: Vec<&str> = logs.lines().rev().take(60).collect();
            eprintln!("--- last server log lines ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A fresh PostgreSQL database per server, dropped afterwards.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create() -> PgDatabase {
        let admin_url = std::env::var("SLASHD_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("slashd_e2e_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("PostgreSQL at {admin_url} is required for these tests: {e}")
            });
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create database");
        let (base, _) = admin_url.rsplit_once('/').expect("database url has a path");
        let url = format!("{base}/{name}");
        PgDatabase {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = conn
                        .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                        .await;
                }
            });
        })
        .join();
    }
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    Code(u16),
    /// The TCP connection ended without a close frame.
    Abrupt,
}

/// The frame schemas of `/asyncapi.json` (`slashd::protocol::asyncapi`), compiled once:
/// every frame a [`Ws`] sends with [`Ws::send`] and every frame it receives must match them,
/// so the whole suite checks the document against the server.
struct Contract {
    client: jsonschema::Validator,
    server: jsonschema::Validator,
}

fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let doc = slashd::protocol::asyncapi::document();
        let side = |union: &str| {
            let mut root = doc.clone();
            root["$ref"] = json!(format!("#/components/schemas/{union}"));
            jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("/asyncapi.json's {union} does not compile: {e}"))
        };
        Contract {
            client: side("ClientFrame"),
            server: side("ServerFrame"),
        }
    })
}

/// How `frame` breaks its side's schemas in `/asyncapi.json` (empty: it matches).
pub fn frame_errors(from_client: bool, frame: &Value) -> Vec<String> {
    let validator = if from_client {
        &contract().client
    } else {
        &contract().server
    };
    validator
        .iter_errors(frame)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .take(5)
        .collect()
}

/// Panic unless `frame` matches its side's schemas in `/asyncapi.json`.
#[track_caller]
pub fn check_frame(from_client: bool, frame: &Value) {
    let errors = frame_errors(from_client, frame);
    assert!(
        errors.is_empty(),
        "a {} frame does not match /asyncapi.json: {frame}\n{}",
        if from_client { "client" } else { "server" },
        errors.join("\n")
    );
}

impl Ws {
    /// Send a frame the protocol allows (checked against `/asyncapi.json`; a deliberately
    /// bad one goes through [`Ws::send_unchecked`]).
    #[track_caller]
    pub fn send(&mut self, frame: Value) -> impl std::future::Future<Output = ()> + '_ {
        check_frame(true, &frame);
        self.send_unchecked(frame)
    }

    /// Send any JSON, for the tests of what the server refuses.
    pub async fn send_unchecked(&mut self, frame: Value) {
        self.stream
            .send(Message::text(frame.to_string()))
            .await
            .expect("ws send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("ws send");
    }

    /// The next text frame as JSON; panics after [`WAIT`] or if the connection closes.
    pub async fn recv(&mut self) -> Value {
        match tokio::time::timeout(WAIT, self.next_json()).await {
            Ok(Some(v)) => v,
            Ok(None) => panic!("connection closed while waiting for a frame"),
            Err(_) => panic!("no frame within {WAIT:?}"),
        }
    }

    async fn next_json(&mut self) -> Option<Value> {
        loop {
            match self.stream.next().await? {
                Ok(Message::Text(t)) => {
                    let frame: Value = serde_json::from_str(&t).expect("server sent JSON");
                    check_frame(false, &frame);
                    return Some(frame);
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Skip frames until one of type `ty` arrives.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["type"] == ty {
                return v;
            }
        }
    }

    /// Run a command line in a joined session. Returns the command's reply (a `message`
    /// whose `metadata.reply_to` is the invocation) or the `error` that answered it; other
    /// traffic in the session is skipped.
    pub async fn command(&mut self, session: &str, line: &str) -> Value {
        self.send(json!({"type": "message", "session_id": session, "content": line, "id": line}))
            .await;
        let ack = loop {
            let frame = self.recv().await;
            if frame["id"] == line && (frame["type"] == "ack" || frame["type"] == "error") {
                break frame;
            }
        };
        if ack["type"] == "error" {
            return ack;
        }
        loop {
            let frame = self.recv().await;
            let answers_error = frame["type"] == "error" && frame["id"] == line;
            let answers_reply = frame["type"] == "message"
                && frame["message"]["metadata"]["reply_to"] == ack["message_id"];
            if answers_error || answers_reply {
                return frame;
            }
        }
    }

    /// Send a frame and return the next frame (its answer, in a quiet session).
    pub async fn request(&mut self, frame: Value) -> Value {
        self.send(frame).await;
        self.recv().await
    }

    pub async fn join(&mut self, session: &str) -> Value {
        let joined = self
            .request(json!({"type": "join", "session_id": session}))
            .await;
        assert_eq!(joined["type"], "joined", "{joined}");
        joined
    }

    /// Assert that no text frame arrives for `dur`.
    pub async fn expect_silence(&mut self, dur: Duration) {
        if let Ok(Some(v)) = tokio::time::timeout(dur, self.next_json()).await {
            panic!("expected silence, got {v}");
        }
    }

    /// Read (and discard) frames until the connection closes; returns how it closed.
    pub async fn closed(&mut self) -> Closed {
        let read = async {
            loop {
                match self.stream.next().await {
                    Some(Ok(Message::Close(frame))) => {
                        return Closed::Code(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return Closed::Abrupt,
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(30), read)
            .await
            .expect("connection did not close")
    }

    /// Every text frame until the connection ends (or `within` passes: `None`), and how it
    /// ended.
    pub async fn frames_until_close(&mut self, within: Duration) -> Option<(Vec<Value>, Closed)> {
        frames_until_close_of(&mut self.stream, within).await
    }
}

/// [`Ws::frames_until_close`] for any stream of messages (the read half of a split
/// connection, say).
pub async fn frames_until_close_of(
    stream: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
    within: Duration,
) -> Option<(Vec<Value>, Closed)> {
    let read = async {
        let mut frames = Vec::new();
        loop {
            match stream.next().await {
                Some(Ok(Message::Text(t))) => {
                    frames.push(serde_json::from_str(&t).expect("server sent JSON"))
                }
                Some(Ok(Message::Close(frame))) => {
                    return (
                        frames,
                        Closed::Code(frame.map(|f| u16::from(f.code)).unwrap_or(1005)),
                    );
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return (frames, Closed::Abrupt),
            }
        }
    };
    tokio::time::timeout(within, read).await.ok()
}

pub fn close_code(code: u16) -> Closed {
    let _ = CloseCode::from(code);
    Closed::Code(code)
}

// ---------------------------------------------------------------------------------------
// Launch options and helpers for the hardening tests (tests/e2e/hardening).
// ---------------------------------------------------------------------------------------

/// How to launch the binary, for tests that need more than [`Setup::start`] gives.
#[derive(Clone, Default)]
pub struct Launch {
    /// Run the server under `prlimit --nofile=N:N` (util-linux): a soft and hard open-file
    /// limit of N.
    pub nofile: Option<u64>,
    /// `--log-format human` (plain text lines) instead of json. The raw lines are in
    /// [`Server::logs_text`] / [`Server::raw_log_lines`].
    pub human_logs: bool,
    /// A SQLite database URL used instead of the harness's `sqlite://…?mode=rwc`; `{dir}` is
    /// replaced by the server's temporary directory.
    pub sqlite_url: Option<String>,
    /// Return once the server listens, without waiting for `/readyz` (plugins may still be
    /// compiling).
    pub listening_only: bool,
}

/// Remove ANSI escape sequences (colours) from a log line.
pub fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

impl Server {
    /// Every stderr line so far, as written (JSON or text).
    pub fn raw_log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The address the server listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.base
            .strip_prefix("http://")
            .expect("http base")
            .parse()
            .expect("socket address")
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Run one SQL statement (no result) against the server's database.
    pub async fn execute(&self, sql: &str) {
        sqlx::any::install_default_drivers();
        let mut conn = sqlx::AnyConnection::connect(&self.database_url())
            .await
            .expect("connect to the test database");
        sqlx::query(sql).execute(&mut conn).await.expect(sql);
    }

    /// The raw TOML value of `[section] key` in the config file the server was started with
    /// (as written by [`Setup::set`]), if present.
    pub fn config_value(&self, section: &str, key: &str) -> Option<String> {
        let text = std::fs::read_to_string(&self.config_path).expect("read config");
        let mut current = String::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                current = name.to_string();
            } else if current == section {
                if let Some((k, v)) = line.split_once('=') {
                    if k.trim() == key {
                        return Some(v.trim().to_string());
                    }
                }
            }
        }
        None
    }

    /// `[cluster] namespace` of a node started by [`Setup::start_cluster`]; the nodes'
    /// Redis channel is `{namespace}:events`.
    pub fn cluster_namespace(&self) -> String {
        let raw = self
            .config_value("cluster", "namespace")
            .expect("a cluster node has a namespace");
        raw.trim_matches('"').to_string()
    }

    /// An HTTP client whose connections come from `ip` (e.g. 127.0.0.2: any 127/8 address
    /// is local on Linux).
    pub fn client_from(ip: std::net::IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(ip)
            .build()
            .expect("reqwest client")
    }

    /// Like [`Server::call`], through `client` (see [`Server::client_from`]); also answers
    /// the response headers.
    pub async fn call_via(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut req = client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap_or_default();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::Null),
        )
    }
}

impl Ws {
    /// The next text frame as JSON within `dur`; `None` on timeout or close.
    pub async fn recv_within(&mut self, dur: Duration) -> Option<Value> {
        tokio::time::timeout(dur, self.next_json())
            .await
            .ok()
            .flatten()
    }
}
