//! `slashd plugin …`: what a plugin author and an admin do with plugin files — write one
//! from a template (`new`), check it as the server would (`check`), run one invocation in
//! the real runtime (`run`), and list the configured plugins as the server loads them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Subcommand;

use crate::auth::Role;
use crate::config::Config;
use crate::plugins::manifest::Capability;
use crate::plugins::testkit::{PluginTester, RunError};
use crate::plugins::PluginReply;

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Write a new plugin project from a template: a `/NAME` command with a typed argument
    /// and a button, and a README with the build, check and run steps.
    New {
        /// The plugin's (and its command's) name: lowercase letters, digits and `-`.
        name: String,
        #[arg(long, value_enum, default_value_t = super::new::Lang::Rust)]
        lang: super::new::Lang,
        /// Where to write it (default: ./NAME). Must not exist, or be empty.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The slashd checkout whose SDKs the project depends on (default: the one this
        /// binary was built from, when it is still there).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// List the configured plugins (built-ins and [plugins.*] tables) as the server would
    /// load them: enabled, disabled, or refused and why.
    List,
    /// Validate a plugin component file as the server would, and print its manifest, the
    /// grants it needs and what it imports.
    Check { path: PathBuf },
    /// Run one invocation of a plugin in the server's runtime — its sandbox, limits, grants
    /// and typed arguments — as a fake caller in a fake session, and print the reply.
    Run(RunArgs),
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The plugin: a `.wasm` component (or a native library with --native).
    file: PathBuf,
    /// The command line, e.g. "/hello world".
    line: String,
    /// The caller's role.
    #[arg(long = "as", value_name = "ROLE", value_parser = super::parse_role, default_value = "viewer")]
    role: Role,
    /// The caller's user name.
    #[arg(long, default_value = "tester")]
    user: String,
    /// Grant a capability (repeat, or separate with commas). Nothing is granted unless
    /// given, as on the server.
    #[arg(long = "grant", value_name = "CAP", value_delimiter = ',')]
    grants: Vec<String>,
    /// A setting for the `config` capability: the value as JSON, or else as text.
    #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = key_value)]
    settings: Vec<(String, String)>,
    /// A secret for the `secrets` capability; `NAME=@FILE` reads it from a file (keeps it
    /// out of the process list and your shell history).
    #[arg(long = "secret", value_name = "NAME=VALUE", value_parser = key_value)]
    secrets: Vec<(String, String)>,
    /// Allow HTTP to `scheme://host[:port][/path-prefix]` (repeat).
    #[arg(long = "http-allow", value_name = "URL")]
    http_allow: Vec<String>,
    /// Keep the plugin's kv in DIR/kv.json between runs (default: empty, in memory).
    #[arg(long, value_name = "DIR")]
    kv_dir: Option<PathBuf>,
    /// The call's time limit.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    timeout: Duration,
    /// Run the line this many times (a fresh instance each time, as on the server) and
    /// report the median call time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeat: u32,
    /// Load a trusted native library (`export_native_plugin!`) instead of a component.
    #[arg(long)]
    native: bool,
    /// Print one JSON object (the reply or the error, and timings) instead of text.
    #[arg(long)]
    json: bool,
}

fn key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {text:?}")),
    }
}

pub async fn run(cmd: PluginCommand, config: &Config) -> anyhow::Result<()> {
    match cmd {
        PluginCommand::New {
            name,
            lang,
            dir,
            sdk,
        } => super::new::write(&name, lang, dir, sdk),
        PluginCommand::List => plugin_list(config).await,
        PluginCommand::Check { path } => plugin_check(config, &path).await,
        PluginCommand::Run(args) => plugin_run(args).await,
    }
}

/// Where `plugin run` and `plugin check` keep compiled components: a second run of the
/// same file skips the compile (seconds for a Python or JavaScript component).
fn run_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("slashd").join("plugin-cache"))
}

