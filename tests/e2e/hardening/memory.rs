//! SPEC A — memory and joins: a per-connection outbound byte cap, repeat joins that never
//! re-read history, `recovery_max_bytes` on `joined.missed`, and recovery budgets per
//! connection and per user.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::{json_bytes, post_many, user_in_own_session};
use crate::harness::{rss_kib_of, Backend, Server, Setup, User, Ws};
use crate::on_both_backends;
use crate::support::{post, usable, Shared};

on_both_backends!(
    join_flood_from_a_non_reader_keeps_memory_bounded,
    a_repeat_join_reads_no_history,
    missed_is_cut_at_recovery_max_bytes,
    recovery_budget_per_connection,
    recovery_budget_per_user,
);

/// Growth of the server's RSS over its baseline that the join flood may cause. The flood
/// asks for 1,000 × ~2.2 MB of backlog; with the outbound byte cap (8 MiB), the 1 MiB
/// `missed` cap and the recovery budgets, what the server holds for the connection is a few
/// MiB at a time. 64 MiB leaves room for allocator slack and the database's page cache.
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;
/// Past this growth the server is killed at once (the test has failed by then anyway), so
/// an unfixed server cannot take the machine's memory with it.
const RSS_KILL_KIB: u64 = 2 * RSS_GROWTH_BOUND_KIB;

/// An owner and a member of a session `title`, with the owner's connection joined to it and
/// `n` messages of `chars` characters posted on it.
async fn posted_backlog(
    server: &Server,
    title: &str,
    n: usize,
    chars: usize,
) -> (User, User, String, Ws) {
    let Shared {
        owner,
        member,
        session: sid,
    } = Shared::create(server, "owner", "member", title).await;
    let mut poster = server.ws(&owner).await;
    poster.join(&sid).await;
    post_many(&mut poster, &sid, n, chars).await;
    (owner, member, sid, poster)
}

/// A session with 300 messages of ~7,000 characters; a client that never reads sends
/// 1,000 joins (repeat joins with `since_seq: 0` and leave+join cycles) as fast as it can.
/// The server's memory stays within [`RSS_GROWTH_BOUND_KIB`] of its baseline (or it closes
/// the connection), and a normal client is served afterwards.
async fn join_flood_from_a_non_reader_keeps_memory_bounded(backend: Backend) {
    let mut server = Setup::new(backend)
        .set("realtime", "rate_per_sec", "100000.0")
        .set("realtime", "rate_burst", "100000.0")
        .set("realtime", "flood_strikes", "100000.0")
        .start()
        .await;
    // The poster's connection stays open through the flood.
    let (_, member, sid, _poster) = posted_backlog(&server, "big backlog", 300, 7000).await;

    let pid = server.pid();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = server.rss_kib();
    assert!(baseline > 0, "cannot read the server's RSS");
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(baseline));
    let sampler = tokio::spawn({
        let (stop, killed, peak) = (stop.clone(), killed.clone(), peak.clone());
        async move {
            while !stop.load(Ordering::Relaxed) {
                let rss = rss_kib_of(pid);
                peak.fetch_max(rss, Ordering::Relaxed);
                if rss > baseline + RSS_KILL_KIB {
                    killed.store(true, Ordering::Relaxed);
                    let _ = std::process::Command::new("kill")
                        .args(["-KILL", &pid.to_string()])
                        .status();
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });

    // The non-reader: it joins once, then floods without ever reading.
    let mut flood = server.ws(&member).await;
    flood.join(&sid).await;
    let mut sent = 0;
    let mut closed_while_sending = false;
    'flood: for i in 0..1000usize {
        let frames = if i % 2 == 0 {
            vec![json!({"type": "join", "session_id": sid, "since_seq": 0, "id": i})]
        } else {
            vec![
                json!({"type": "leave", "session_id": sid}),
                json!({"type": "join", "session_id": sid, "since_seq": 0, "id": i}),
            ]
        };
        for frame in frames {
            let send = flood.stream.feed(Message::text(frame.to_string()));
            match tokio::time::timeout(Duration::from_secs(2), send).await {
                Ok(Ok(())) => {}
                // The server closed the connection (or stopped reading it): allowed.
                _ => {
                    closed_while_sending = true;
                    break 'flood;
                }
            }
        }
        sent += 1;
        if i % 16 == 15 && flood.stream.flush().await.is_err() {
            closed_while_sending = true;
            break;
        }
        if killed.load(Ordering::Relaxed) {
            break;
        }
    }
    let _ = flood.stream.flush().await;
    // Let the server work through what it has read: until its join counter stops moving
    // for a second (all processed, or the connection closed), it is killed, or 12 s pass.
    let settle = Instant::now() + Duration::from_secs(12);
    let (mut last, mut still) = (None, 0);
    while Instant::now() < settle && !killed.load(Ordering::Relaxed) && still < 5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(resp) = server
            .http
            .get(format!("{}/metrics", server.base))
            .send()
            .await
        else {
            break;
        };
        let text = resp.text().await.unwrap_or_default();
        let joins = crate::metrics::value(&text, "slashd_session_joins_total");
        if joins == last {
            still += 1;
        } else {
            (last, still) = (joins, 0);
        }
    }
    stop.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    assert!(
        !killed.load(Ordering::Relaxed),
        "server RSS grew past {RSS_KILL_KIB} KiB over its baseline of {baseline} KiB (bound \
         {RSS_GROWTH_BOUND_KIB} KiB) during a join flood of {sent} rounds: killed"
    );
    assert!(
        growth < RSS_GROWTH_BOUND_KIB,
        "server RSS grew {growth} KiB (bound {RSS_GROWTH_BOUND_KIB} KiB) over {baseline} KiB \
         during a join flood of {sent} rounds (closed while sending: {closed_while_sending})"
    );
    assert!(server.alive(), "the server died");
    drop(flood);

    // A normal client is served.
    let (_, own, mut ws) = user_in_own_session(&server, "other", "fresh").await;
    post(&mut ws, &own, "still serving").await;
    usable(&mut ws).await;
}

