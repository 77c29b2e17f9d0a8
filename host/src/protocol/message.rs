//! The one wire shape of a chat message: what `message` frames, `joined.missed` and REST
//! history pages carry. The stored row (`store::Message`) is the database's; this is the
//! client's, built from a row or, for an ephemeral command reply, from parts never stored.

use serde::Serialize;
use serde_json::Value;

use crate::store::{Message, MessageRole};
use crate::time_fmt;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Message)]
pub struct WireMessage<'a> {
    pub id: &'a str,
    pub session_id: &'a str,
    /// The message's place in its session; `null` only for an ephemeral command reply,
    /// which is not stored.
    #[schema(required = true)]
    pub seq: Option<i64>,
    pub role: MessageRole,
    /// The poster of a `user` message; `null` for the others.
    #[schema(required = true)]
    pub user_id: Option<&'a str>,
    pub content: &'a str,
    #[schema(value_type = Object)]
    pub metadata: &'a Value,
    #[serde(serialize_with = "time_fmt::serialize")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
}

impl<'a> From<&'a Message> for WireMessage<'a> {
    fn from(m: &'a Message) -> Self {
        WireMessage {
            id: &m.id,
            session_id: &m.session_id,
            seq: Some(m.seq),
            role: m.role,
            user_id: m.user_id.as_deref(),
            content: &m.content,
            metadata: &m.metadata,
            created_at: m.created_at,
        }
    }
}

/// Serialize stored messages as their wire shape, without building a copy (for
/// `#[serde(serialize_with)]` on a page or a `joined.missed`).
pub fn serialize_all<M, S>(messages: &M, s: S) -> Result<S::Ok, S::Error>
where
    M: AsRef<[Message]>,
    S: serde::Serializer,
{
    s.collect_seq(messages.as_ref().iter().map(WireMessage::from))
}
