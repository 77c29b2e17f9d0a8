//! The built-in commands (/stat, /reload, /status, /sessions, /clear) and admin control of
//! plugins: enable/disable, config reload (HTTP and SIGHUP), the audit log.

use std::time::{Duration, Instant, SystemTime};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{plugin_wasm, Backend, Server, Setup};
use crate::on_both_backends;
use crate::support::{command_confirmed, joined, Shared};

on_both_backends!(
    reload_then_stat_counts_exactly,
    reload_rejects_bad_days_and_viewers,
    clear_ends_the_session_for_everyone,
    status_and_sessions_describe_the_caller,
    admins_disable_and_enable_at_once,
    config_reload_applies_without_reconnecting,
    an_invalid_config_reload_changes_nothing,
    a_new_version_at_the_same_path_is_picked_up,
    admin_routes_are_for_admins,
);

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn ago(hours: u64) -> String {
    rfc3339(SystemTime::now() - Duration::from_secs(hours * 3600))
}

/// A logs directory with known content: within the last two days, 3 INFO (one from `db`),
/// 2 WARN, 1 ERROR (from `db`); older: 2 lines; unparseable: 2 lines.
fn write_logs(dir: &std::path::Path) {
    let text = format!(
        "{} INFO started\n{} WARN slow\nnot a log line\n{} INFO older than two days\n{} ERROR old failure\n",
        ago(1),
        ago(30),
        ago(80),
        ago(240)
    );
    std::fs::write(dir.join("app.log"), text).unwrap();
    let json = [
        json!({"ts": ago(2), "level": "info", "msg": "query", "source": "db"}).to_string(),
        json!({"ts": ago(3), "level": "error", "msg": "deadlock", "source": "db"}).to_string(),
        json!({"ts": ago(4), "level": "warn", "msg": "retry", "source": "api"}).to_string(),
        json!({"ts": ago(5), "level": "INFO", "msg": "ok", "source": "api"}).to_string(),
        "{\"broken".to_string(),
    ];
    std::fs::write(dir.join("services.jsonl"), json.join("\n") + "\n").unwrap();
}

struct Fixture {
    server: Server,
    logs: tempfile::TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = Server;
    fn deref(&self) -> &Server {
        &self.server
    }
}

async fn start(backend: Backend, extra: impl FnOnce(Setup) -> Setup) -> Fixture {
    let logs = tempfile::tempdir().unwrap();
    write_logs(logs.path());
    let dirs = format!("{{ \"/logs\" = {:?} }}", logs.path().display().to_string());
    let setup = Setup::new(backend)
        .set("plugins.logs", "dirs", &dirs)
        .set("commands", "rate_per_sec", "1000.0")
        .set("commands", "rate_burst", "1000.0");
    Fixture {
        server: extra(setup).start().await,
        logs,
    }
}

fn data(frame: &Value) -> &Value {
    assert_eq!(frame["type"], "message", "expected a reply, got {frame}");
    &frame["message"]["metadata"]["data"]
}

