//! New sockets per user are rate-limited (`realtime.connects_per_user_per_min`): a client
//! closed for flooding cannot come straight back and flood again, while another user is
//! not affected.

use std::time::Duration;

use crate::harness::{Backend, Closed, Setup};
use crate::support::usable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_past_the_per_user_rate_are_refused() {
    let server = Setup::new(Backend::Sqlite)
        .set("realtime", "connects_per_user_per_min", "3")
        .start()
        .await;
    let mallory = server.user("mallory", "viewer").await;
    let alice = server.user("alice", "viewer").await;
    for _ in 0..3 {
        let mut ws = server.ws(&mallory).await;
        usable(&mut ws).await;
    }
    let mut refused = server.ws_with_header(Some(&mallory.token)).await;
    let answer = refused.recv().await;
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(answer["code"], "rate_limited", "{answer}");
    let (_, closed) = refused
        .frames_until_close(Duration::from_secs(5))
        .await
        .expect("the refused socket closes");
    assert_eq!(closed, Closed::Code(1008));
    // Per user: someone else connects as usual.
    let mut other = server.ws(&alice).await;
    usable(&mut other).await;
}
