//! The set of plugins and the command table built from them. A registry is immutable: a
//! reload builds a new one and swaps it in, so calls in flight finish on the version they
//! started with.
//!
//! Authorization has exactly one rule, [`may_run`]; `/help`, `GET /commands` and dispatch
//! all go through it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use serde::Serialize;

use super::grants::Grants;
use super::manifest::{Capability, CommandSpec, Manifest};
use super::Runner;
use crate::auth::Role;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Source {
    #[serde(rename = "built-in")]
    BuiltIn,
    Path {
        #[schema(value_type = String)]
        path: PathBuf,
    },
    Native {
        #[schema(value_type = String)]
        path: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "lowercase")]
pub enum PluginState {
    Enabled,
    Disabled,
    /// Not enabled, and why.
    Refused(String),
    /// Compiling in the background (a cold compile cache at start): not routed yet. Its
    /// manifest, when the cache kept one from an earlier start, names its commands.
    Loading,
}

/// One configured plugin as loaded.
#[derive(Clone)]
pub struct PluginEntry {
    pub name: String,
    pub source: Source,
    pub state: PluginState,
    pub manifest: Option<Manifest>,
    pub grants: Grants,
    /// Raise every command of the plugin to at least this role.
    pub min_role: Option<Role>,
    pub runner: Option<Runner>,
}

/// Where a command name leads.
#[derive(Clone)]
pub struct Route {
    pub plugin: Arc<PluginEntry>,
    pub command: CommandSpec,
    /// The manifest's role, raised by config.
    pub min_role: Role,
}

/// A command as shown to users.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CommandInfo {
    pub name: String,
    pub aliases: Vec<String>,
    pub summary: String,
    pub usage: String,
    pub min_role: Role,
    pub plugin: String,
    /// Typed arguments (`name`, `kind`, `choices` for a choice, `summary`, `required`,
    /// `default`, `rest`, `completes`, `min`, `max`); absent for an untyped command.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub args: Option<Vec<slashd_plugin_api::ArgSpec>>,
    /// The prompt the invoker must confirm before the command runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirm: Option<String>,
}

/// The one authorization rule for commands.
pub fn may_run(role: Role, route: &Route) -> bool {
    role.allows(route.min_role)
}

#[derive(Default)]
pub struct Registry {
    plugins: BTreeMap<String, Arc<PluginEntry>>,
    routes: HashMap<String, Route>,
}

