//! The peers: what a user might run instead of slashd, started as child processes so the
//! same client measures them in the same run. Their programs live in `bench/peers/`; their
//! packages come from the npm registry on first use (`npm ci` against the committed lock
//! file into `bench/peers/node_modules`), never from a checked-in copy.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, bail, Context};

/// Where the peers' programs are: beside this crate.
fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("peers")
}

#[derive(Clone, Copy)]
pub enum PeerKind {
    /// Node.js with the `ws` package: a broadcast server of 60 lines.
    NodeWs,
}

impl PeerKind {
    fn script(self) -> &'static str {
        match self {
            PeerKind::NodeWs => "ws-broadcast.js",
        }
    }

    /// The package whose presence says the peer is installed.
    fn package(self) -> &'static str {
        match self {
            PeerKind::NodeWs => "ws",
        }
    }
}

/// A running peer; killed when dropped.
pub struct Peer {
    pub ws_url: String,
    child: Child,
}

impl Peer {
    pub fn start(kind: PeerKind) -> anyhow::Result<Peer> {
        let dir = peers_dir();
        install(&dir, kind.package())?;
        let mut child = Command::new("node")
            .arg(kind.script())
            .current_dir(&dir)
            // Its stdin is its lifeline: the peer exits when the bench does.
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start node (Node.js is needed for the peers)")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("the peer's stdout was not piped"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("listening ")
            .and_then(|p| p.parse::<u16>().ok())
            .ok_or_else(|| anyhow!("the peer did not say where it listens: {line:?}"))?;
        Ok(Peer {
            ws_url: format!("ws://127.0.0.1:{port}/"),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `npm ci` in `dir` unless `package` is already there.
fn install(dir: &Path, package: &str) -> anyhow::Result<()> {
    if dir.join("node_modules").join(package).is_dir() {
        return Ok(());
    }
    eprintln!(
        "bench: installing the peers' packages from the npm registry into {}",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--silent"])
        .current_dir(dir)
        .status()
        .context("run npm (Node.js and npm are needed for the peers)")?;
    if !status.success() {
        bail!("npm ci in {} failed: {status}", dir.display());
    }
    Ok(())
}