async fn plugin_run(args: RunArgs) -> anyhow::Result<()> {
    let mut builder = PluginTester::builder(&args.file).timeout(args.timeout);
    let granted = args
        .grants
        .iter()
        .map(|name| {
            Capability::parse(name.trim()).ok_or_else(|| {
                anyhow::anyhow!("unknown capability {name:?} (--grant takes commands, stats, sessions, kv, config, http, secrets, progress or jobs)")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    builder = builder.grants(&granted);
    for (key, value) in &args.settings {
        let value = serde_json::from_str(value)
            .unwrap_or_else(|_| serde_json::Value::String(value.clone()));
        builder = builder.setting(key, value);
    }
    for (name, value) in &args.secrets {
        let value = match value.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path)
                .with_context(|| format!("secret {name:?}: cannot read {path}"))?
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            None => value.clone(),
        };
        builder = builder.secret(name, &value);
    }
    for entry in &args.http_allow {
        builder = builder.http_allow(entry);
    }
    if let Some(dir) = &args.kv_dir {
        builder = builder.kv_dir(dir);
    }
    if let Some(dir) = run_cache_dir() {
        builder = builder.cache_dir(dir);
    }
    if args.native {
        builder = builder.native();
    }
    let started = Instant::now();
    let mut tester = builder.build().await.map_err(|e| {
        let hint = if format!("{e:#}").contains("not granted") {
            " (pass --grant CAP for each; the server needs the same in [plugins.NAME] grants)"
        } else {
            ""
        };
        anyhow::anyhow!("{}: {e:#}{hint}", args.file.display())
    })?;
    let load = started.elapsed();
    tester.as_user(&args.user, args.role);

    let mut times = Vec::with_capacity(args.repeat as usize);
    let mut outcome = None;
    for _ in 0..args.repeat {
        let started = Instant::now();
        let result = tester.run_line(&args.line).await;
        times.push(started.elapsed());
        outcome = Some(result);
    }
    let Some(outcome) = outcome else {
        bail!("nothing ran");
    };
    let timings = Timings::of(load, &times);
    if args.json {
        print_json(&outcome, &timings)?;
    } else {
        print_text(&outcome, &timings, args.repeat > 1);
    }
    match outcome {
        Ok(_) => Ok(()),
        // The error is printed already; only the exit status is left to say it.
        Err(_) => std::process::exit(1),
    }
}

/// How long loading and the calls took, in milliseconds.
#[derive(serde::Serialize)]
struct Timings {
    load_ms: f64,
    first_call_ms: f64,
    median_call_ms: f64,
    calls: usize,
    /// This process's resident memory after the calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    rss_kib: Option<u64>,
}

impl Timings {
    fn of(load: Duration, calls: &[Duration]) -> Timings {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut sorted = calls.to_vec();
        sorted.sort();
        Timings {
            load_ms: ms(load),
            first_call_ms: calls.first().copied().map_or(0.0, ms),
            median_call_ms: sorted.get(sorted.len() / 2).copied().map_or(0.0, ms),
            calls: calls.len(),
            rss_kib: rss_kib(),
        }
    }
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn print_json(outcome: &Result<PluginReply, RunError>, timings: &Timings) -> anyhow::Result<()> {
    let value = match outcome {
        Ok(reply) => serde_json::json!({ "reply": reply, "timings": timings }),
        Err(e) => serde_json::json!({
            "error": { "code": e.code(), "message": e.to_string() },
            "timings": timings,
        }),
    };
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

/// The reply as a terminal shows it: the body (control characters but newlines and tabs
/// escaped: a plugin's text cannot drive the terminal), then its data and buttons.
fn print_text(outcome: &Result<PluginReply, RunError>, timings: &Timings, repeated: bool) {
    let safe = |text: &str| {
        text.split('\n')
            .map(|line| {
                line.split('\t')
                    .map(|part| crate::log_text::escape(part).into_owned())
                    .collect::<Vec<_>>()
                    .join("\t")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    match outcome {
        Ok(reply) => {
            println!("{}", safe(&reply.body));
            if let Some(data) = &reply.data {
                println!("data: {}", safe(&data.to_string()));
            }
            for action in &reply.actions {
                let confirm = action
                    .confirm
                    .as_ref()
                    .map(|c| format!(", asks {:?}", c))
                    .unwrap_or_default();
                println!(
                    "button: [{}] action {:?}, {}+{}{}",
                    safe(&action.label),
                    action.id,
                    action.min_role,
                    if action.once { ", once" } else { "" },
                    confirm
                );
            }
            if reply.ephemeral {
                println!("(ephemeral: only the invoker would see it)");
            }
        }
        Err(e) => eprintln!("{}: {}", code_name(e), safe(&e.to_string())),
    }
    if repeated {
        eprintln!(
            "load {:.1} ms, first call {:.2} ms, median of {} calls {:.3} ms",
            timings.load_ms, timings.first_call_ms, timings.calls, timings.median_call_ms
        );
    }
}

fn code_name(e: &RunError) -> String {
    serde_json::to_value(e.code())
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "error".into())
}

/// Load every configured plugin exactly as `serve` would — files read, components
/// compiled (through the same cache), manifests checked, grants matched, names routed —
/// against fake services, and return what the server would report.
pub async fn load_as_the_server_would(
    config: &Config,
) -> anyhow::Result<Vec<crate::plugins::PluginView>> {
    let services = std::sync::Arc::new(crate::plugins::fake_services::FakeServices::default());
    let host =
        crate::plugins::PluginHost::start(config, services, crate::plugins::Startup::Wait).await?;
    Ok(host.describe())
}

/// `plugin list`: each plugin's state as the server would load it, with the reason for a
/// refusal.
async fn plugin_list(config: &Config) -> anyhow::Result<()> {
    use crate::plugins::Source;
    let plugins = load_as_the_server_would(config).await?;
    println!(
        "{:<20} {:<7} {:<9} {:<24} SOURCE",
        "NAME", "KIND", "STATE", "GRANTS"
    );
    for p in plugins {
        let (kind, source) = match &p.source {
            Source::BuiltIn => ("wasm", "built-in".to_string()),
            Source::Path { path } => ("wasm", path.display().to_string()),
            Source::Native { path } => ("native", path.display().to_string()),
        };
        let grants = if p.grants_given.is_empty() {
            "-".to_string()
        } else {
            p.grants_given.join(",")
        };
        println!(
            "{:<20} {kind:<7} {:<9} {grants:<24} {source}",
            p.name, p.state
        );
        if let Some(reason) = &p.reason {
            println!("{:<20} refused: {reason}", "");
        }
    }
    Ok(())
}

async fn plugin_check(config: &Config, path: &Path) -> anyhow::Result<()> {
    let wasm = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let report = crate::plugins::inspect::inspect(&wasm, &config.commands, run_cache_dir())
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let m = &report.manifest;
    println!(
        "ok: {} {} (plugin API {})",
        m.name,
        m.version,
        report.api_version.as_str()
    );
    println!("commands:");
    for c in &m.commands {
        let aliases = if c.aliases.is_empty() {
            String::new()
        } else {
            format!(" (aliases: {})", c.aliases.join(", "))
        };
        println!("  /{}{aliases}  [{}]  {}", c.name, c.min_role, c.summary);
        println!("      usage: {}", c.usage);
        if let Some(prompt) = &c.confirm {
            println!("      asks first: {prompt}");
        }
    }
    let asked: Vec<&str> = m.capabilities.iter().map(|c| c.as_str()).collect();
    println!(
        "capabilities asked: {}",
        if asked.is_empty() {
            "none".to_string()
        } else {
            asked.join(", ")
        }
    );
    let names = |caps: &[crate::plugins::manifest::Capability]| {
        caps.iter()
            .map(|c| c.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "grants needed: {}",
        if report.needs.is_empty() {
            "none".to_string()
        } else {
            names(&report.needs)
        }
    );
    if !report.unasked_imports.is_empty() {
        if report.api_version.imports_need_grants() {
            println!(
                "warning: imports {} without asking for it in its manifest; the server requires the grant all the same (plugin API 0.1.0)",
                names(&report.unasked_imports)
            );
        } else {
            println!(
                "note: also imports {}, which its manifest does not ask for: calling it fails with \"not granted\"",
                names(&report.unasked_imports)
            );
        }
    }
    println!("imports:");
    for import in &report.imports {
        println!("  {import}");
    }
    Ok(())
}
