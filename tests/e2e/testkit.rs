//! The plugin authors' harness, exercised on real built plugins.

use std::time::Duration;

use slashd::auth::Role;
use slashd::plugins::testkit::PluginTester;
use slashd::plugins::CallError;

use crate::harness::plugin_wasm;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_the_template_plugin() {
    let tester = PluginTester::builder(plugin_wasm("hello"))
        .build()
        .await
        .unwrap();
    assert_eq!(tester.manifest().name, "hello");
    assert_eq!(
        tester.run("/hello world").await.unwrap().body,
        "Hello, **world**!"
    );
    assert_eq!(
        tester.run(r#"/hello "big world""#).await.unwrap().body,
        "Hello, **big world**!"
    );
    assert_eq!(
        tester.run("/hello").await.unwrap().body,
        "Hello, **tester**!"
    );
    assert!(
        matches!(tester.run("/hello a b").await, Err(CallError::Usage(u)) if u == "usage: unexpected argument \"b\"; /hello [--name TEXT]")
    );
    assert!(matches!(
        tester.run("/nope").await,
        Err(CallError::Failed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_settings_kv_and_roles() {
    let mut tester = PluginTester::builder(plugin_wasm("probe"))
        .setting("greeting", serde_json::json!("hi"))
        .build()
        .await
        .unwrap();
    assert_eq!(
        tester.run("/probe-config greeting").await.unwrap().body,
        "\"hi\""
    );
    tester.kv_set("seeded", b"by the test");
    assert_eq!(
        tester.run("/probe-kvget seeded").await.unwrap().body,
        "value: by the test"
    );
    tester.run("/probe-kvset k v").await.unwrap();
    assert_eq!(tester.kv_get("k").as_deref(), Some(&b"v"[..]));
    tester.as_user("vic", Role::Viewer);
    assert!(
        matches!(tester.run("/probe-analyst").await, Err(CallError::Failed(m)) if m.contains("forbidden"))
    );

    // Without the grant the plugin would be refused, as the server would refuse it.
    let refused = PluginTester::builder(plugin_wasm("probe"))
        .grants(&[])
        .build()
        .await;
    assert!(refused.is_err());
}

/// An instance made ahead of its call (off the reply path) is still the call's own, and
/// it is given that call's caller, grants and kv — not those of the call before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_made_ahead_are_fresh_and_the_calls_own() {
    // A debug build's slices are slow; the server's default would demote the plugin.
    let mut tester = PluginTester::builder(plugin_wasm("probe"))
        .first_slice_budget(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    for i in 0..30 {
        let user = format!("user{i}");
        tester.as_user(&user, Role::Admin);
        assert_eq!(
            tester.run("/probe-instance").await.unwrap().body,
            "calls served by this instance: 1",
            "call {i}"
        );
        let echo = tester.run("/probe-echo hi").await.unwrap();
        let data = echo.data.expect("probe-echo replies with data");
        assert_eq!(data["caller"]["name"], user.as_str());
        assert_eq!(data["raw_args"], "hi");
        tester
            .run(&format!("/probe-kvset k{i} v{i}"))
            .await
            .unwrap();
        assert_eq!(
            tester
                .run(&format!("/probe-kvget k{i}"))
                .await
                .unwrap()
                .body,
            format!("value: v{i}")
        );
        // Idle, as a server is between commands: the next instance gets made.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        tester.instances_made_ahead() > 30,
        "only {} of 120 calls had an instance made ahead",
        tester.instances_made_ahead()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_apply_in_the_harness_too() {
    let tester = PluginTester::builder(plugin_wasm("hostile"))
        .timeout(Duration::from_millis(300))
        .build()
        .await
        .unwrap();
    assert!(matches!(
        tester.run("/spin").await,
        Err(CallError::Timeout(_))
    ));
    assert!(matches!(
        tester.run("/panic").await,
        Err(CallError::Failed(_))
    ));
}

/// Calls back to back must wait for a pool slot, never fail for want of one (each call's
/// permit is held until its store is dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_to_back_calls_never_exhaust_the_pool() {
    let tester = PluginTester::builder(plugin_wasm("hello"))
        .build()
        .await
        .unwrap();
    for i in 0..500 {
        let reply = tester.run("/hello x").await;
        assert!(reply.is_ok(), "call {i}: {reply:?}");
    }
}

/// The harness runs native libraries too, with the same answers as their wasm builds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_wasm_builds_answer_alike() {
    let wasm = PluginTester::builder(plugin_wasm("tally"))
        .build()
        .await
        .unwrap();
    let native = PluginTester::builder(crate::harness::plugin_native("tally"))
        .native()
        .build()
        .await
        .unwrap();
    for line in ["/tally a", "/tally a", "/tally b"] {
        let (w, n) = (
            wasm.run(line).await.unwrap(),
            native.run(line).await.unwrap(),
        );
        assert_eq!((w.body, w.data), (n.body, n.data), "{line}");
    }
    assert_eq!(native.kv_get("count:a").as_deref(), Some(&b"2"[..]));
}
