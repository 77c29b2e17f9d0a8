//! Flags several scenarios share, flattened into their `Args`, and the value checks that
//! turn a bad number into a usage error instead of a panic deep inside a run.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::server::ServerOpts;

/// The slashd binary under test. Apart from `ServerArgs` for the scenarios whose
/// --database-url means something else: cluster's is required, durability's is where a
/// fresh database is created.
#[derive(clap::Args, Clone)]
pub struct ServerBin {
    /// The slashd binary to start.
    #[arg(long, default_value = "target/release/slashd")]
    pub server_bin: PathBuf,
}

impl ServerBin {
    /// Options for a server on `database_url` (None: a fresh SQLite file in its temp dir),
    /// with the bench's lifted limits.
    pub fn opts(&self, database_url: Option<String>) -> ServerOpts {
        ServerOpts {
            bin: self.server_bin.clone(),
            database_url,
            cluster: None,
            extra_config: String::new(),
            commands_rate: None,
            frame_limits: false,
            completion_rate: false,
        }
    }
}

/// The slashd under test and the database it runs on.
#[derive(clap::Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub bin: ServerBin,
    /// Database for the server: a fresh SQLite file in a temp dir by default, or a
    /// postgres://… URL (used as is; users get unique names).
    #[arg(long)]
    pub database_url: Option<String>,
}

impl ServerArgs {
    pub fn opts(&self) -> ServerOpts {
        self.bin.opts(self.database_url.clone())
    }
}

/// How the many-connection scenarios (fan-out, idle) open their connections.
#[derive(clap::Args)]
pub struct Connections {
    /// Viewer users the connections are spread over.
    #[arg(long, default_value_t = 8)]
    pub users: usize,
    /// Connections opened in parallel.
    #[arg(long, default_value_t = 200)]
    pub connect_batch: usize,
}

/// The test plugins the scenarios that load plugins take from the build.
#[derive(clap::Args)]
pub struct PluginDir {
    /// Where the test plugins (tally, hostile) were built.
    #[arg(long, default_value = "target/plugins/wasm32-wasip2/release")]
    pub plugin_dir: PathBuf,
}

impl PluginDir {
    /// A `[plugins.NAME]` table for the test plugin `NAME.wasm` in --plugin-dir.
    pub fn table(&self, name: &str, grants: &str) -> anyhow::Result<String> {
        let path = self.plugin_dir.join(format!("{name}.wasm"));
        let path = std::fs::canonicalize(&path).with_context(|| {
            format!(
                "plugin {} not found (`cargo build -p slashd` builds the test plugins; or pass \
                 --plugin-dir)",
                path.display()
            )
        })?;
        Ok(format!(
            "\n[plugins.{name}]\npath = {:?}\ngrants = {grants}\n",
            path.display().to_string()
        ))
    }
}

/// A number of seconds: `Duration::from_secs_f64` panics on a negative, NaN or huge one.
pub fn seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(v)
        .map(|_| v)
        .map_err(|_| format!("{s} is not a number of seconds (0 or more)"))
}

/// A rate the bench divides by or paces with: finite and above zero.
pub fn positive(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} is not a positive number"))
    }
}

/// A count that must be at least one (a fan-out to nobody has no rate).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        Ok(_) => Err("must be at least 1".into()),
        Err(e) => Err(format!("{e}")),
    }
}

/// A PostgreSQL URL, for the scenarios that cannot run on SQLite or create a database.
pub fn postgres_url(s: &str) -> Result<String, String> {
    if s.starts_with("postgres") {
        Ok(s.to_string())
    } else {
        Err("must be a postgres://… URL".into())
    }
}
