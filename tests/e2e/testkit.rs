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
