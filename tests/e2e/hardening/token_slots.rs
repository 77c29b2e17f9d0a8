//! SPEC G — a token whose `exp` is near `u64::MAX` must not leak a connection slot.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{now_secs, Backend, Server, Setup, User, Ws};
use crate::on_both_backends;
use crate::support::{assert_no_panic, usable};

on_both_backends!(a_far_future_exp_does_not_leak_connection_slots);

/// Connect until `ready` (a just-closed connection's slot may take a moment to free).
async fn connect_ready(server: &Server, user: &User) -> Ws {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut ws = server.ws_with_header(Some(&user.token)).await;
        let first = ws.recv().await;
        if first["type"] == "ready" {
            return ws;
        }
        assert!(
            Instant::now() < deadline,
            "no connection slot for {} within 3 s: {first}",
            user.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_far_future_exp_does_not_leak_connection_slots(backend: Backend) {
    let server = Setup::new(backend)
        .set("realtime", "max_connections_per_user", "2")
        .start()
        .await;
    let user = server.user("tess", "viewer").await;
    let far = Server::forge(&json!({"sub": user.id, "name": "tess", "role": "viewer",
                                    "iat": now_secs(), "exp": 18_446_744_073_709_551_000u64}));
    for i in 0..5 {
        let mut ws = server.ws_with_header(Some(&far)).await;
        let first = ws.recv().await;
        // Accepted (ready) or refused (error then 4001): either way, it must not linger.
        if first["type"] == "ready" {
            ws.stream.close(None).await.expect("close");
            assert!(
                ws.frames_until_close(Duration::from_secs(5))
                    .await
                    .is_some(),
                "round {i}: the server did not complete the close"
            );
        } else {
            assert_eq!(first["type"], "error", "round {i}: {first}");
            assert!(
                ws.frames_until_close(Duration::from_secs(5))
                    .await
                    .is_some(),
                "round {i}: a refused connection stayed open"
            );
        }
    }
    // Both of the user's slots are free.
    let mut one = connect_ready(&server, &user).await;
    let mut two = connect_ready(&server, &user).await;
    usable(&mut one).await;
    usable(&mut two).await;
    drop(one);
    drop(two);
    crate::metrics::wait_for_value(&server, "slashd_connections", 0.0).await;
    assert_no_panic(&server);
}