impl Registry {
    /// Build the command table from loaded plugins. A name (or alias) claimed by two
    /// enabled plugins goes to neither.
    pub fn new(entries: Vec<PluginEntry>) -> Registry {
        let plugins: BTreeMap<String, Arc<PluginEntry>> = entries
            .into_iter()
            .map(|e| (e.name.clone(), Arc::new(e)))
            .collect();
        let mut claims: HashMap<String, Vec<Route>> = HashMap::new();
        for plugin in plugins.values().filter(|p| p.state == PluginState::Enabled) {
            let Some(manifest) = &plugin.manifest else {
                continue;
            };
            for command in &manifest.commands {
                let min_role = command
                    .min_role
                    .max(plugin.min_role.unwrap_or(Role::Viewer));
                let route = Route {
                    plugin: plugin.clone(),
                    command: command.clone(),
                    min_role,
                };
                for name in std::iter::once(&command.name).chain(&command.aliases) {
                    claims.entry(name.clone()).or_default().push(route.clone());
                }
            }
        }
        let mut routes = HashMap::new();
        for (name, mut claimants) in claims {
            if claimants.len() == 1 {
                routes.insert(name, claimants.remove(0));
            } else {
                let who: Vec<&str> = claimants.iter().map(|r| r.plugin.name.as_str()).collect();
                tracing::warn!(command = %format!("/{name}"), plugins = ?who, "command claimed by several plugins; none of them gets it");
            }
        }
        Registry { plugins, routes }
    }

    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes.get(name)
    }

    pub fn plugins(&self) -> impl Iterator<Item = &Arc<PluginEntry>> {
        self.plugins.values()
    }

    pub fn plugin(&self, name: &str) -> Option<&Arc<PluginEntry>> {
        self.plugins.get(name)
    }

    /// Every command (by canonical name) a role may run, sorted by name.
    pub fn visible(&self, role: Role) -> Vec<CommandInfo> {
        let mut out: Vec<CommandInfo> = self
            .routes
            .iter()
            .filter(|(name, route)| **name == route.command.name && may_run(role, route))
            .map(|(_, route)| CommandInfo {
                name: route.command.name.clone(),
                // Only aliases this plugin actually holds.
                aliases: route
                    .command
                    .aliases
                    .iter()
                    .filter(|a| {
                        self.routes
                            .get(*a)
                            .is_some_and(|r| Arc::ptr_eq(&r.plugin, &route.plugin))
                    })
                    .cloned()
                    .collect(),
                summary: route.command.summary.clone(),
                usage: route.command.usage.clone(),
                min_role: route.min_role,
                plugin: route.plugin.name.clone(),
                args: route.command.args.clone(),
                confirm: route.command.confirm.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Plugins still compiling in the background, by name.
    pub fn loading(&self) -> Vec<&str> {
        self.plugins
            .values()
            .filter(|p| p.state == PluginState::Loading)
            .map(|p| p.name.as_str())
            .collect()
    }

    /// The loading plugin whose kept manifest claims `command` (by name or alias). Only
    /// to say "not ready" rather than "unknown": the role is checked once it is loaded.
    pub fn loading_claim(&self, command: &str) -> Option<&str> {
        self.plugins
            .values()
            .filter(|p| p.state == PluginState::Loading)
            .find(|p| {
                p.manifest
                    .iter()
                    .flat_map(|m| &m.commands)
                    .any(|c| c.name == command || c.aliases.iter().any(|a| a == command))
            })
            .map(|p| p.name.as_str())
    }

    /// Names a role may use (canonical and aliases), for "did you mean".
    pub fn visible_names(&self, role: Role) -> Vec<&str> {
        self.routes
            .iter()
            .filter(|(_, route)| may_run(role, route))
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// Calls and failures per plugin, kept across reloads.
#[derive(Default)]
pub struct Counters {
    by_plugin: DashMap<String, Arc<PluginCounters>>,
}

/// How many recent call durations are kept per plugin for percentiles.
const RECENT_CALLS: usize = 1024;

#[derive(Default)]
pub struct PluginCounters {
    pub calls: AtomicU64,
    pub failures: AtomicU64,
    /// Recent durations in microseconds, a ring of `RECENT_CALLS`.
    recent: std::sync::Mutex<std::collections::VecDeque<u64>>,
}

impl PluginCounters {
    pub fn record(&self, duration: std::time::Duration) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() == RECENT_CALLS {
            recent.pop_front();
        }
        recent.push_back(duration.as_micros() as u64);
    }

    /// p50 and p99 of recent calls, in milliseconds.
    pub fn percentiles_ms(&self) -> Option<(f64, f64)> {
        let mut sorted: Vec<u64> = self
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .copied()
            .collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
        Some((at(0.50), at(0.99)))
    }
}

impl Counters {
    pub fn of(&self, plugin: &str) -> Arc<PluginCounters> {
        self.by_plugin
            .entry(plugin.to_string())
            .or_default()
            .clone()
    }

    /// (plugin, calls, failures), sorted by plugin.
    pub fn snapshot(&self) -> Vec<(String, u64, u64)> {
        let mut out: Vec<_> = self
            .by_plugin
            .iter()
            .map(|e| {
                (
                    e.key().clone(),
                    e.calls.load(Ordering::Relaxed),
                    e.failures.load(Ordering::Relaxed),
                )
            })
            .collect();
        out.sort();
        out
    }
}

/// The capabilities a plugin asks for or imports that config does not grant.
pub fn missing_grants(
    asked: &[Capability],
    imported: &[Capability],
    grants: &Grants,
) -> Vec<Capability> {
    let mut missing: Vec<Capability> = asked
        .iter()
        .chain(imported)
        .copied()
        .filter(|c| !grants.has(*c))
        .collect();
    missing.sort();
    missing.dedup();
    missing
}
