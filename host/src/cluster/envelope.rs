//! What nodes tell each other over Redis, and how a node knows it came from a node.
//!
//! On the wire an envelope is `v1.<hex HMAC-SHA256>.<JSON>`: the MAC, under the cluster
//! key, covers the JSON, which carries the time it was sealed. A node opens an envelope
//! only if the MAC is right (compared in constant time), it is at most `MAX_AGE` old or
//! ahead, and every field is what a node would have sent: ids shaped as ids, a room frame
//! that is a server frame for that very session, a message's seq equal to the seq of the
//! message it carries. Anyone who can publish on the channel without the key — or replay
//! an old envelope — is ignored.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::config::{valid_plugin_name, Config};
use crate::store::valid_user_id;

type HmacSha256 = Hmac<Sha256>;

const VERSION: &str = "v1";
/// How far an envelope's timestamp may be from this node's clock, either way (ms).
const MAX_AGE_MS: i64 = 30_000;
/// Largest envelope accepted (a room frame is at most a stored message plus framing).
const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;
/// Largest seq a message can have (JSON numbers are exact up to 2^53).
const MAX_SEQ: i64 = 1 << 53;
/// Server frames that cross nodes.
const ROOM_FRAMES: &[&str] = &[
    "message",
    "presence",
    "typing",
    "session_ended",
    "message_delta",
    "error",
];

/// What nodes tell each other.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Envelope {
    Room {
        node: String,
        session_id: String,
        frame: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        skip_user: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seq: Option<i64>,
    },
    /// A user was removed from a session: their connections leave its room.
    Expel {
        node: String,
        session_id: String,
        user_id: String,
    },
    /// Reload the plugins from config.
    Reload { node: String },
    /// An admin enabled or disabled a plugin.
    PluginState {
        node: String,
        name: String,
        enabled: bool,
    },
}

/// The sealed form: the envelope and when it was sealed.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sealed<E> {
    at: i64,
    envelope: E,
}

impl Envelope {
    pub fn node(&self) -> &str {
        match self {
            Envelope::Room { node, .. }
            | Envelope::Expel { node, .. }
            | Envelope::Reload { node }
            | Envelope::PluginState { node, .. } => node,
        }
    }

    /// Is every field what a node would send?
    fn check(&self) -> Result<(), &'static str> {
        let node = self.node();
        if node.is_empty() || node.len() > 64 {
            return Err("bad node id");
        }
        match self {
            Envelope::Room {
                session_id,
                frame,
                skip_user,
                seq,
                ..
            } => {
                uuid::Uuid::try_parse(session_id).map_err(|_| "bad session id")?;
                if skip_user.as_deref().is_some_and(|u| !valid_user_id(u)) {
                    return Err("bad skip_user");
                }
                check_frame(session_id, frame, *seq)
            }
            Envelope::Expel {
                session_id,
                user_id,
                ..
            } => {
                uuid::Uuid::try_parse(session_id).map_err(|_| "bad session id")?;
                valid_user_id(user_id).then_some(()).ok_or("bad user id")
            }
            Envelope::Reload { .. } => Ok(()),
            Envelope::PluginState { name, .. } => valid_plugin_name(name)
                .then_some(())
                .ok_or("bad plugin name"),
        }
    }
}

/// A room frame must be a server frame of a kind that crosses nodes, for this session;
/// a `message` frame carries the envelope's seq.
fn check_frame(session_id: &str, frame: &str, seq: Option<i64>) -> Result<(), &'static str> {
    let value: Value = serde_json::from_str(frame).map_err(|_| "frame is not JSON")?;
    let ty = value["type"].as_str().ok_or("frame has no type")?;
    if !ROOM_FRAMES.contains(&ty) {
        return Err("frame type does not cross nodes");
    }
    // An `error` to a room (the assistant failed) names no session; every other frame
    // names this one.
    let names_session = match ty {
        "error" => value["code"] == "assistant_failed" && value.get("session_id").is_none(),
        _ => value["session_id"].as_str() == Some(session_id),
    };
    if !names_session {
        return Err("frame is for another session");
    }
    match (ty, seq) {
        ("message", Some(seq)) => {
            if !(1..=MAX_SEQ).contains(&seq) {
                return Err("seq out of range");
            }
            let message = &value["message"];
            if message["seq"].as_i64() != Some(seq) || message["session_id"] != value["session_id"]
            {
                return Err("message does not match its seq");
            }
            Ok(())
        }
        ("message", None) | (_, Some(_)) => Err("seq and frame type disagree"),
        _ => Ok(()),
    }
}

/// The key that seals and opens envelopes (an HMAC keyed once, cloned per use).
pub struct ClusterKey(HmacSha256);

impl ClusterKey {
    /// `cluster.secret`, or a key derived from `auth.jwt_secret` (every node shares it
    /// already); config validation makes sure one of them is set in cluster mode.
    pub fn from_config(config: &Config) -> anyhow::Result<ClusterKey> {
        match (&config.cluster.secret, &config.auth.jwt_secret) {
            (Some(secret), _) => ClusterKey::new(secret.as_bytes()),
            (None, Some(jwt_secret)) => {
                let mut mac = HmacSha256::new_from_slice(jwt_secret.as_bytes())
                    .map_err(|_| anyhow::anyhow!("cannot derive the cluster key"))?;
                mac.update(b"slashd cluster envelope key v1");
                ClusterKey::new(&mac.finalize().into_bytes())
            }
            (None, None) => anyhow::bail!("cluster mode needs cluster.secret or auth.jwt_secret"),
        }
    }

