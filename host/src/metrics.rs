//! Prometheus metrics (`GET /metrics`). This module alone owns the registry; the rest of the
//! server reports through the small typed methods of [`Metrics`] and never touches a
//! counter, a label or the registry directly.
//!
//! Counters only ever grow; gauges that mirror live state (connections, Redis) are read at
//! scrape time from their owners, so they can never drift.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s output (OpenMetrics text, which Prometheus
/// scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginOutcome {
    plugin: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabel {
    limit: &'static str,
}

/// Every limit [`Metrics::limit_hit`] counts, so each series exists from the start.
pub const LIMITS: &[&str] = &[
    "recovery_budget",
    "connects_per_user",
    "connections_per_user",
    "connections_total",
    "connections_per_ip",
    "login_per_ip",
    "login_per_user",
    "login_queue",
    "cluster_event_rejected",
    "completions_per_user",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabel {
    role: &'static str,
}

type LatencyFamily = Family<PluginLabel, Histogram, fn() -> Histogram>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpOutcome {
    plugin: String,
    /// A status code, `denied` or `error`.
    outcome: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~8 s: plugin calls are bounded by their deadline (2 s by default).
    Histogram::new(exponential_buckets(0.001, 2.0, 14))
}

/// What a client can see of what the server is doing. Cheap to share (`Arc`).
pub struct Metrics {
    registry: Registry,
    connections: Gauge,
    users_online: Gauge,
    session_joins: Counter,
    messages_stored: Family<RoleLabel, Counter>,
    command_invocations: Family<PluginOutcome, Counter>,
    command_refusals: Family<ReasonLabel, Counter>,
    command_latency: LatencyFamily,
    assistant_replies: Family<OutcomeLabel, Counter>,
    outbound_dropped: Counter,
    slow_reader_closes: Counter,
    limit_hits: Family<LimitLabel, Counter>,
    plugin_http_requests: Family<HttpOutcome, Counter>,
    plugin_http_bytes: Family<PluginLabel, Counter>,
    store_batch_size: Histogram,
    /// Present only in cluster mode.
    redis_connected: Option<Gauge>,
    cluster_events_received: Option<Counter>,
}

impl Metrics {
    /// A fresh registry. `cluster`: whether `[cluster]` is configured (only then is the
    /// Redis gauge exported).
    pub fn new(cluster: bool) -> Metrics {
        let mut registry = Registry::with_prefix("slashd");
        let connections = Gauge::default();
        registry.register(
            "connections",
            "Open WebSocket connections on this node",
            connections.clone(),
        );
        let users_online = Gauge::default();
        registry.register(
            "users_online",
            "Distinct users with an open WebSocket connection on this node",
            users_online.clone(),
        );
        let session_joins = Counter::default();
        registry.register(
            "session_joins",
            "Sessions joined over the WebSocket",
            session_joins.clone(),
        );
        let messages_stored = Family::<RoleLabel, Counter>::default();
        registry.register(
            "messages_stored",
            "Messages stored, by role (user, command, assistant, system)",
            messages_stored.clone(),
        );
        let command_invocations = Family::<PluginOutcome, Counter>::default();
        registry.register(
            "command_invocations",
            "Commands run, by plugin and outcome (ok, usage, failed, timeout)",
            command_invocations.clone(),
        );
        let command_refusals = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "command_refusals",
            "Commands refused before running, by reason (unknown, forbidden, usage, rate_limited)",
            command_refusals.clone(),
        );
        let command_latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register(
            "command_duration_seconds",
            "Time to run a command in its plugin, by plugin",
            command_latency.clone(),
        );
        let assistant_replies = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "assistant_replies",
            "Assistant replies, by outcome (ok, failed, discarded)",
            assistant_replies.clone(),
        );
        let outbound_dropped = Counter::default();
        registry.register(
            "outbound_dropped_frames",
            "Frames dropped because a connection's outbound queue was full",
            outbound_dropped.clone(),
        );
        let slow_reader_closes = Counter::default();
        registry.register(
            "slow_reader_closes",
            "Connections closed (1008) because the client stopped reading",
            slow_reader_closes.clone(),
        );
        let limit_hits = Family::<LimitLabel, Counter>::default();
        registry.register(
            "limit_hits",
            "Requests, connections and events refused or cut by a limit, by limit",
            limit_hits.clone(),
        );
        for limit in LIMITS {
            drop(limit_hits.get_or_create(&LimitLabel { limit }));
        }
        let plugin_http_requests = Family::<HttpOutcome, Counter>::default();
        registry.register(
            "plugin_http_requests",
            "Outbound HTTP requests of plugins, by plugin and outcome (status code, denied, error)",
            plugin_http_requests.clone(),
        );
        let plugin_http_bytes = Family::<PluginLabel, Counter>::default();
        registry.register(
            "plugin_http_response_bytes",
            "Response body bytes plugins received over HTTP, by plugin",
            plugin_http_bytes.clone(),
        );
        // Buckets 1, 2, 4, … 64 (the writer's largest batch, but for a last post of two).
        let store_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 7));
        registry.register(
            "store_batch_messages",
            "Messages per database transaction of the message writer (group commit)",
            store_batch_size.clone(),
        );
        let redis_connected = cluster.then(|| {
            let gauge = Gauge::default();
            registry.register(
                "cluster_redis_connected",
                "1 while this node's Redis connection is healthy, else 0",
                gauge.clone(),
            );
            gauge
        });
        let cluster_events_received = cluster.then(|| {
            let counter = Counter::default();
            registry.register(
                "cluster_events_received",
                "Room events this node received from Redis (its rooms' events only: the \
                 subscriptions follow the sessions it has participants in)",
                counter.clone(),
            );
            counter
        });
        // Series with a fixed set of labels start at 0, so they are scraped before the first
        // event (per-plugin series appear with the plugin's first call).
        for role in ["user", "command", "assistant", "system"] {
            drop(messages_stored.get_or_create(&RoleLabel { role }));
        }
        for reason in ["unknown", "forbidden", "usage", "rate_limited"] {
            drop(command_refusals.get_or_create(&ReasonLabel { reason }));
        }
        for outcome in ["ok", "failed", "discarded"] {
            drop(assistant_replies.get_or_create(&OutcomeLabel { outcome }));
        }
        Metrics {
            registry,
            connections,
            users_online,
            session_joins,
            messages_stored,
            command_invocations,
            command_refusals,
            command_latency,
            assistant_replies,
            outbound_dropped,
            slow_reader_closes,
            limit_hits,
            plugin_http_requests,
            plugin_http_bytes,
            store_batch_size,
            redis_connected,
            cluster_events_received,
        }
    }

    /// A plugin's outbound HTTP request ended: `outcome` is its status code, `denied` (the
    /// allow-list or a limit) or `error`.
    pub fn plugin_http_request(&self, plugin: &str, outcome: &str, bytes: u64) {
        self.plugin_http_requests
            .get_or_create(&HttpOutcome {
                plugin: plugin.to_string(),
                outcome: outcome.chars().take(16).collect(),
            })
            .inc();
        self.plugin_http_bytes
            .get_or_create(&PluginLabel {
                plugin: plugin.to_string(),
            })
            .inc_by(bytes);
    }

    /// A limit refused or cut something; `limit` is one of [`LIMITS`].
    pub fn limit_hit(&self, limit: &'static str) {
        debug_assert!(LIMITS.contains(&limit), "{limit}");
        self.limit_hits.get_or_create(&LimitLabel { limit }).inc();
    }

    pub fn session_joined(&self) {
        self.session_joins.inc();
    }

    /// The message writer committed (or tried to) a batch of `messages`.
    pub fn store_batch(&self, messages: usize) {
        self.store_batch_size.observe(messages as f64);
    }

    /// `role` is the stored message's role (`MessageRole::as_str`).
    pub fn message_stored(&self, role: &'static str) {
        self.messages_stored
            .get_or_create(&RoleLabel { role })
            .inc();
    }

    /// A command ran in `plugin` and ended with `outcome` after `elapsed`.
    pub fn command_finished(&self, plugin: &str, outcome: &'static str, elapsed: Duration) {
        self.command_invocations
            .get_or_create(&PluginOutcome {
                plugin: plugin.to_string(),
                outcome,
            })
            .inc();
        self.command_latency
            .get_or_create(&PluginLabel {
                plugin: plugin.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// A command was refused before it ran.
    pub fn command_refused(&self, reason: &'static str) {
        self.command_refusals
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    pub fn assistant_reply(&self, outcome: &'static str) {
        self.assistant_replies
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub fn outbound_frame_dropped(&self) {
        self.outbound_dropped.inc();
    }

    pub fn slow_reader_closed(&self) {
        self.slow_reader_closes.inc();
    }

    /// A room event arrived from another node (through Redis).
    pub fn cluster_event_received(&self) {
        if let Some(counter) = &self.cluster_events_received {
            counter.inc();
        }
    }

    /// The exposition text, with the live gauges set from their owners first.
    pub fn render(&self, live: Live) -> Result<String, std::fmt::Error> {
        self.connections.set(to_i64(live.connections));
        self.users_online.set(to_i64(live.users_online));
        if let (Some(gauge), Some(up)) = (&self.redis_connected, live.redis_connected) {
            gauge.set(i64::from(up));
        }
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// Live state read at scrape time.
pub struct Live {
    pub connections: usize,
    pub users_online: usize,
    /// `None` without a cluster.
    pub redis_connected: Option<bool>,
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_what_was_reported() {
        let metrics = Metrics::new(false);
        metrics.command_finished("logs", "ok", Duration::from_millis(3));
        metrics.message_stored("user");
        let text = metrics
            .render(Live {
                connections: 2,
                users_online: 1,
                redis_connected: None,
            })
            .expect("render");
        assert!(text.contains("slashd_connections 2"), "{text}");
        assert!(
            text.contains(r#"slashd_command_invocations_total{plugin="logs",outcome="ok"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"slashd_messages_stored_total{role="user"} 1"#),
            "{text}"
        );
        assert!(!text.contains("redis"), "no cluster, no Redis gauge");
    }
}