async fn reload_then_stat_counts_exactly(backend: Backend) {
    let mut fixture = start(backend, |s| s).await;
    let anna = fixture.user("anna", "analyst").await;
    let (mut ws, session) = joined(&fixture, &anna, "built-ins").await;

    let before = ws.command(&session, "/stat").await;
    assert_eq!(data(&before)["logs"], Value::Null);
    assert!(before["message"]["content"]
        .as_str()
        .unwrap()
        .contains("run `/reload [--days N]`"));

    let reply = ws.command(&session, "/reload 2").await;
    let stats = data(&reply).clone();
    assert_eq!(stats["days"], 2);
    assert_eq!(stats["files_read"], 2);
    assert_eq!(stats["lines_read"], 10);
    assert_eq!(stats["lines_counted"], 6);
    assert_eq!(stats["lines_older"], 2);
    assert_eq!(stats["lines_unparseable"], 2);
    assert_eq!(stats["by_level"], json!({"ERROR": 1, "INFO": 3, "WARN": 2}));
    let day_total: u64 = stats["by_day"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(day_total, 6);
    assert_eq!(
        stats["top_sources"],
        json!([{"source": "-", "lines": 2}, {"source": "api", "lines": 2}, {"source": "db", "lines": 2}])
    );
    let text = reply["message"]["content"].as_str().unwrap();
    assert!(
        text.contains("2 file(s) read")
            && text.contains("10 line(s) read")
            && text.contains("2 unparseable"),
        "{text}"
    );

    // /stat (and its alias) shows the same figures, next to the server's.
    let stat = ws.command(&session, "/stats").await;
    assert_eq!(data(&stat)["logs"], stats);
    let server_stats = &data(&stat)["server"];
    assert_eq!(server_stats["connections"], 1);
    assert_eq!(server_stats["users_online"], 1);
    assert_eq!(server_stats["sessions_active"], 1);
    assert!(server_stats["messages_total"].as_u64().unwrap() >= 4);
    let plugins = data(&stat)["plugins"].as_array().unwrap().clone();
    let logs_plugin = plugins.iter().find(|p| p["name"] == "logs").unwrap();
    assert!(logs_plugin["calls"].as_u64().unwrap() >= 3);

    // A wider window counts the older lines; the result survives a restart (kv).
    let wide = ws.command(&session, "/reload 30").await;
    assert_eq!(data(&wide)["lines_counted"], 8);
    drop(ws);
    fixture.server.kill();
    fixture.server.spawn().await;
    let anna = fixture.login("anna", crate::harness::PASSWORD).await;
    let mut ws = fixture.ws(&anna).await;
    ws.join(&session).await;
    let after = ws.command(&session, "/stat").await;
    assert_eq!(data(&after)["logs"]["lines_counted"], 8);
    let _ = &fixture.logs;
}

async fn reload_rejects_bad_days_and_viewers(backend: Backend) {
    let server = start(backend, |s| s).await;
    let anna = server.user("anna", "analyst").await;
    let (mut ws, session) = joined(&server, &anna, "built-ins").await;
    for bad in [
        "/reload banana",
        "/reload 0",
        "/reload 366",
        "/reload -1",
        "/reload 1 2",
    ] {
        let answer = ws.command(&session, bad).await;
        assert_eq!(answer["code"], "usage", "{bad}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .ends_with("; /reload [--days N]"),
            "{answer}"
        );
    }
    let vera = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &vera, "built-ins").await;
    let refused = ws.command(&session, "/reload").await;
    assert_eq!(refused["code"], "forbidden");

    let admin = server.admin().await;
    let (status, audit) = server
        .get("/admin/audit?user=vera&command=reload", &admin.token)
        .await;
    assert_eq!(status, StatusCode::OK, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["user_id"], vera.id.as_str());
    assert_eq!(entries[0]["decision"], "denied");
    assert_eq!(entries[0]["outcome"], "forbidden");
    assert_eq!(entries[0]["args_sha256"].as_str().unwrap().len(), 64);
    // Anna's usage errors were refused by the host before anything ran.
    let (_, audit) = server.get("/admin/audit?user=anna", &admin.token).await;
    let outcomes: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["usage"; 5]);
    let (_, page) = server.get("/admin/audit?limit=2", &admin.token).await;
    assert_eq!(page["entries"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], true);
}

async fn clear_ends_the_session_for_everyone(backend: Backend) {
    let server = start(backend, |s| s).await;
    let shared = Shared::create(&server, "olga", "mike", "to clear").await;
    let (mut a, mut b) = shared.join_both(&server).await;
    let Shared { owner, session, .. } = shared;

    // A member may not end the owner's session.
    // /clear asks first: nothing happens until the invoker says yes.
    let asked = b
        .request(json!({"type": "message", "session_id": session, "content": "/clear", "id": "c"}))
        .await;
    assert_eq!(asked["type"], "confirm_required", "{asked}");
    assert!(
        asked["prompt"]
            .as_str()
            .unwrap()
            .contains("End this session"),
        "{asked}"
    );
    let declined = b
        .request(json!({"type": "confirm", "confirmation_id": asked["confirmation_id"], "accept": false}))
        .await;
    assert_eq!(declined["type"], "cancelled", "{declined}");
    // A member may not end the owner's session, even having confirmed.
    let denied = command_confirmed(&mut b, &session, "/clear").await;
    assert_eq!(denied["code"], "plugin_failed");
    assert!(
        denied["message"]
            .as_str()
            .unwrap()
            .contains("only the session's owner"),
        "{denied}"
    );

    let reply = command_confirmed(&mut a, &session, "/clear").await;
    assert_eq!(reply["message"]["content"], "This session has ended.");
    assert_eq!(
        b.recv_type("session_ended").await["session_id"],
        session.as_str()
    );
    let (_, got) = server
        .get(&format!("/chat/sessions/{session}"), &owner.token)
        .await;
    assert_eq!(got["status"], "ended");
    let after = a.command(&session, "/status").await;
    assert_eq!(
        after["code"], "bad_request",
        "an ended session takes no more commands: {after}"
    );
}

