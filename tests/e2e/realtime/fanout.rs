//! Fan-out to every tab once in `seq` order, typing to the others only, presence on a
//! user's first connection in and last out, and `session_ended` to everyone in the session.

use std::collections::HashSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{post_frame, refused, seqs};
use crate::harness::{Backend, Server};
use crate::on_both_backends;
use crate::support::{history, post, presence, usable, Shared};

on_both_backends!(
    fanout_reaches_every_tab_once_in_seq_order,
    typing_goes_to_the_others_only,
    presence_on_first_join_and_last_leave,
    session_ended_reaches_everyone,
);

/// Two users, three tabs of the owner: every connection gets every message exactly once in
/// `seq` order; acks carry the stored id and seq (checked against REST history); the ack
/// comes before the sender's own copy.
async fn fanout_reaches_every_tab_once_in_seq_order(backend: Backend) {
    const ROUNDS: usize = 5;
    let server = Server::start(backend).await;
    let Shared {
        owner,
        member,
        session: sid,
    } = Shared::create(&server, "owner", "member", "room").await;

    let mut conns = [
        server.ws(&owner).await,
        server.ws(&owner).await,
        server.ws(&owner).await,
        server.ws(&member).await,
    ];
    let users = [&owner, &owner, &owner, &member];

    let joined = conns[0]
        .request(json!({"type": "join", "session_id": sid, "id": "j0"}))
        .await;
    assert_eq!(
        joined,
        json!({"type": "joined", "id": "j0", "session_id": sid, "participants": [owner.id],
               "last_seq": 0, "missed": [], "has_more": false})
    );
    let joined = conns[3]
        .request(json!({"type": "join", "session_id": sid, "id": 3}))
        .await;
    assert_eq!(
        joined,
        json!({"type": "joined", "id": 3, "session_id": sid, "participants": [owner.id, member.id],
               "last_seq": 0, "missed": [], "has_more": false})
    );
    assert_eq!(conns[0].recv().await, presence(&sid, &member, "joined"));
    for tab in &mut conns[1..3] {
        let joined = tab.join(&sid).await;
        assert_eq!(
            joined["participants"],
            json!([owner.id, member.id]),
            "{joined}"
        );
        assert_eq!(joined["missed"], json!([]));
    }

    // Every connection posts ROUNDS messages, interleaved and pipelined.
    for round in 0..ROUNDS {
        for (c, ws) in conns.iter_mut().enumerate() {
            let id = format!("c{c}-r{round}");
            ws.send(post_frame(
                &sid,
                &format!("hello from {c} #{round}"),
                json!(id),
            ))
            .await;
        }
    }

    let total = ROUNDS * conns.len();
    let mut views: Vec<Vec<Value>> = Vec::new();
    for (c, ws) in conns.iter_mut().enumerate() {
        let mut messages: Vec<Value> = Vec::new();
        let mut acks: Vec<Value> = Vec::new();
        while messages.len() < total || acks.len() < ROUNDS {
            let frame = ws.recv().await;
            match frame["type"].as_str().unwrap() {
                "ack" => {
                    // The sender's own copy of this message must not have arrived yet.
                    assert!(
                        !messages.iter().any(|m| m["seq"] == frame["seq"]),
                        "conn {c}: ack after its own broadcast copy: {frame}"
                    );
                    acks.push(frame);
                }
                "message" => {
                    assert_eq!(frame["session_id"], sid.as_str());
                    messages.push(frame["message"].clone());
                }
                _ => panic!("conn {c}: unexpected frame {frame}"),
            }
        }
        assert_eq!(
            seqs(&messages),
            (1..=total as i64).collect::<Vec<_>>(),
            "conn {c}"
        );
        // Acks: in posting order, each naming the stored message.
        for (round, ack) in acks.iter().enumerate() {
            let keys: Vec<&String> = ack.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 4, "{ack}");
            assert_eq!(ack["id"], format!("c{c}-r{round}"));
            let seq = ack["seq"].as_i64().unwrap();
            let stored = &messages[seq as usize - 1];
            assert_eq!(stored["id"], ack["message_id"], "{ack} vs {stored}");
            assert_eq!(stored["content"], format!("hello from {c} #{round}"));
            assert_eq!(stored["user_id"], users[c].id.as_str());
            assert_eq!(stored["role"], "user");
            assert_eq!(stored["session_id"], sid.as_str());
            assert_eq!(stored["metadata"], json!({}));
            assert!(stored["created_at"].is_string(), "{stored}");
        }
        let ack_seqs: Vec<i64> = acks.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
        assert!(
            ack_seqs.windows(2).all(|w| w[0] < w[1]),
            "conn {c}: acks out of order {ack_seqs:?}"
        );
        views.push(messages);
    }
    for (c, view) in views.iter().enumerate() {
        assert_eq!(
            view, &views[0],
            "conn {c} saw a different history than conn 0"
        );
    }
    let ids: HashSet<&str> = views[0].iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), total, "message ids are unique");

    // What the sockets saw is exactly what was stored.
    assert_eq!(history(&server, &sid, &member.token).await, views[0]);
    assert_eq!(history(&server, &sid, &owner.token).await, views[0]);
    // Nothing else is pending anywhere.
    for ws in conns.iter_mut() {
        usable(ws).await;
    }
}