/// Joining a session the connection is already in answers `joined` (echoing the id) with
/// `missed: []`, `has_more: false`, the participants and `last_seq`: history is not re-read,
/// whatever `since_seq` says.
async fn a_repeat_join_reads_no_history(backend: Backend) {
    let server = Server::start(backend).await;
    let owner = server.user("owner", "viewer").await;
    let sid = server.session(&owner, "room").await;
    let mut ws = server.ws(&owner).await;
    let first = ws
        .request(json!({"type": "join", "session_id": sid, "since_seq": 0, "id": "first"}))
        .await;
    assert_eq!(first["type"], "joined", "{first}");
    for i in 0..3 {
        post(&mut ws, &sid, &format!("m{i}")).await;
    }
    for since in [json!(0), json!(1), Value::Null] {
        let mut frame = json!({"type": "join", "session_id": sid, "id": "again"});
        if !since.is_null() {
            frame["since_seq"] = since.clone();
        }
        let again = ws.request(frame).await;
        assert_eq!(
            again,
            json!({"type": "joined", "id": "again", "session_id": sid, "participants": [owner.id],
                   "last_seq": 3, "missed": [], "has_more": false}),
            "repeat join with since_seq {since}"
        );
    }
    // Leaving and joining again is a new join: it recovers.
    let left = ws
        .request(json!({"type": "leave", "session_id": sid}))
        .await;
    assert_eq!(left["type"], "left", "{left}");
    let rejoined = ws
        .request(json!({"type": "join", "session_id": sid, "since_seq": 1}))
        .await;
    assert_eq!(
        rejoined["missed"].as_array().unwrap().len(),
        2,
        "{rejoined}"
    );
    usable(&mut ws).await;
}