    fn new(key: &[u8]) -> anyhow::Result<ClusterKey> {
        HmacSha256::new_from_slice(key)
            .map(ClusterKey)
            .map_err(|_| anyhow::anyhow!("invalid cluster key"))
    }

    fn mac(&self) -> HmacSha256 {
        self.0.clone()
    }

    /// The wire form of `envelope`, sealed at `now_ms`.
    pub fn seal(&self, envelope: &Envelope, now_ms: i64) -> Option<String> {
        let json = serde_json::to_string(&Sealed {
            at: now_ms,
            envelope,
        })
        .ok()?;
        let mut mac = self.mac();
        mac.update(json.as_bytes());
        let tag = hex::encode(mac.finalize().into_bytes());
        Some(format!("{VERSION}.{tag}.{json}"))
    }

    /// Verify and decode a payload from Redis; the error says why it was dropped.
    pub fn open(&self, payload: &[u8], now_ms: i64) -> Result<Envelope, &'static str> {
        if payload.len() > MAX_ENVELOPE_BYTES {
            return Err("too large");
        }
        let text = std::str::from_utf8(payload).map_err(|_| "not UTF-8")?;
        let rest = text
            .strip_prefix(VERSION)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or("not a sealed envelope")?;
        let (tag, json) = rest.split_once('.').ok_or("not a sealed envelope")?;
        let tag = hex::decode(tag).map_err(|_| "bad MAC encoding")?;
        let mut mac = self.mac();
        mac.update(json.as_bytes());
        mac.verify_slice(&tag).map_err(|_| "bad MAC")?;
        let sealed: Sealed<Envelope> = serde_json::from_str(json).map_err(|_| "malformed")?;
        if now_ms.abs_diff(sealed.at) > MAX_AGE_MS as u64 {
            return Err("stale or from the future");
        }
        sealed.envelope.check()?;
        Ok(sealed.envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SESSION: &str = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    const NOW: i64 = 1_800_000_000_000;

    fn key() -> ClusterKey {
        ClusterKey::new(&b"k".repeat(32)).unwrap()
    }

    fn room(frame: Value, seq: Option<i64>) -> Envelope {
        Envelope::Room {
            node: "node-a".into(),
            session_id: SESSION.into(),
            frame: frame.to_string(),
            skip_user: None,
            seq,
        }
    }

    fn message(seq: i64) -> Value {
        serde_json::json!({
            "type": "message",
            "session_id": SESSION,
            "message": {"session_id": SESSION, "seq": seq, "content": "hi"},
        })
    }

    #[test]
    fn sealed_envelopes_open() {
        let sealed = key().seal(&room(message(7), Some(7)), NOW).unwrap();
        assert!(key().open(sealed.as_bytes(), NOW + 1000).is_ok());
    }

    #[test]
    fn refuses_what_a_node_would_not_send() {
        let check = |payload: String, now: i64, why: &str| {
            assert_eq!(
                key().open(payload.as_bytes(), now).unwrap_err(),
                why,
                "{payload}"
            )
        };
        let good = key().seal(&room(message(7), Some(7)), NOW).unwrap();
        // Unauthenticated: the old plain JSON form, a wrong key, a tampered body.
        check(
            r#"{"kind":"reload","node":"x"}"#.into(),
            NOW,
            "not a sealed envelope",
        );
        let other = ClusterKey::new(&b"z".repeat(32))
            .unwrap()
            .seal(&room(message(7), Some(7)), NOW);
        check(other.unwrap(), NOW, "bad MAC");
        check(good.replace("hi", "ho"), NOW, "bad MAC");
        // Replayed later, or sealed in the future.
        check(good.clone(), NOW + 31_000, "stale or from the future");
        check(good, NOW - 31_000, "stale or from the future");
        // Sealed with the key but not what a node sends.
        let sealed = |e: Envelope| key().seal(&e, NOW).unwrap();
        check(
            sealed(room(message(1_000_000_000), Some(7))),
            NOW,
            "message does not match its seq",
        );
        check(
            sealed(room(message(1 << 54), Some(1 << 54))),
            NOW,
            "seq out of range",
        );
        check(
            sealed(room(message(7), None)),
            NOW,
            "seq and frame type disagree",
        );
        check(
            sealed(room(serde_json::json!({"type": "ready"}), None)),
            NOW,
            "frame type does not cross nodes",
        );
        let elsewhere = serde_json::json!({"type": "typing", "session_id": "x"});
        check(
            sealed(room(elsewhere, None)),
            NOW,
            "frame is for another session",
        );
        let forged_error = serde_json::json!({"type": "error", "code": "unauthorized"});
        check(
            sealed(room(forged_error, None)),
            NOW,
            "frame is for another session",
        );
        let failed = serde_json::json!({"type": "error", "code": "assistant_failed"});
        assert!(key()
            .open(sealed(room(failed, None)).as_bytes(), NOW)
            .is_ok());
        let bad_plugin = Envelope::PluginState {
            node: "n".into(),
            name: "../help".into(),
            enabled: false,
        };
        check(sealed(bad_plugin), NOW, "bad plugin name");
    }
}