async fn status_and_sessions_describe_the_caller(backend: Backend) {
    let server = start(backend, |s| s).await;
    let vera = server.user("vera", "viewer").await;
    let older = server.session(&vera, "older one").await;
    let session = server.session(&vera, "current | piped").await;
    let mut ws = server.ws_with_header(Some(&vera.token)).await;
    let ready = ws.recv().await;
    ws.join(&session).await;
    ws.send(json!({"type": "message", "session_id": session, "content": "hello"}))
        .await;
    ws.recv_type("ack").await;

    let status = ws.command(&session, "/status").await;
    let d = data(&status);
    assert_eq!(d["session"]["id"], session.as_str());
    assert_eq!(d["session"]["title"], "current | piped");
    assert_eq!(d["session"]["status"], "active");
    assert_eq!(
        d["session"]["message_count"], 2,
        "hello and the /status invocation"
    );
    assert_eq!(d["session"]["participants"], json!([vera.id]));
    assert_eq!(d["connection"]["id"], ready["connection_id"]);
    assert_eq!(d["connection"]["role"], "viewer");
    assert!(d["connection"]["connected_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    let text = status["message"]["content"].as_str().unwrap();
    assert!(
        text.contains("current \\| piped"),
        "table cells stay intact: {text}"
    );

    let list = ws.command(&session, "/sessions").await;
    let ids: Vec<&str> = data(&list)["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [session.as_str(), older.as_str()]);
    assert!(list["message"]["content"]
        .as_str()
        .unwrap()
        .contains("*(this one)*"));
}

async fn admins_disable_and_enable_at_once(backend: Backend) {
    let server = start(backend, |s| s).await;
    let admin = server.admin().await;
    let vera = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &vera, "built-ins").await;
    assert_eq!(
        data(&ws.command(&session, "/status").await)["session"]["id"],
        session.as_str()
    );

    let (status, body) = server
        .post("/admin/plugins/status/disable", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["plugin"]["state"], "disabled");
    // On the same, still open connection.
    assert_eq!(
        ws.command(&session, "/status").await["code"],
        "unknown_command"
    );
    let (_, listed) = server.get("/commands", &vera.token).await;
    assert!(!listed["commands"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "status"));

    let (status, body) = server
        .post("/admin/plugins/status/enable", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["plugin"]["state"], "enabled");
    assert_eq!(
        data(&ws.command(&session, "/status").await)["session"]["id"],
        session.as_str()
    );

    let (status, _) = server
        .post("/admin/plugins/nonesuch/disable", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn config_reload_applies_without_reconnecting(backend: Backend) {
    let server = start(backend, |s| s).await;
    let admin = server.admin().await;
    let vera = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &vera, "built-ins").await;
    assert_eq!(ws.command(&session, "/stat").await["type"], "message");

    server.edit_config(|text| {
        text.replace("[plugins.logs]\n", "[plugins.logs]\nmin_role = \"admin\"\n")
    });
    let (status, body) = server
        .post("/admin/plugins/reload", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let logs = body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "logs")
        .unwrap()
        .clone();
    assert!(
        logs["commands"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["min_role"] == "admin"),
        "{logs}"
    );
    assert_eq!(ws.command(&session, "/stat").await["code"], "forbidden");

    // The same through SIGHUP: lower it again.
    server.edit_config(|text| text.replace("min_role = \"admin\"\n", ""));
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = ws.command(&session, "/stat").await;
        if answer["type"] == "message" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP reload did not apply: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn an_invalid_config_reload_changes_nothing(backend: Backend) {
    let server = start(backend, |s| s).await;
    let admin = server.admin().await;
    let vera = server.user("vera", "viewer").await;
    let (mut ws, session) = joined(&server, &vera, "built-ins").await;
    let (_, before) = server.get("/admin/plugins", &admin.token).await;

    server.edit_config(|text| text + "\n[plugins.logs\nbroken = \n");
    let (status, body) = server
        .post("/admin/plugins/reload", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid config"),
        "{body}"
    );
    server.edit_config(|text| {
        text.replace(
            "\n[plugins.logs\nbroken = \n",
            "\n[plugins.nosuch]\nenabled = true\nbogus_key = 1\n",
        )
    });
    let (status, _) = server
        .post("/admin/plugins/reload", &admin.token, json!({}))
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "unknown keys refuse the whole file"
    );

    let (_, after) = server.get("/admin/plugins", &admin.token).await;
    let names = |v: &Value| {
        v["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].clone(), p["state"].clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&before), names(&after));
    assert_eq!(ws.command(&session, "/stat").await["type"], "message");
}

async fn a_new_version_at_the_same_path_is_picked_up(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hello.wasm");
    std::fs::copy(plugin_wasm("hello"), &path).unwrap();
    let path_toml = format!("{:?}", path.display().to_string());
    let server = start(backend, |s| {
        s.set("plugins.hello", "path", &path_toml)
            .plugin("probe", &[("grants", r#"["kv", "config"]"#)])
    })
    .await;
    let admin = server.admin().await;
    let (mut ws, session) = joined(&server, &admin, "built-ins").await;
    assert_eq!(
        ws.command(&session, "/hello").await["message"]["content"],
        "Hello, **admin**!"
    );

    // A call in flight finishes on the version it started with.
    ws.send(json!({"type": "message", "session_id": session, "content": "/probe-slow 1500", "id": "slow"})).await;
    assert_eq!(ws.recv().await["type"], "ack");
    std::fs::copy(plugin_wasm("hello2"), &path).unwrap();
    let (status, body) = server
        .post("/admin/plugins/reload", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .post("/admin/plugins/probe/disable", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let hello = body["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hello")
        .unwrap()
        .clone();
    assert_eq!(hello["version"], "0.2.0");
    let slow = ws.recv_type("message").await;
    assert_eq!(
        slow["message"]["content"], "/probe-slow 1500",
        "the invocation broadcast"
    );
    let slow = ws.recv_type("message").await;
    assert_eq!(slow["message"]["content"], "slept 1500 ms");
    assert_eq!(
        ws.command(&session, "/hello").await["message"]["content"],
        "Hello from version two"
    );
}

async fn admin_routes_are_for_admins(backend: Backend) {
    let server = start(backend, |s| s.plugin("greedy", &[("grants", r#"["kv"]"#)])).await;
    let anna = server.user("anna", "analyst").await;
    for (method, path) in [
        (Method::GET, "/admin/plugins"),
        (Method::POST, "/admin/plugins/reload"),
        (Method::POST, "/admin/plugins/help/disable"),
        (Method::GET, "/admin/audit"),
    ] {
        let (status, body) = server
            .call(method, path, Some(&anna.token), Some(json!({})))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let admin = server.admin().await;
    let (mut ws, session) = joined(&server, &admin, "built-ins").await;
    ws.command(&session, "/help").await;
    let (status, body) = server.get("/admin/plugins", &admin.token).await;
    assert_eq!(status, StatusCode::OK);
    let plugins = body["plugins"].as_array().unwrap();
    let help = plugins.iter().find(|p| p["name"] == "help").unwrap();
    assert_eq!(help["source"], json!({"kind": "built-in"}));
    assert_eq!(help["state"], "enabled");
    assert_eq!(help["grants_given"], json!(["commands"]));
    assert_eq!(help["grants_asked"], json!(["commands"]));
    assert_eq!(help["calls"], 1);
    assert!(
        help["p50_ms"].as_f64().unwrap() > 0.0
            && help["p99_ms"].as_f64().unwrap() >= help["p50_ms"].as_f64().unwrap()
    );
    assert_eq!(help["commands"][0]["min_role"], "viewer");
    let logs = plugins.iter().find(|p| p["name"] == "logs").unwrap();
    let reload = logs["commands"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "reload")
        .unwrap();
    assert_eq!(reload["min_role"], "analyst");
    let greedy = plugins.iter().find(|p| p["name"] == "greedy").unwrap();
    assert_eq!(greedy["state"], "refused");
    assert!(
        greedy["reason"].as_str().unwrap().contains("stats"),
        "{greedy}"
    );
    assert_eq!(greedy["source"]["kind"], "path");
    let (status, body) = server
        .post("/admin/plugins/greedy/enable", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
}