/// Seqs of a `missed` list.
fn seqs(missed: &Value) -> Vec<i64> {
    missed
        .as_array()
        .expect("missed is a list")
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

/// `recovery_max_bytes`: the messages of one `joined.missed` total at most that many bytes
/// of JSON, `has_more` says it was cut, and joining again from the last one recovered gets
/// the rest with nothing lost. A single message bigger than the cap is still sent alone.
async fn missed_is_cut_at_recovery_max_bytes(backend: Backend) {
    const CAP: usize = 20_000;
    let server = Setup::new(backend)
        .set("realtime", "recovery_max_bytes", &CAP.to_string())
        .set("realtime", "max_content_chars", "30000")
        .set("realtime", "rate_per_sec", "1000.0")
        .set("realtime", "rate_burst", "1000.0")
        .start()
        .await;
    let (_, member, sid, mut o) = posted_backlog(&server, "room", 12, 4000).await;
    // One message larger than the cap on its own.
    post(&mut o, &sid, &"h".repeat(25_000)).await;

    let mut recovered: Vec<i64> = Vec::new();
    let mut since = 0;
    loop {
        // A fresh connection each time: a new join, with its own recovery budget.
        let mut m = server.ws(&member).await;
        let joined = m
            .request(json!({"type": "join", "session_id": sid, "since_seq": since, "id": since}))
            .await;
        assert_eq!(joined["type"], "joined", "{joined}");
        assert_eq!(joined["id"], since);
        assert_eq!(joined["last_seq"], 13);
        let missed = joined["missed"].as_array().unwrap().clone();
        assert!(
            !missed.is_empty(),
            "at least one message is always included: {since}"
        );
        let bytes = json_bytes(&missed);
        if missed.len() > 1 {
            assert!(
                bytes <= CAP,
                "missed after {since} holds {bytes} bytes of JSON in {} messages (cap {CAP})",
                missed.len()
            );
        }
        let got = seqs(&joined["missed"]);
        let last = *got.last().unwrap();
        assert_eq!(
            joined["has_more"],
            last < 13,
            "has_more after {since}: got seqs {got:?}"
        );
        recovered.extend(got);
        if last == 13 {
            break;
        }
        since = last;
        assert!(recovered.len() <= 13, "{recovered:?}");
    }
    assert_eq!(
        recovered,
        (1..=13).collect::<Vec<_>>(),
        "nothing lost, nothing twice"
    );
    // The first page was cut: 12 messages of ~4.2 KB never fit in 20,000 bytes.
    let mut m = server.ws(&member).await;
    let joined = m
        .request(json!({"type": "join", "session_id": sid, "since_seq": 0}))
        .await;
    assert_eq!(joined["has_more"], true, "{}", joined["has_more"]);
    assert!(seqs(&joined["missed"]).len() < 12);
}

/// Past a connection's recovery budget (burst 4 × `recovery_max_bytes`, refilled at
/// `recovery_bytes_per_sec`) a join still answers `joined`, with fewer (maybe no) missed
/// messages and `has_more: true`.
async fn recovery_budget_per_connection(backend: Backend) {
    const CAP: usize = 20_000;
    const RATE: usize = 1000;
    let server = Setup::new(backend)
        .set("realtime", "recovery_max_bytes", &CAP.to_string())
        .set("realtime", "recovery_bytes_per_sec", &RATE.to_string())
        .set("realtime", "rate_per_sec", "1000.0")
        .set("realtime", "rate_burst", "1000.0")
        .start()
        .await;
    let (_, sid, mut o) = user_in_own_session(&server, "owner", "room").await;
    post_many(&mut o, &sid, 12, 4000).await;
    let left = o.request(json!({"type": "leave", "session_id": sid})).await;
    assert_eq!(left["type"], "left");

    let started = Instant::now();
    let mut counts = Vec::new();
    let mut delivered = 0;
    for i in 0..12 {
        let joined = o
            .request(json!({"type": "join", "session_id": sid, "since_seq": 0, "id": i}))
            .await;
        assert_eq!(joined["type"], "joined", "cycle {i}: {joined}");
        assert_eq!(joined["has_more"], true, "cycle {i}: 12 messages never fit");
        let missed = joined["missed"].as_array().unwrap();
        delivered += json_bytes(missed);
        counts.push(missed.len());
        let left = o.request(json!({"type": "leave", "session_id": sid})).await;
        assert_eq!(left["type"], "left");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = 4 * CAP + (RATE as f64 * (elapsed + 1.0)) as usize + CAP;
    assert!(
        delivered <= allowed,
        "one connection recovered {delivered} bytes in {elapsed:.1}s; budget allows ~{allowed} \
         (missed per cycle: {counts:?})"
    );
    assert!(
        counts.last() < counts.first(),
        "later joins must get fewer messages: {counts:?}"
    );
    usable(&mut o).await;
}

/// Past a user's recovery budget (burst 4 × `recovery_user_bytes_per_sec`) joins on fresh
/// connections still answer `joined`, with fewer (maybe no) missed and `has_more: true`.
async fn recovery_budget_per_user(backend: Backend) {
    const CAP: usize = 20_000;
    const USER_RATE: usize = 10_000;
    let server = Setup::new(backend)
        .set("realtime", "recovery_max_bytes", &CAP.to_string())
        .set(
            "realtime",
            "recovery_user_bytes_per_sec",
            &USER_RATE.to_string(),
        )
        .set("realtime", "max_connections_per_user", "32")
        .set("realtime", "rate_per_sec", "1000.0")
        .set("realtime", "rate_burst", "1000.0")
        .start()
        .await;
    // The poster's connection stays open while the member recovers.
    let (owner, member, sid, _poster) = posted_backlog(&server, "room", 12, 4000).await;

    let started = Instant::now();
    let mut counts = Vec::new();
    let mut delivered = 0;
    let mut conns = Vec::new();
    for i in 0..10 {
        let mut m = server.ws(&member).await;
        let joined = m
            .request(json!({"type": "join", "session_id": sid, "since_seq": 0, "id": i}))
            .await;
        assert_eq!(joined["type"], "joined", "connection {i}: {joined}");
        assert_eq!(joined["has_more"], true, "connection {i}");
        let missed = joined["missed"].as_array().unwrap();
        delivered += json_bytes(missed);
        counts.push(missed.len());
        conns.push(m);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let allowed = 4 * USER_RATE + (USER_RATE as f64 * (elapsed + 1.0)) as usize + CAP;
    assert!(
        delivered <= allowed,
        "one user recovered {delivered} bytes over 10 connections in {elapsed:.1}s; the user \
         budget allows ~{allowed} (missed per connection: {counts:?})"
    );
    assert!(
        counts.last() < counts.first(),
        "later joins must get fewer messages: {counts:?}"
    );
    // Another user has a budget of their own.
    let mut fresh = server.ws(&owner).await;
    let joined = fresh
        .request(json!({"type": "join", "session_id": sid, "since_seq": 0}))
        .await;
    assert!(!joined["missed"].as_array().unwrap().is_empty(), "{joined}");
}
