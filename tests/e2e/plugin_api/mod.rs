//! Plugin API 0.2.0 across the wire: outbound HTTP behind the allow-list, secrets, long
//! commands (progress, cancel, deadlines, shutdown), 0.1.0 and 0.2.0 side by side, and
//! plugins from the stock Python and JavaScript toolchains with least-privilege grants.
//! The world the plugins reach is a real local HTTP server (`world.rs`).

mod deploy;
mod http;
mod jobs;
mod secrets;
mod versions;
pub mod world;

use serde_json::Value;

use crate::harness::{Backend, Server, Setup, Ws};
use world::World;

/// A secret value distinctive enough to grep for everywhere it must not be.
pub const SECRET: &str = "sk-live-9f8e7d6c5b4a3f2e1d0c";

/// A server with the `reach` test plugin (API 0.2.0: http, secrets, progress), its
/// allow-list naming the world's `/api/` by IP and by a loopback name, and its secret.
pub struct Reach {
    pub world: World,
    pub server: Server,
    /// The name from /etc/hosts that resolves to loopback (not `localhost`).
    pub loopback_name: String,
    _secrets: tempfile::TempDir,
}

impl Reach {
    pub async fn start(edit: impl FnOnce(Setup) -> Setup) -> Reach {
        let world = World::start().await;
        let secrets = tempfile::tempdir().unwrap();
        let secret_file = secrets.path().join("token");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let loopback_name = loopback_name();
        let allow = format!(
            r#"{{ allow = ["{}", "http://{loopback_name}:{}/api/"], max_requests = 3, max_response_bytes = 65536, timeout_ms = 1000 }}"#,
            world.url("/api/"),
            world.port
        );
        let secrets_table = format!(r#"{{ token = {{ file = {:?} }} }}"#, secret_file);
        // These tests run many commands in a row: lift the per-user command rate.
        let setup = Setup::new(Backend::Sqlite)
            .set("commands", "rate_per_sec", "1000.0")
            .set("commands", "rate_burst", "1000.0")
            .plugin(
                "reach",
                &[
                    ("grants", r#"["http", "secrets", "progress"]"#),
                    ("timeout_ms", "20000"),
                    ("http", &allow),
                    ("secrets", &secrets_table),
                ],
            );
        let server = edit(setup).start().await;
        Reach {
            world,
            server,
            loopback_name,
            _secrets: secrets,
        }
    }
}

/// A name other than `localhost` that /etc/hosts maps to a loopback address (Debian maps
/// the host's own name). The DNS rule is tried on it.
fn loopback_name() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    hosts
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let ip: std::net::IpAddr = parts.next()?.parse().ok()?;
            ip.is_loopback().then_some(parts.collect::<Vec<_>>())
        })
        .flatten()
        .find(|name| !name.starts_with("localhost") && !name.starts_with('#'))
        .map(str::to_string)
        .expect("/etc/hosts names no loopback host besides localhost; the DNS rule test needs one")
}

/// Send a command and return the invocation's message id (from its ack).
pub async fn start_command(ws: &mut Ws, session: &str, line: &str) -> String {
    let id = format!("start {line}");
    ws.send(
        serde_json::json!({"type": "message", "session_id": session, "content": line, "id": id}),
    )
    .await;
    loop {
        let frame = ws.recv().await;
        if frame["id"] == id.as_str() {
            assert_eq!(frame["type"], "ack", "{frame}");
            return frame["message_id"].as_str().unwrap().to_string();
        }
    }
}

/// Frames until one matches, returned with everything before it.
pub async fn frames_until(ws: &mut Ws, done: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let frame = ws.recv().await;
        let stop = done(&frame);
        seen.push(frame);
        if stop {
            return seen;
        }
    }
}

/// The `error` answering a command, or its reply `message`, for invocation `id`.
pub fn answers(frame: &Value, id: &str) -> bool {
    (frame["type"] == "error"
        && frame["id"]
            .as_str()
            .is_some_and(|i| i.starts_with("start ")))
        || (frame["type"] == "message" && frame["message"]["metadata"]["reply_to"] == id)
}