/// `typing` reaches the other user's connections and none of the typist's own tabs.
async fn typing_goes_to_the_others_only(backend: Backend) {
    let server = Server::start(backend).await;
    let Shared {
        owner,
        member,
        session: sid,
    } = Shared::create(&server, "owner", "member", "room").await;

    let mut m = server.ws(&member).await;
    m.join(&sid).await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let mut tab = server.ws(&owner).await;
        tab.join(&sid).await;
        tabs.push(tab);
    }
    assert_eq!(m.recv().await, presence(&sid, &owner, "joined"));

    tabs[0]
        .send(json!({"type": "typing", "session_id": sid, "state": true, "id": "t1"}))
        .await;
    assert_eq!(
        m.recv().await,
        json!({"type": "typing", "session_id": sid, "user_id": owner.id, "state": true})
    );
    // The member now posts: for every tab of the typist, that message is the next frame —
    // so no typing frame was queued to any of them (fan-out is ordered per room).
    let message = post(&mut m, &sid, "after typing").await;
    for tab in tabs.iter_mut() {
        let frame = tab.recv().await;
        assert_eq!(
            frame,
            json!({"type": "message", "session_id": sid, "message": message})
        );
    }

    // And the other way round: the member types, every owner tab sees it, the member not.
    m.send(json!({"type": "typing", "session_id": sid, "state": false}))
        .await;
    for tab in tabs.iter_mut() {
        assert_eq!(
            tab.recv().await,
            json!({"type": "typing", "session_id": sid, "user_id": member.id, "state": false})
        );
    }
    let message = post(&mut tabs[1], &sid, "owner speaks").await;
    assert_eq!(
        m.recv().await,
        json!({"type": "message", "session_id": sid, "message": message})
    );
    for i in [0, 2] {
        assert_eq!(
            tabs[i].recv().await,
            json!({"type": "message", "session_id": sid, "message": message})
        );
    }
    for ws in tabs.iter_mut().chain(std::iter::once(&mut m)) {
        usable(ws).await;
    }
}

