//! Several nodes on one PostgreSQL, fanning out over Redis.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{Backend, Server, Setup, Ws};
use crate::support::{connect_eventually, refused_for_connections, usable, Shared};

const REDIS: &str = "redis://127.0.0.1:6379";

fn setup() -> Setup {
    Setup::new(Backend::Postgres)
        .set("realtime", "rate_per_sec", "10000.0")
        .set("realtime", "rate_burst", "10000.0")
        .set("commands", "rate_burst", "100.0")
}

/// A socket of `user` on each node, joined to `session`.
async fn joined_on(nodes: &[Server], user: &crate::harness::User, session: &str) -> Vec<Ws> {
    let mut sockets = Vec::new();
    for node in nodes {
        let mut ws = node.ws(user).await;
        ws.join(session).await;
        sockets.push(ws);
    }
    sockets
}

/// Wait for frames until one satisfies `pick`.
async fn until(ws: &mut Ws, pick: impl Fn(&Value) -> bool) -> Value {
    loop {
        let frame = ws.recv().await;
        if pick(&frame) {
            return frame;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_cross_nodes_once_each_in_order() {
    let nodes = setup().start_cluster(2, REDIS).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let Shared {
        owner,
        member,
        session,
    } = Shared::across(a, b, "olga", "mike", "across nodes").await;
    let mut on_a = a.ws(&owner).await;
    on_a.join(&session).await;
    let mut on_b = b.ws(&member).await;
    let joined = on_b.join(&session).await;
    assert_eq!(
        joined["participants"],
        json!([owner.id, member.id]),
        "cluster-wide participants"
    );
    let presence = until(&mut on_a, |f| f["type"] == "presence").await;
    assert_eq!(
        presence,
        json!({"type": "presence", "session_id": session, "user_id": member.id, "state": "joined"})
    );

    // Messages from both nodes, seen once each, in seq order, everywhere.
    for i in 0..10 {
        let (ws, who) = if i % 2 == 0 {
            (&mut on_a, "a")
        } else {
            (&mut on_b, "b")
        };
        ws.send(json!({"type": "message", "session_id": session, "content": format!("{who}{i}")}))
            .await;
    }
    for ws in [&mut on_a, &mut on_b] {
        let mut seqs = Vec::new();
        while seqs.len() < 10 {
            let f = ws.recv().await;
            if f["type"] == "message" {
                seqs.push(f["message"]["seq"].as_i64().unwrap());
            }
        }
        assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    }

    // Typing crosses (to the others only).
    on_b.send(json!({"type": "typing", "session_id": session, "state": true}))
        .await;
    let typing = until(&mut on_a, |f| f["type"] == "typing").await;
    assert_eq!(typing["user_id"], member.id.as_str());

    // A command's reply crosses.
    let reply = on_a.command(&session, "/status").await;
    assert_eq!(reply["message"]["role"], "command");
    let seen = until(&mut on_b, |f| {
        f["type"] == "message" && f["message"]["role"] == "command"
    })
    .await;
    assert_eq!(seen["message"]["id"], reply["message"]["id"]);

    // Leaving crosses; ending crosses.
    on_b.send(json!({"type": "leave", "session_id": session}))
        .await;
    let left = until(&mut on_a, |f| f["type"] == "presence").await;
    assert_eq!(left["state"], "left");
    let mut on_b2 = b.ws(&member).await;
    on_b2.join(&session).await;
    until(&mut on_a, |f| {
        f["type"] == "presence" && f["state"] == "joined"
    })
    .await;
    let (status, _) = a
        .call(
            reqwest::Method::DELETE,
            &format!("/chat/sessions/{session}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let ended = until(&mut on_b2, |f| f["type"] == "session_ended").await;
    assert_eq!(ended["session_id"], session.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_on_two_nodes_is_one_participant() {
    let nodes = setup().start_cluster(2, REDIS).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let Shared {
        owner,
        member,
        session,
    } = Shared::across(a, b, "olga", "mike", "across nodes").await;
    let mut watcher = a.ws(&owner).await;
    watcher.join(&session).await;
    let mut m1 = a.ws(&member).await;
    m1.join(&session).await;
    until(&mut watcher, |f| {
        f["type"] == "presence" && f["state"] == "joined"
    })
    .await;
    let mut m2 = b.ws(&member).await;
    let joined = m2.join(&session).await;
    assert_eq!(joined["participants"], json!([owner.id, member.id]));
    // Leaving one node while still on the other is not leaving.
    m1.send(json!({"type": "leave", "session_id": session}))
        .await;
    watcher.expect_silence(Duration::from_millis(700)).await;
    m2.send(json!({"type": "leave", "session_id": session}))
        .await;
    let left = until(&mut watcher, |f| f["type"] == "presence").await;
    assert_eq!(left["state"], "left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_posters_on_both_nodes_get_gapless_seqs() {
    let nodes = setup().start_cluster(2, REDIS).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let Shared {
        owner,
        member,
        session,
    } = Shared::across(a, b, "olga", "mike", "across nodes").await;
    let mut readers = Vec::new();
    for (node, user) in [(a, &owner), (b, &member)] {
        let mut ws = node.ws(user).await;
        ws.join(&session).await;
        readers.push(ws);
    }
    let mut posters = Vec::new();
    for i in 0..8 {
        let (node, user) = if i % 2 == 0 {
            (a, &owner)
        } else {
            (b, &member)
        };
        let mut ws = node.ws(user).await;
        let session = session.clone();
        posters.push(tokio::spawn(async move {
            // Others may be posting already: `joined` need not be the next frame.
            ws.send(json!({"type": "join", "session_id": session}))
                .await;
            until(&mut ws, |f| f["type"] == "joined").await;
            for j in 0..25 {
                let id = format!("{i}-{j}");
                ws.send(json!({"type": "message", "session_id": session, "content": id, "id": id}))
                    .await;
                until(&mut ws, |f| f["type"] == "ack" && f["id"] == id.as_str()).await;
            }
        }));
    }
    for p in posters {
        p.await.unwrap();
    }
    for ws in readers.iter_mut() {
        let mut seqs = Vec::new();
        while seqs.len() < 200 {
            let f = ws.recv().await;
            if f["type"] == "message" {
                seqs.push(f["message"]["seq"].as_i64().unwrap());
            }
        }
        assert_eq!(
            seqs,
            (1..=200).collect::<Vec<_>>(),
            "every client sees seq order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_clients_recover_on_another() {
    let mut nodes = setup().start_cluster(2, REDIS).await;
    let shared = Shared::across(&nodes[0], &nodes[1], "olga", "mike", "across nodes").await;
    let (mut on_a, mut on_b) = shared.join_both_across(&nodes[0], &nodes[1]).await;
    let Shared { owner, session, .. } = shared;
    for i in 0..5 {
        on_b.send(
            json!({"type": "message", "session_id": session, "content": format!("before {i}")}),
        )
        .await;
    }
    let mut last_seen = 0;
    while last_seen < 5 {
        let f = on_a.recv().await;
        if f["type"] == "message" {
            last_seen = f["message"]["seq"].as_i64().unwrap();
        }
    }
    nodes[0].kill();
    for i in 0..5 {
        let id = format!("during {i}");
        on_b.send(json!({"type": "message", "session_id": session, "content": id, "id": id}))
            .await;
        until(&mut on_b, |f| f["type"] == "ack" && f["id"] == id.as_str()).await;
    }
    // The owner reconnects to node B and misses nothing.
    let mut moved = nodes[1].ws(&owner).await;
    let joined = moved
        .request(json!({"type": "join", "session_id": session, "since_seq": last_seen}))
        .await;
    let contents: Vec<&str> = joined["missed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        ["during 0", "during 1", "during 2", "during 3", "during 4"]
    );
    assert_eq!(joined["last_seq"], 10);
}

/// A Redis of this test's own, to stop and start.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> OwnRedis {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = OwnRedis { port, child: None };
        redis.up();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn up(&mut self) {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.down();
    }
}

async fn wait_ready(node: &Server, want: StatusCode) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = node.call(reqwest::Method::GET, "/readyz", None, None).await;
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {status}: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_degrades_then_recovers() {
    let mut redis = OwnRedis::start();
    let nodes = setup().start_cluster(2, &redis.url()).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let shared = Shared::across(a, b, "olga", "mike", "across nodes").await;
    let (mut on_a, mut on_b) = shared.join_both_across(a, b).await;
    let Shared {
        member, session, ..
    } = shared;
    assert_eq!(wait_ready(a, StatusCode::OK).await["redis"], true);

    redis.down();
    // Local delivery goes on; the gap is in the database.
    on_a.send(json!({"type": "message", "session_id": session, "content": "while redis is down"}))
        .await;
    until(&mut on_a, |f| f["type"] == "ack").await;
    until(&mut on_a, |f| f["type"] == "message").await;
    let body = wait_ready(a, StatusCode::SERVICE_UNAVAILABLE).await;
    assert_eq!(body["redis"], false);

    redis.up();
    wait_ready(a, StatusCode::OK).await;
    wait_ready(b, StatusCode::OK).await;
    // Delivery resumes...
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        on_a.send(json!({"type": "message", "session_id": session, "content": "after"}))
            .await;
        let crossed = tokio::time::timeout(Duration::from_millis(500), async {
            until(&mut on_b, |f| {
                f["type"] == "message" && f["message"]["content"] == "after"
            })
            .await
        })
        .await;
        if crossed.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "cross-node delivery did not resume"
        );
    }
    // ...and recovery fills the gap.
    let mut again = b.ws(&member).await;
    again
        .send(json!({"type": "join", "session_id": session, "since_seq": 0}))
        .await;
    // A message still crossing from a may reach the new member just before its `joined`.
    let joined = again.recv_type("joined").await;
    let contents: Vec<&str> = joined["missed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(contents[0], "while redis is down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_plugin_changes_apply_on_every_node() {
    let nodes = setup().start_cluster(2, REDIS).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let admin = a.admin().await;
    let vera = b.user("vera", "viewer").await;
    let session = b.session(&vera, "plugins").await;
    let mut ws = b.ws(&vera).await;
    ws.join(&session).await;
    assert_eq!(ws.command(&session, "/status").await["type"], "message");
    let (status, _) = a
        .post("/admin/plugins/status/disable", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ws.command(&session, "/status").await["code"] != "unknown_command" {
        assert!(Instant::now() < deadline, "node B never disabled /status");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = a
        .post("/admin/plugins/reload", &admin.token, json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ws.command(&session, "/status").await["type"] != "message" {
        assert!(Instant::now() < deadline, "node B never reloaded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assistant_deltas_cross_nodes_in_order() {
    let fake = crate::assistant::Fake::start().await;
    let nodes = setup()
        .set("assistant", "base_url", &format!("{:?}", fake.base_url))
        .set("assistant", "model", "\"test-model\"")
        .start_cluster(2, REDIS)
        .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let shared = Shared::across(a, b, "olga", "mike", "across nodes").await;
    let (mut on_a, mut on_b) = shared.join_both_across(a, b).await;
    let Shared { session, .. } = shared;
    on_a.send(json!({"type": "message", "session_id": session, "content": "hello"}))
        .await;
    // On the other node: every delta once, in order, then the stored reply with their id.
    let mut text = String::new();
    let mut delta_id = Value::Null;
    let reply = loop {
        let f = on_b.recv().await;
        match f["type"].as_str() {
            Some("message_delta") => {
                text.push_str(f["delta"].as_str().unwrap());
                delta_id = f["message_id"].clone();
            }
            Some("message") if f["message"]["role"] == "assistant" => break f,
            _ => {}
        }
    };
    assert_eq!(text, crate::assistant::reply_to("hello"));
    assert_eq!(reply["message"]["content"], text.as_str());
    assert_eq!(reply["message"]["id"], delta_id);
}

/// One assistant reply at a time per session across nodes: a message on node B while node
/// A's reply streams starts no second model call; A answers once more when it is done, with
/// the newer message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_assistant_answers_a_session_one_reply_at_a_time_across_nodes() {
    let fake = crate::assistant::Fake::start().await;
    fake.set_chunk_delay(Duration::from_millis(100));
    let nodes = setup()
        .set("assistant", "base_url", &format!("{:?}", fake.base_url))
        .set("assistant", "model", "\"test-model\"")
        .start_cluster(2, REDIS)
        .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let shared = Shared::across(a, b, "olga", "mike", "one at a time").await;
    let (mut on_a, mut on_b) = shared.join_both_across(a, b).await;
    let Shared { session, .. } = shared;
    on_a.send(json!({"type": "message", "session_id": session, "content": "first"}))
        .await;
    until(&mut on_b, |f| f["type"] == "message_delta").await;
    on_b.send(json!({"type": "message", "session_id": session, "content": "second"}))
        .await;
    let mut replies = Vec::new();
    while replies.len() < 2 {
        let f = until(&mut on_a, |f| {
            f["type"] == "message" && f["message"]["role"] == "assistant"
        })
        .await;
        replies.push(
            f["message"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(
        replies,
        [
            crate::assistant::reply_to("first"),
            crate::assistant::reply_to("second")
        ]
    );
    assert_eq!(
        fake.max_active(),
        1,
        "two model calls for one session at once"
    );
    assert_eq!(fake.requests().len(), 2);
}

/// `max_connections_per_user` counts a user's connections on every node: 3 across 3
/// nodes, not 3 on each; a closed one frees its place on any node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_across_nodes() {
    let nodes = setup()
        .set("realtime", "max_connections_per_user", "3")
        .start_cluster(3, REDIS)
        .await;
    let user = nodes[0].user("uma", "viewer").await;
    let mut held = Vec::new();
    for node in &nodes {
        held.push(node.ws(&user).await);
    }
    for node in &nodes {
        refused_for_connections(node, &user).await;
    }
    // Another user is not affected.
    let other = nodes[1].user("otto", "viewer").await;
    usable(&mut nodes[2].ws(&other).await).await;
    // A place freed on node 1 can be taken on node 0 (node 0 holds one already).
    drop(held.remove(1));
    let mut again = connect_eventually(&nodes[0], &user).await;
    usable(&mut again).await;
    refused_for_connections(&nodes[1], &user).await;
}

/// `commands.rate_burst` is a user's across the cluster: 4 commands spread over 3 nodes use
/// it up, where each node alone would allow 4 more; another user is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_rate_holds_across_nodes() {
    let nodes = setup()
        .set("commands", "rate_burst", "4.0")
        .set("commands", "rate_per_sec", "0.01")
        .start_cluster(3, REDIS)
        .await;
    let user = nodes[0].user("uma", "viewer").await;
    let session = nodes[0].session(&user, "rates").await;
    let mut sockets = joined_on(&nodes, &user, &session).await;
    // (An unknown command costs a token too: the rate is checked before the lookup.)
    for i in 0..4 {
        let answer = sockets[i % 3].command(&session, "/no-such-command").await;
        assert_eq!(answer["code"], "unknown_command", "command {i}: {answer}");
    }
    for ws in &mut sockets {
        let answer = ws.command(&session, "/no-such-command").await;
        assert_eq!(answer["code"], "rate_limited", "{answer}");
    }
    let other = nodes[2].user("otto", "viewer").await;
    let mut ws = nodes[1].ws(&other).await;
    let theirs = nodes[1].session(&other, "theirs").await;
    ws.join(&theirs).await;
    let answer = ws.command(&theirs, "/no-such-command").await;
    assert_eq!(answer["code"], "unknown_command", "{answer}");
}

/// Redis unreachable: the command rate falls back to each node's own bucket (documented:
/// not fail-closed) — commands still run, within the rate on each node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_rate_falls_back_to_each_node_while_redis_is_down() {
    let mut redis = OwnRedis::start();
    let nodes = setup()
        .set("commands", "rate_burst", "2.0")
        .set("commands", "rate_per_sec", "0.01")
        .start_cluster(2, &redis.url())
        .await;
    let user = nodes[0].user("uma", "viewer").await;
    let session = nodes[0].session(&user, "rates").await;
    let mut sockets = joined_on(&nodes, &user, &session).await;
    redis.down();
    for node in &nodes {
        wait_ready(node, StatusCode::SERVICE_UNAVAILABLE).await;
    }
    for ws in &mut sockets {
        for _ in 0..2 {
            let answer = ws.command(&session, "/no-such-command").await;
            assert_eq!(answer["code"], "unknown_command", "{answer}");
        }
        let answer = ws.command(&session, "/no-such-command").await;
        assert_eq!(answer["code"], "rate_limited", "{answer}");
    }
}

/// `auth.login_failures_per_user` counts failures on every node: 3 wrong passwords spread
/// over 3 nodes lock the name out on all of them (the right password included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_failures_count_across_nodes() {
    let nodes = setup()
        .set("auth", "login_failures_per_user", "3")
        .start_cluster(3, REDIS)
        .await;
    nodes[0].user("uma", "viewer").await;
    let login = |password: &'static str| json!({"username": "uma", "password": password});
    for node in &nodes {
        let (status, body) = node
            .call(
                reqwest::Method::POST,
                "/auth/login",
                None,
                Some(login("wrong-password")),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    for node in &nodes {
        let (status, body) = node
            .call(
                reqwest::Method::POST,
                "/auth/login",
                None,
                Some(login("password-123")),
            )
            .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }
}

/// Redis unreachable: each node falls back to its own count (documented: not fail-closed),
/// and once Redis is back the heartbeat counts every open connection again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_falls_back_to_each_node_while_redis_is_down() {
    let mut redis = OwnRedis::start();
    let nodes = setup()
        .set("realtime", "max_connections_per_user", "2")
        .start_cluster(2, &redis.url())
        .await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let user = a.user("uma", "viewer").await;
    let _on_a = [a.ws(&user).await, a.ws(&user).await];
    refused_for_connections(b, &user).await;

    redis.down();
    wait_ready(b, StatusCode::SERVICE_UNAVAILABLE).await;
    let mut on_b = vec![b.ws(&user).await, b.ws(&user).await];
    usable(&mut on_b[0]).await;
    refused_for_connections(b, &user).await;

    redis.up();
    wait_ready(a, StatusCode::OK).await;
    wait_ready(b, StatusCode::OK).await;
    // The heartbeats after Redis returns (every 10 s; the first may find the old
    // connection gone) count all four again: closing one on b does not make room for a new
    // one anywhere.
    drop(on_b.pop());
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let mut ws = b.ws_with_header(Some(&user.token)).await;
        let first = ws.recv().await;
        if first["type"] == "error" {
            assert_eq!(first["code"], "rate_limited", "{first}");
            break;
        }
        assert_eq!(first["type"], "ready", "{first}");
        drop(ws);
        assert!(
            Instant::now() < deadline,
            "the open connections were never counted again after Redis came back"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    refused_for_connections(a, &user).await;
    refused_for_connections(b, &user).await;
}

/// Room events this node received from Redis.
async fn received(node: &Server) -> f64 {
    let text = crate::metrics::scrape(node).await;
    crate::metrics::value(&text, "slashd_cluster_events_received_total")
        .expect("the counter is exposed in cluster mode")
}

/// A node hears only the sessions it has connections in: events of a session nobody on
/// node b is in never reach b; once someone there joins they do; once they leave, not
/// any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_receives_only_its_rooms_events() {
    let nodes = setup().start_cluster(2, REDIS).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let shared = Shared::across(a, b, "olga", "mike", "watched").await;
    let mut on_a = a.ws(&shared.owner).await;
    on_a.join(&shared.session).await;
    for i in 0..5 {
        crate::support::post(&mut on_a, &shared.session, &format!("unheard {i}")).await;
    }
    // Events are published whatever happens; give them time to arrive anywhere.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(received(b).await, 0.0, "b has nobody in the session");

    let mut on_b = b.ws(&shared.member).await;
    on_b.join(&shared.session).await;
    until(&mut on_a, |f| f["type"] == "presence").await;
    crate::support::post(&mut on_a, &shared.session, "heard").await;
    let heard = until(&mut on_b, |f| f["type"] == "message").await;
    assert_eq!(heard["message"]["content"], "heard");
    let after_join = received(b).await;
    assert!(after_join >= 1.0, "{after_join}");

    let left = on_b
        .request(json!({"type": "leave", "session_id": shared.session}))
        .await;
    assert_eq!(left["type"], "left");
    until(&mut on_a, |f| {
        f["type"] == "presence" && f["state"] == "left"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..5 {
        crate::support::post(&mut on_a, &shared.session, &format!("unheard again {i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    // At most the presence `left` that b itself caused may have raced its unsubscribe.
    assert!(
        received(b).await <= after_join + 1.0,
        "b left the session and must not hear it"
    );
}
