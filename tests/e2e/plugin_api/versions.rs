//! API versions side by side, and any toolchain: 0.1.0 components (checked in, built by
//! the 0.1.0 SDK) keep 0.1.0's rules while 0.2.0 ones get least privilege; components from
//! stock componentize-py and componentize-js load with only what their manifest asks.

use serde_json::Value;

use crate::harness::{guest_plugin, plugin_wasm, plugin_wasm_v010, Backend, Server, Setup};
use crate::support::{error_code, joined, reply_text};

async fn plugin_states(server: &Server) -> Vec<Value> {
    let admin = server.admin().await;
    let (_, plugins) = server.get("/admin/plugins", &admin.token).await;
    plugins["plugins"].as_array().unwrap().clone()
}

fn state_of<'a>(plugins: &'a [Value], name: &str) -> &'a Value {
    plugins
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plugin {name}: {plugins:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_of_both_versions_run_side_by_side() {
    let server = Setup::new(Backend::Sqlite)
        .plugin_file(
            "probe",
            &plugin_wasm_v010("probe"),
            &[("grants", r#"["kv", "config"]"#)],
        )
        .plugin("reach", &[("grants", r#"["http", "secrets", "progress"]"#)])
        // Imports kv without asking: 0.1.0 refuses it ungranted; 0.2.0 loads it.
        .plugin_file("liar", &plugin_wasm_v010("liar"), &[])
        .plugin_file("hello", &plugin_wasm_v010("hello"), &[])
        .start()
        .await;
    let plugins = plugin_states(&server).await;
    assert_eq!(state_of(&plugins, "probe")["state"], "enabled");
    assert_eq!(state_of(&plugins, "reach")["state"], "enabled");
    assert_eq!(state_of(&plugins, "hello")["state"], "enabled");
    let liar = state_of(&plugins, "liar");
    assert_eq!(liar["state"], "refused");
    assert!(
        liar["reason"]
            .as_str()
            .unwrap()
            .contains("needs capability kv"),
        "{liar}"
    );

    let user = server.user("zed", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "versions").await;
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-kvset k v").await),
        "stored"
    );
    assert_eq!(
        reply_text(&ws.command(&session, "/probe-kvget k").await),
        "value: v"
    );
    assert_eq!(
        reply_text(&ws.command(&session, "/reach-kv").await),
        "kv refused: capability `kv` is not granted to plugin reach"
    );
    assert!(reply_text(&ws.command(&session, "/hello").await).contains("zed"));
    assert!(reply_text(&ws.command(&session, "/help").await).contains("/reach-get"));

    // The same liar built against 0.2.0 loads ungranted, and its call fails cleanly.
    let server = Setup::new(Backend::Sqlite)
        .plugin("liar", &[])
        .start()
        .await;
    let plugins = plugin_states(&server).await;
    assert_eq!(state_of(&plugins, "liar")["state"], "enabled");
    let user = server.user("zed", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "versions").await;
    let frame = ws.command(&session, "/liar").await;
    assert_eq!(error_code(&frame), "plugin_failed");
    assert!(frame["message"]
        .as_str()
        .unwrap()
        .contains("capability `kv` is not granted to plugin liar"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_names_the_version_and_the_grants() {
    let server = Server::start(Backend::Sqlite).await;
    let check = |path: &str| {
        let out = server.cli(&["plugin", "check", path], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let old = check(&plugin_wasm_v010("liar"));
    assert!(old.contains("(plugin API 0.1.0)"), "{old}");
    assert!(old.contains("grants needed: kv"), "{old}");
    let new = check(&plugin_wasm("liar"));
    assert!(new.contains("(plugin API 0.2.0)"), "{new}");
    assert!(new.contains("grants needed: none"), "{new}");
    assert!(new.contains("note: also imports kv"), "{new}");
    let python = check(&guest_plugin("pyprobe"));
    assert!(
        python.contains("ok: pyprobe 0.2.0 (plugin API 0.2.0)"),
        "{python}"
    );
    assert!(python.contains("grants needed: config"), "{python}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_and_javascript_plugins_load_with_least_privilege() {
    let python = guest_plugin("pyprobe");
    let javascript = guest_plugin("jsprobe");
    // Both servers use the suite's compile cache: these components take seconds to compile.
    let server = Setup::new(Backend::Sqlite)
        .plugin_file(
            "pyprobe",
            &python,
            &[
                ("grants", r#"["config"]"#),
                ("settings", r#"{ greeting = "hello" }"#),
            ],
        )
        .plugin_file("jsprobe", &javascript, &[("grants", r#"["kv"]"#)])
        .start()
        .await;
    let plugins = plugin_states(&server).await;
    for name in ["pyprobe", "jsprobe"] {
        assert_eq!(state_of(&plugins, name)["state"], "enabled", "{plugins:?}");
    }
    let user = server.user("lin", "viewer").await;
    let (mut ws, session) = joined(&server, &user, "guests").await;
    let greeting = ws.command(&session, "/pyprobe").await;
    let invocation = greeting["message"]["metadata"]["reply_to"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        reply_text(&greeting),
        format!("python: \"hello\" lin (invocation {invocation})")
    );
    let refused = ws.command(&session, "/pyprobe kv").await;
    assert_eq!(error_code(&refused), "plugin_failed", "{refused}");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("kv refused: capability `kv` is not granted to plugin pyprobe"));
    let usage = ws.command(&session, "/pyprobe nonsense").await;
    assert_eq!(error_code(&usage), "usage", "{usage}");

    for n in 1..=2 {
        let counted = ws.command(&session, "/jsprobe").await;
        assert!(
            reply_text(&counted).starts_with(&format!("javascript: call {n} by lin")),
            "{counted}"
        );
    }
    let refused = ws.command(&session, "/jsprobe config").await;
    assert_eq!(error_code(&refused), "plugin_failed", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("config refused"),
        "{refused}"
    );

    // Without the grants their manifests ask for, neither is enabled.
    let server = Setup::new(Backend::Sqlite)
        .plugin_file("pyprobe", &python, &[])
        .plugin_file("jsprobe", &javascript, &[("grants", r#"["config"]"#)])
        .start()
        .await;
    let plugins = plugin_states(&server).await;
    assert!(state_of(&plugins, "pyprobe")["reason"]
        .as_str()
        .unwrap()
        .contains("needs capability config"));
    assert!(state_of(&plugins, "jsprobe")["reason"]
        .as_str()
        .unwrap()
        .contains("needs capability kv"));
}