/// `presence` joined/left only for a user's first connection in and last connection out,
/// whether it leaves by `leave` or by disconnecting.
async fn presence_on_first_join_and_last_leave(backend: Backend) {
    let server = Server::start(backend).await;
    let Shared {
        owner,
        member,
        session: sid,
    } = Shared::create(&server, "owner", "member", "room").await;

    let mut m = server.ws(&member).await;
    let joined = m.join(&sid).await;
    assert_eq!(joined["participants"], json!([member.id]));

    let mut a = server.ws(&owner).await;
    let joined = a.join(&sid).await;
    assert_eq!(joined["participants"], json!([member.id, owner.id]));
    assert_eq!(m.recv().await, presence(&sid, &owner, "joined"));

    // A second owner tab: no presence for the member.
    let mut b = server.ws(&owner).await;
    let joined = b.join(&sid).await;
    assert_eq!(joined["participants"], json!([member.id, owner.id]));
    // The first tab leaves: still present through the second, so still no presence.
    let left = a
        .request(json!({"type": "leave", "session_id": sid, "id": "bye"}))
        .await;
    assert_eq!(
        left,
        json!({"type": "left", "id": "bye", "session_id": sid})
    );
    // The second tab disconnects: the owner's last connection is gone.
    b.stream.close(None).await.expect("close");
    // The member's very next frame is the owner's departure: nothing for b's join or a's leave.
    assert_eq!(m.recv().await, presence(&sid, &owner, "left"));

    // Back in through the first tab: joined again.
    let joined = a.join(&sid).await;
    assert_eq!(joined["participants"], json!([member.id, owner.id]));
    assert_eq!(m.recv().await, presence(&sid, &owner, "joined"));

    // The member leaves by frame; the owner sees it; leaving twice is refused.
    let left = m.request(json!({"type": "leave", "session_id": sid})).await;
    assert_eq!(left, json!({"type": "left", "session_id": sid}));
    assert_eq!(a.recv().await, presence(&sid, &member, "left"));
    refused(
        &mut m,
        &json!({"type": "leave", "session_id": sid, "id": 1}).to_string(),
        "bad_request",
        Some(json!(1)),
    )
    .await;

    // The member comes back, then drops the TCP connection without a close handshake.
    m.join(&sid).await;
    assert_eq!(a.recv().await, presence(&sid, &member, "joined"));
    drop(m);
    assert_eq!(a.recv().await, presence(&sid, &member, "left"));
    let joined = a.join(&sid).await;
    assert_eq!(
        joined["participants"],
        json!([owner.id]),
        "the dropped connection was cleaned up"
    );
    usable(&mut a).await;
}

/// Ending a session over REST sends `session_ended` to every connection in it (all tabs);
/// the session can then be neither posted to nor joined; others are not told.
async fn session_ended_reaches_everyone(backend: Backend) {
    let server = Server::start(backend).await;
    let Shared {
        owner,
        member,
        session: sid,
    } = Shared::create(&server, "owner", "member", "room").await;
    let other = server.user("other", "viewer").await;
    let elsewhere = server.session(&other, "elsewhere").await;

    let mut m = server.ws(&member).await;
    m.join(&sid).await;
    let mut tabs = Vec::new();
    for _ in 0..3 {
        let mut tab = server.ws(&owner).await;
        tab.join(&sid).await;
        tabs.push(tab);
    }
    assert_eq!(m.recv().await, presence(&sid, &owner, "joined"));
    let mut outsider = server.ws(&other).await;
    outsider.join(&elsewhere).await;

    let (status, body) = server
        .call(
            Method::DELETE,
            &format!("/chat/sessions/{sid}"),
            Some(&owner.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ended");

    let ended = json!({"type": "session_ended", "session_id": sid});
    for ws in tabs.iter_mut().chain(std::iter::once(&mut m)) {
        assert_eq!(ws.recv().await, ended);
    }
    // The outsider's next frame is its own pong: it was not told.
    usable(&mut outsider).await;

    for ws in tabs.iter_mut().chain(std::iter::once(&mut m)) {
        usable(ws).await;
        let raw = post_frame(&sid, "too late", json!("late")).to_string();
        refused(ws, &raw, "bad_request", Some(json!("late"))).await;
        let raw = json!({"type": "join", "session_id": sid, "id": "rejoin"}).to_string();
        refused(ws, &raw, "bad_request", Some(json!("rejoin"))).await;
        let raw = json!({"type": "typing", "session_id": sid, "state": true, "id": 5}).to_string();
        refused(ws, &raw, "bad_request", Some(json!(5))).await;
    }
    let messages = history(&server, &sid, &owner.token).await;
    assert!(messages.is_empty(), "{messages:?}");
}
