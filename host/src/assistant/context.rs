//! The prompt: the system prompt, then the session's recent messages — the same selection
//! as `GET /chat/sessions/{id}/context` (user, assistant and system messages; no commands)
//! — within a character budget.
//!
//! Two rules beyond the selection:
//! - **Budget**: message content counts against `max_context_chars` (the system prompt does
//!   not); the oldest messages are dropped first. The newest message is always sent, cut to
//!   the budget if it alone is larger.
//! - **Replies follow what they answered**: an assistant reply records (`metadata.reply_to`)
//!   the newest message it had seen. Messages that arrived while it was being written are
//!   stored before it, but the model is shown them after it, so that the next reply answers
//!   them rather than seeming already to have done so.

use crate::store::{Message, MessageRole};

use super::client::ChatMessage;

/// What to send, and the newest message it answers.
#[derive(Debug, PartialEq, Eq)]
pub struct Prompt {
    pub messages: Vec<ChatMessage>,
    pub reply_to: String,
}

/// Build the prompt from `history` (oldest first, as the store returns it). `None` when
/// there is nothing to answer: no messages, or the newest is already an assistant reply.
pub fn build(system_prompt: &str, history: Vec<Message>, max_chars: usize) -> Option<Prompt> {
    let ordered = replies_after_their_questions(history);
    let newest = ordered.last()?;
    if newest.role == MessageRole::Assistant {
        return None;
    }
    let reply_to = newest.id.clone();

    // Walk back from the newest message while the budget lasts.
    let mut kept: Vec<ChatMessage> = Vec::new();
    let mut used = 0usize;
    for message in ordered.into_iter().rev() {
        let Some(role) = role_name(message.role) else {
            continue;
        };
        let chars = message.content.chars().count();
        if used + chars > max_chars {
            if kept.is_empty() {
                let cut: String = message.content.chars().take(max_chars).collect();
                kept.push(ChatMessage { role, content: cut });
            }
            break;
        }
        used += chars;
        kept.push(ChatMessage {
            role,
            content: message.content,
        });
    }
    kept.reverse();

    let mut messages = Vec::with_capacity(kept.len() + 1);
    if !system_prompt.trim().is_empty() {
        messages.push(ChatMessage {
            role: "system",
            content: system_prompt.to_string(),
        });
    }
    messages.extend(kept);
    Some(Prompt { messages, reply_to })
}

fn role_name(role: MessageRole) -> Option<&'static str> {
    match role {
        MessageRole::User => Some("user"),
        MessageRole::Assistant => Some("assistant"),
        MessageRole::System => Some("system"),
        MessageRole::Command => None,
    }
}

/// Move each assistant reply to just after the message it answered (when that message is
/// in the window); everything else keeps its `seq` order.
fn replies_after_their_questions(history: Vec<Message>) -> Vec<Message> {
    let seq_of = |id: &str| history.iter().find(|m| m.id == id).map(|m| m.seq);
    let keys: Vec<(i64, u8, i64)> = history
        .iter()
        .map(|m| {
            let answered = (m.role == MessageRole::Assistant)
                .then(|| m.metadata.get("reply_to").and_then(|v| v.as_str()))
                .flatten()
                .and_then(seq_of)
                .filter(|&seq| seq < m.seq);
            match answered {
                Some(seq) => (seq, 1, m.seq),
                None => (m.seq, 0, m.seq),
            }
        })
        .collect();
    let mut keyed: Vec<_> = keys.into_iter().zip(history).collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn msg(seq: i64, role: MessageRole, content: &str, reply_to: Option<i64>) -> Message {
        let metadata = match reply_to {
            Some(seq) => json!({ "reply_to": format!("m{seq}") }),
            None => json!({}),
        };
        Message {
            id: format!("m{seq}"),
            session_id: "s".into(),
            seq,
            role,
            user_id: None,
            content: content.into(),
            metadata,
            created_at: 0,
        }
    }

    fn roles_and_text(prompt: &Prompt) -> Vec<(&str, &str)> {
        prompt
            .messages
            .iter()
            .map(|m| (m.role, m.content.as_str()))
            .collect()
    }

    #[test]
    fn system_prompt_then_history_with_roles() {
        let history = vec![
            msg(1, MessageRole::User, "hi", None),
            msg(2, MessageRole::Assistant, "hello", Some(1)),
            msg(3, MessageRole::System, "alice joined", None),
            msg(4, MessageRole::User, "how are you?", None),
        ];
        let prompt = build("Be brief.", history, 1000).unwrap();
        assert_eq!(prompt.reply_to, "m4");
        assert_eq!(
            roles_and_text(&prompt),
            [
                ("system", "Be brief."),
                ("user", "hi"),
                ("assistant", "hello"),
                ("system", "alice joined"),
                ("user", "how are you?"),
            ]
        );
        let prompt = build("  ", vec![msg(1, MessageRole::User, "x", None)], 10).unwrap();
        assert_eq!(roles_and_text(&prompt), [("user", "x")]);
    }

    #[test]
    fn the_budget_drops_the_oldest_and_keeps_the_newest() {
        let history = vec![
            msg(1, MessageRole::User, "aaaaaaaaaa", None),
            msg(2, MessageRole::User, "bbbbb", None),
            msg(3, MessageRole::User, "ccccc", None),
        ];
        let prompt = build("sys", history.clone(), 12).unwrap();
        assert_eq!(
            roles_and_text(&prompt),
            [("system", "sys"), ("user", "bbbbb"), ("user", "ccccc")]
        );
        let prompt = build("sys", history, 3).unwrap();
        assert_eq!(
            roles_and_text(&prompt),
            [("system", "sys"), ("user", "ccc")]
        );
    }

    #[test]
    fn replies_follow_what_they_answered() {
        // m2 and m3 arrived while the reply to m1 was streaming, so it was stored after them.
        let history = vec![
            msg(1, MessageRole::User, "one", None),
            msg(2, MessageRole::User, "two", None),
            msg(3, MessageRole::User, "three", None),
            msg(4, MessageRole::Assistant, "answer to one", Some(1)),
        ];
        let prompt = build("", history, 1000).unwrap();
        assert_eq!(prompt.reply_to, "m3");
        assert_eq!(
            roles_and_text(&prompt),
            [
                ("user", "one"),
                ("assistant", "answer to one"),
                ("user", "two"),
                ("user", "three"),
            ]
        );
    }

    #[test]
    fn nothing_to_answer() {
        assert!(build("s", Vec::new(), 100).is_none());
        let history = vec![
            msg(1, MessageRole::User, "one", None),
            msg(2, MessageRole::Assistant, "answer", Some(1)),
        ];
        assert!(build("s", history, 100).is_none());
    }
}
