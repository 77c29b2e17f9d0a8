//! SPEC L — revocation reaches open sockets: a demotion applies to the next command on an
//! already open connection, and disabling a user closes their sockets (4001) within seconds.

use std::time::{Duration, Instant};

use crate::harness::{Backend, Server, Setup};
use crate::on_both_backends;
use crate::support::usable;

on_both_backends!(
    a_demotion_applies_to_open_sockets,
    disabling_a_user_closes_their_open_sockets,
);

async fn start(backend: Backend) -> (Server, tempfile::TempDir) {
    let logs = tempfile::tempdir().unwrap();
    std::fs::write(
        logs.path().join("app.log"),
        "2026-01-01T00:00:00Z INFO hello\n",
    )
    .unwrap();
    let dirs = format!("{{ \"/logs\" = {:?} }}", logs.path().display().to_string());
    let server = Setup::new(backend)
        .set("plugins.logs", "dirs", &dirs)
        .set("commands", "rate_per_sec", "1000.0")
        .set("commands", "rate_burst", "1000.0")
        .start()
        .await;
    (server, logs)
}

/// An analyst's open socket; `slashd user set-role NAME viewer`; within 3 s their next
/// `/reload` (an analyst command) is refused `forbidden`.
async fn a_demotion_applies_to_open_sockets(backend: Backend) {
    let (server, _logs) = start(backend).await;
    let anna = server.user("anna", "analyst").await;
    let session = server.session(&anna, "ops").await;
    let mut ws = server.ws(&anna).await;
    ws.join(&session).await;
    let before = ws.command(&session, "/reload").await;
    assert_ne!(
        before["code"], "forbidden",
        "an analyst may /reload: {before}"
    );

    let out = server.cli(&["user", "set-role", "anna", "viewer"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let demoted = Instant::now();
    loop {
        let answer = ws.command(&session, "/reload").await;
        if answer["code"] == "forbidden" {
            break;
        }
        assert!(
            demoted.elapsed() < Duration::from_secs(3),
            "3 s after the demotion, the open socket still runs analyst commands: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `slashd user disable NAME`: their open socket receives `error` unauthorized and close
/// 4001 within 3 s.
async fn disabling_a_user_closes_their_open_sockets(backend: Backend) {
    let (server, _logs) = start(backend).await;
    let bert = server.user("bert", "viewer").await;
    let other = server.user("olga", "viewer").await;
    let session = server.session(&bert, "room").await;
    let mut ws = server.ws(&bert).await;
    ws.join(&session).await;
    let mut idle = server.ws(&bert).await;
    let mut bystander = server.ws(&other).await;

    let out = server.cli(&["user", "disable", "bert"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (name, conn) in [("joined socket", &mut ws), ("idle socket", &mut idle)] {
        let ended = conn.frames_until_close(Duration::from_secs(3)).await;
        let (frames, closed) =
            ended.unwrap_or_else(|| panic!("{name}: still open 3 s after `user disable`"));
        assert!(
            frames
                .iter()
                .any(|f| f["type"] == "error" && f["code"] == "unauthorized"),
            "{name}: no unauthorized error before the close: {frames:?}"
        );
        assert_eq!(closed, crate::harness::Closed::Code(4001), "{name}");
    }
    usable(&mut bystander).await;
}
